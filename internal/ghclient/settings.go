package ghclient

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ghas-relay/ghas-relay/internal/config"
)

// Settings are the GitHub App settings the processor and the reconciler
// share (SPEC §3): GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY(_FILE) and
// GITHUB_API_URL.
type Settings struct {
	AppID      string
	PrivateKey string
	APIURL     string
}

// Register defines the settings on s.
func (g *Settings) Register(s *config.Set) {
	s.String(&g.AppID, "GITHUB_APP_ID", "", "GitHub App ID (numeric)")
	s.Secret(&g.PrivateKey, "GITHUB_APP_PRIVATE_KEY", "GITHUB_APP_PRIVATE_KEY_FILE", "the GitHub App private key (PEM)")
	s.String(&g.APIURL, "GITHUB_API_URL", DefaultBaseURL, "GitHub REST base URL (GitHub Enterprise Server: https://HOST/api/v3/)")
}

// Given reports whether App credentials were configured at all.
func (g Settings) Given() bool { return g.AppID != "" || g.PrivateKey != "" }

// Config validates the settings and returns the client configuration
// (without transport or metrics); errors are *config.Error naming the
// setting. why says what needs them, for the error message.
func (g Settings) Config(why string) (Config, error) {
	if strings.TrimSpace(g.AppID) == "" {
		return Config{}, &config.Error{Setting: "GITHUB_APP_ID", Msg: "required " + why}
	}
	id, err := strconv.ParseInt(strings.TrimSpace(g.AppID), 10, 64)
	if err != nil || id <= 0 {
		return Config{}, &config.Error{Setting: "GITHUB_APP_ID", Msg: fmt.Sprintf("%q is not a numeric App ID", g.AppID)}
	}
	if g.PrivateKey == "" {
		return Config{}, &config.Error{Setting: "GITHUB_APP_PRIVATE_KEY_FILE", Msg: "required (or GITHUB_APP_PRIVATE_KEY) " + why}
	}
	if _, err := ParsePrivateKey([]byte(g.PrivateKey)); err != nil {
		return Config{}, &config.Error{Setting: "GITHUB_APP_PRIVATE_KEY_FILE", Msg: "not an RSA private key in PEM"}
	}
	if err := config.Required("GITHUB_API_URL", g.APIURL); err != nil {
		return Config{}, err
	}
	return Config{BaseURL: g.APIURL, AppID: id, PrivateKeyPEM: []byte(g.PrivateKey)}, nil
}
