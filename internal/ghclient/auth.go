package ghclient

import (
	"net/http"
	"strings"

	"github.com/bradleyfalzon/ghinstallation/v2"
	jwt "github.com/golang-jwt/jwt/v4"
)

// IsClientID reports whether s looks like a GitHub App client ID: "Iv1."
// followed by hex (older Apps) or "Iv23" followed by letters and digits.
func IsClientID(s string) bool {
	var rest string
	switch {
	case strings.HasPrefix(s, "Iv1."):
		rest = s[len("Iv1."):]
	case strings.HasPrefix(s, "Iv23"):
		rest = s[len("Iv23"):]
	default:
		return false
	}
	if len(rest) < 4 || len(rest) > 64 {
		return false
	}
	for _, c := range rest {
		if (c < '0' || c > '9') && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}

// apiRoot is the base URL without the trailing slash, as ghinstallation wants it.
func (a *App) apiRoot() string { return strings.TrimSuffix(a.base.String(), "/") }

// appsTransport authenticates as the App (a fresh JWT per request). Each
// installation gets its own, because ghinstallation writes to it on token
// refresh. With a client ID, the JWT names it as the issuer.
func (a *App) appsTransport() (*ghinstallation.AppsTransport, error) {
	var signer ghinstallation.Signer = ghinstallation.NewRSASigner(jwt.SigningMethodRS256, a.key)
	if a.cfg.ClientID != "" {
		signer = issuerSigner{issuer: a.cfg.ClientID, next: signer}
	}
	atr, err := ghinstallation.NewAppsTransportWithOptions(a.transport, a.cfg.AppID, ghinstallation.WithSigner(signer))
	if err != nil {
		return nil, err
	}
	atr.BaseURL = a.apiRoot()
	return atr, nil
}

// installationTransport authenticates as installation id with tokens that
// atr obtains.
func (a *App) installationTransport(atr *ghinstallation.AppsTransport, id int64) http.RoundTripper {
	tr := ghinstallation.NewFromAppsTransport(atr, id)
	tr.BaseURL = a.apiRoot()
	return tr
}

// issuerSigner signs App JWTs with the client ID as the issuer:
// ghinstallation always writes the numeric App ID there.
type issuerSigner struct {
	issuer string
	next   ghinstallation.Signer
}

// Sign replaces the issuer of ghinstallation's claims and signs them.
func (s issuerSigner) Sign(claims jwt.Claims) (string, error) {
	if rc, ok := claims.(*jwt.RegisteredClaims); ok {
		c := *rc
		c.Issuer = s.issuer
		claims = &c
	}
	return s.next.Sign(claims)
}
