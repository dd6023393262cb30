package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
)

const signaturePrefix = "sha256="

// ParseSecrets splits a comma-separated list of webhook secrets (several
// during a rotation). Surrounding white space and empty entries are dropped.
func ParseSecrets(s string) [][]byte {
	var out [][]byte
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, []byte(p))
		}
	}
	return out
}

// VerifySignature checks header, the value of X-Hub-Signature-256
// ("sha256=<hex>"), against the HMAC-SHA256 of body under every secret. It
// compares in constant time and always computes every secret's MAC, so the
// timing tells nothing about which secret matched. The SHA-1 header
// X-Hub-Signature is not an input: it is never accepted.
func VerifySignature(secrets [][]byte, header string, body []byte) error {
	if header == "" {
		return errNoSignature
	}
	hexSig, ok := strings.CutPrefix(header, signaturePrefix)
	if !ok || len(hexSig) != 2*sha256.Size {
		return errBadSignature
	}
	var want [sha256.Size]byte
	if _, err := hex.Decode(want[:], []byte(hexSig)); err != nil {
		return errBadSignature
	}
	match := 0
	for _, secret := range secrets {
		if len(secret) == 0 {
			continue
		}
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		var got [sha256.Size]byte
		match |= subtle.ConstantTimeCompare(mac.Sum(got[:0]), want[:])
	}
	if match != 1 {
		return errBadSignature
	}
	return nil
}
