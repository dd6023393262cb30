package ghtest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// authKind is what credential a route wants.
type authKind int

const (
	authJWT   authKind = iota // the App's JWT
	authToken                 // an installation token
	authAny                   // either
)

// principal is who sent a request: the App (installation 0) or an installation.
type principal struct {
	installation int64
}

// verifyJWT checks an RS256 App JWT as GitHub does: signature with the App
// key, issuer = App ID or client ID, not expired, issued at most a minute in the future,
// lifetime at most ten minutes.
func verifyJWT(token string, pub *rsa.PublicKey, appID int64, clientID string, now time.Time) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return errors.New("A JSON web token could not be decoded")
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return errors.New("A JSON web token could not be decoded")
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(hb, &hdr) != nil || hdr.Alg != "RS256" {
		return errors.New("A JSON web token could not be decoded")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) != nil {
		return errors.New("A JSON web token could not be decoded")
	}
	var claims struct {
		Iss any   `json:"iss"`
		Iat int64 `json:"iat"`
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(cb, &claims) != nil {
		return errors.New("A JSON web token could not be decoded")
	}
	iss := ""
	switch v := claims.Iss.(type) {
	case string:
		iss = v
	case float64:
		iss = strconv.FormatInt(int64(v), 10)
	}
	if iss != strconv.FormatInt(appID, 10) && iss != clientID {
		return errors.New("Integration not found")
	}
	if claims.Exp <= now.Unix() {
		return errors.New("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires")
	}
	if claims.Iat > now.Add(time.Minute).Unix() {
		return errors.New("'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued")
	}
	if claims.Exp-claims.Iat > 600 {
		return errors.New("'Expiration time' claim ('exp') is too far in the future")
	}
	return nil
}

// authenticate resolves the request's credential for a route wanting kind.
func (s *Server) authenticate(r *http.Request, kind authKind) (principal, *reply) {
	h := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(h, " ")
	scheme = strings.ToLower(scheme)
	cred = strings.TrimSpace(cred)
	looksJWT := strings.Count(cred, ".") == 2
	if h == "" {
		rep := errReply(http.StatusUnauthorized, "Requires authentication")
		return principal{}, &rep
	}
	if looksJWT && scheme == "bearer" {
		if kind == authToken {
			rep := errReply(http.StatusForbidden, "Resource not accessible by integration")
			return principal{}, &rep
		}
		if err := verifyJWT(cred, &s.key.PublicKey, s.opts.AppID, s.opts.ClientID, time.Now()); err != nil {
			rep := errReply(http.StatusUnauthorized, err.Error())
			return principal{}, &rep
		}
		return principal{installation: 0}, nil
	}
	if scheme != "token" && scheme != "bearer" {
		rep := errReply(http.StatusUnauthorized, "Bad credentials")
		return principal{}, &rep
	}
	s.mu.Lock()
	tok, ok := s.tokens[cred]
	s.mu.Unlock()
	if !ok || !time.Now().Before(tok.expires) {
		rep := errReply(http.StatusUnauthorized, "Bad credentials")
		return principal{}, &rep
	}
	if kind == authJWT {
		rep := errReply(http.StatusUnauthorized, "A JSON web token could not be decoded")
		return principal{}, &rep
	}
	return principal{installation: tok.installation}, nil
}

// newToken issues an installation token. Callers hold s.mu.
func (s *Server) newToken(installation int64, now time.Time) (string, time.Time) {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	tok := "ghs_" + hex.EncodeToString(b)
	exp := now.Add(s.opts.TokenTTL)
	s.tokens[tok] = tokenState{installation: installation, expires: exp}
	s.stats.TokensIssued++
	return tok, exp
}
