package console

import (
	"net/http"
	"strings"

	"github.com/ghas-relay/ghas-relay/internal/tokens"
)

// Realm is the realm of the console's Basic authentication challenge.
const Realm = "ghas-relay console"

// RequireToken lets through requests that carry one of set's tokens, as a
// bearer token or as the password of HTTP Basic authentication (any user
// name, so a browser just asks), compared in constant time; others get
// 401 with a Basic challenge. With no tokens every request passes: the
// console then listens on a loopback address only (see ListenAllowed).
func RequireToken(set tokens.Set, next http.Handler) http.Handler {
	if set.Len() == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := set.Lookup(presented(r)); ok {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="`+Realm+`", charset="UTF-8"`)
		w.Header().Set("Cache-Control", "no-store")
		if strings.HasPrefix(r.URL.Path, "/api/") {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"a console token is required (bearer or HTTP Basic password)"}` + "\n"))
			return
		}
		http.Error(w, "a console token is required", http.StatusUnauthorized)
	})
}

// presented is the token of a request: the bearer token, else the Basic
// password.
func presented(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(tok)
	}
	if _, pw, ok := r.BasicAuth(); ok {
		return pw
	}
	return ""
}
