package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"hash"
	"strings"
	"sync"
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
	return newVerifier(secrets).verify(header, body)
}

// verifier is VerifySignature for a fixed set of secrets that keeps each
// secret's HMAC state between requests: a reset HMAC starts from its keyed
// state instead of hashing the padded key again, and nothing is allocated
// per request. It is safe for concurrent use.
type verifier struct {
	secrets [][]byte
	macs    []sync.Pool // of *macState, one pool per secret
}

// macState is one secret's reusable HMAC with room for its sum.
type macState struct {
	mac hash.Hash
	sum [sha256.Size]byte
}

func newVerifier(secrets [][]byte) *verifier {
	v := &verifier{}
	for _, s := range secrets {
		if len(s) > 0 {
			v.secrets = append(v.secrets, s)
		}
	}
	v.macs = make([]sync.Pool, len(v.secrets))
	return v
}

func (v *verifier) verify(header string, body []byte) error {
	if header == "" {
		return errNoSignature
	}
	hexSig, ok := strings.CutPrefix(header, signaturePrefix)
	if !ok || len(hexSig) != 2*sha256.Size {
		return errBadSignature
	}
	var want [sha256.Size]byte
	for i := range want {
		hi, ok1 := unhex(hexSig[2*i])
		lo, ok2 := unhex(hexSig[2*i+1])
		if !ok1 || !ok2 {
			return errBadSignature
		}
		want[i] = hi<<4 | lo
	}
	match := 0
	for i, secret := range v.secrets {
		st, _ := v.macs[i].Get().(*macState)
		if st == nil {
			st = &macState{mac: hmac.New(sha256.New, secret)}
		} else {
			st.mac.Reset()
		}
		st.mac.Write(body)
		match |= subtle.ConstantTimeCompare(st.mac.Sum(st.sum[:0]), want[:])
		v.macs[i].Put(st)
	}
	if match != 1 {
		return errBadSignature
	}
	return nil
}
