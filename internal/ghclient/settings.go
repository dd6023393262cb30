package ghclient

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/config"
)

// Settings are the GitHub App settings the processor and the reconciler
// share: GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY(_FILE), GITHUB_API_URL and
// the retry bounds GITHUB_MAX_ATTEMPTS and GITHUB_RETRY_MAX_ELAPSED.
type Settings struct {
	AppID           string
	PrivateKey      string
	APIURL          string
	MaxAttempts     int64
	RetryMaxElapsed time.Duration
}

// Register defines the settings on s.
func (g *Settings) Register(s *config.Set) {
	s.String(&g.AppID, "GITHUB_APP_ID", "", "GitHub App ID (numeric) or client ID (Iv1.… / Iv23…)")
	s.Secret(&g.PrivateKey, "GITHUB_APP_PRIVATE_KEY", "GITHUB_APP_PRIVATE_KEY_FILE", "the GitHub App private key (PEM)")
	s.String(&g.APIURL, "GITHUB_API_URL", DefaultBaseURL, "GitHub REST base URL (GitHub Enterprise Server: https://HOST/api/v3/)")
	s.Int(&g.MaxAttempts, "GITHUB_MAX_ATTEMPTS", DefaultMaxAttempts, "attempts of a GitHub request that keeps failing with 5xx or a network error")
	s.Duration(&g.RetryMaxElapsed, "GITHUB_RETRY_MAX_ELAPSED", DefaultMaxRetryElapsed, "longest time a GitHub request keeps retrying 5xx and network errors (rate-limit waits aside)")
}

// Given reports whether App credentials were configured at all.
func (g Settings) Given() bool { return g.AppID != "" || g.PrivateKey != "" }

// Config validates the settings and returns the client configuration
// (without transport or metrics); errors are *config.Error naming the
// setting. why says what needs them, for the error message.
func (g Settings) Config(why string) (Config, error) {
	var cfg Config
	id := strings.TrimSpace(g.AppID)
	switch {
	case id == "":
		return Config{}, &config.Error{Setting: "GITHUB_APP_ID", Msg: "required " + why}
	case IsClientID(id):
		cfg.ClientID = id
	default:
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n <= 0 {
			return Config{}, &config.Error{Setting: "GITHUB_APP_ID", Msg: fmt.Sprintf("%q is neither a numeric App ID nor a client ID (Iv1.… or Iv23…)", g.AppID)}
		}
		cfg.AppID = n
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
	if g.MaxAttempts < 1 || g.MaxAttempts > 100 {
		return Config{}, &config.Error{Setting: "GITHUB_MAX_ATTEMPTS", Msg: fmt.Sprintf("%d is not between 1 and 100", g.MaxAttempts)}
	}
	if g.RetryMaxElapsed <= 0 {
		return Config{}, &config.Error{Setting: "GITHUB_RETRY_MAX_ELAPSED", Msg: "must be positive"}
	}
	cfg.BaseURL, cfg.PrivateKeyPEM = g.APIURL, []byte(g.PrivateKey)
	cfg.MaxAttempts, cfg.MaxRetryElapsed = int(g.MaxAttempts), g.RetryMaxElapsed
	return cfg, nil
}
