package ghclient_test

import (
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/config"
	"github.com/ghas-relay/ghas-relay/internal/ghclient"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
)

// settingOf is the setting a *config.Error names, or "".
func settingOf(err error) string {
	var ce *config.Error
	if errors.As(err, &ce) {
		return ce.Setting
	}
	return ""
}

func TestSettingsNameTheWrongSetting(t *testing.T) {
	srv := fake(t, ghtest.Options{})
	good := ghclient.Settings{AppID: "12", PrivateKey: string(srv.PrivateKeyPEM()), APIURL: srv.URL(), MaxAttempts: 6, RetryMaxElapsed: 2 * time.Minute}
	cfg, err := good.Config("(test)")
	if err != nil || cfg.AppID != 12 || cfg.ClientID != "" || cfg.MaxAttempts != 6 || cfg.MaxRetryElapsed != 2*time.Minute {
		t.Fatalf("config %+v, %v", cfg, err)
	}
	byClient := good
	byClient.AppID = "Iv23liAbCdEf012345"
	if cfg, err := byClient.Config("(test)"); err != nil || cfg.ClientID != "Iv23liAbCdEf012345" || cfg.AppID != 0 {
		t.Fatalf("client ID: %+v, %v", cfg, err)
	}
	for name, tc := range map[string]struct {
		change func(*ghclient.Settings)
		want   string
	}{
		"no id":        {func(s *ghclient.Settings) { s.AppID = "" }, "GITHUB_APP_ID"},
		"bad id":       {func(s *ghclient.Settings) { s.AppID = "my-app" }, "GITHUB_APP_ID"},
		"no key":       {func(s *ghclient.Settings) { s.PrivateKey = "" }, "GITHUB_APP_PRIVATE_KEY_FILE"},
		"bad key":      {func(s *ghclient.Settings) { s.PrivateKey = "not a key" }, "GITHUB_APP_PRIVATE_KEY_FILE"},
		"attempts":     {func(s *ghclient.Settings) { s.MaxAttempts = 0 }, "GITHUB_MAX_ATTEMPTS"},
		"elapsed":      {func(s *ghclient.Settings) { s.RetryMaxElapsed = 0 }, "GITHUB_RETRY_MAX_ELAPSED"},
		"empty apiurl": {func(s *ghclient.Settings) { s.APIURL = "" }, "GITHUB_API_URL"},
	} {
		s := good
		tc.change(&s)
		if _, err := s.Config("(test)"); settingOf(err) != tc.want {
			t.Errorf("%s: err = %v, want one naming %s", name, err, tc.want)
		}
	}
	// New names the setting too (the binaries pass its error on as is).
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for name, tc := range map[string]struct {
		cfg  ghclient.Config
		want string
	}{
		"url":       {ghclient.Config{BaseURL: "ftp://x", AppID: 1, PrivateKeyPEM: srv.PrivateKeyPEM()}, "GITHUB_API_URL"},
		"key":       {ghclient.Config{AppID: 1, PrivateKeyPEM: []byte("nope")}, "GITHUB_APP_PRIVATE_KEY_FILE"},
		"id":        {ghclient.Config{PrivateKeyPEM: srv.PrivateKeyPEM()}, "GITHUB_APP_ID"},
		"client id": {ghclient.Config{ClientID: "abc", PrivateKeyPEM: srv.PrivateKeyPEM()}, "GITHUB_APP_ID"},
	} {
		if _, err := ghclient.New(quiet, tc.cfg); settingOf(err) != tc.want {
			t.Errorf("New %s: err = %v, want one naming %s", name, err, tc.want)
		}
	}
}
