package config

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/config/configtest"
)

func parseCommon(t *testing.T, m map[string]string) (Common, error) {
	t.Helper()
	var c Common
	s := New("x", configtest.Getenv(m), io.Discard)
	c.RegisterCommon(s, ":0")
	if err := s.Parse(nil); err != nil {
		return c, err
	}
	return c, c.Validate()
}

func TestNATSAuthSettings(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("s3cret-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parseCommon(t, map[string]string{"NATS_USER": "ghas-receiver", "NATS_PASSWORD_FILE": pwFile})
	if err != nil {
		t.Fatal(err)
	}
	cc := c.NATS("receiver")
	if cc.User != "ghas-receiver" || cc.Password != "s3cret-pw" || cc.InboxPrefix != "_INBOX.receiver" || cc.Name != "ghas-relay-receiver" || cc.TLS() {
		t.Fatalf("conn config = %+v", cc)
	}
	if c, err = parseCommon(t, map[string]string{"NATS_URL": "tls://nats:4222"}); err != nil || !c.NATS("x").TLS() {
		t.Fatalf("tls:// URL: TLS %v, %v", c.NATS("x").TLS(), err)
	}
}

// TestNATSAuthInvalid: each invalid combination or file is a configuration
// error (exit 2) naming the setting, and never shows the password.
func TestNATSAuthInvalid(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct {
		env     map[string]string
		setting string
	}{
		{map[string]string{"NATS_USER": "u"}, "NATS_PASSWORD"},
		{map[string]string{"NATS_PASSWORD": "hunter2-secret"}, "NATS_USER"},
		{map[string]string{"NATS_PASSWORD_FILE": missing, "NATS_USER": "u"}, "NATS_PASSWORD_FILE"},
		{map[string]string{"NATS_USER": "u", "NATS_PASSWORD": "hunter2-secret", "NATS_CREDS": bad}, "NATS_USER"},
		{map[string]string{"NATS_NKEY_FILE": bad, "NATS_CREDS": bad}, "NATS_NKEY_FILE"},
		{map[string]string{"NATS_CREDS": missing}, "NATS_CREDS"},
		{map[string]string{"NATS_NKEY_FILE": missing}, "NATS_NKEY_FILE"},
		{map[string]string{"NATS_NKEY_FILE": bad}, "NATS_NKEY_FILE"},
		{map[string]string{"NATS_TLS_CERT_FILE": bad}, "NATS_TLS_KEY_FILE"},
		{map[string]string{"NATS_TLS_KEY_FILE": bad}, "NATS_TLS_CERT_FILE"},
		{map[string]string{"NATS_TLS_CERT_FILE": bad, "NATS_TLS_KEY_FILE": missing}, "NATS_TLS_KEY_FILE"},
		{map[string]string{"NATS_TLS_CERT_FILE": bad, "NATS_TLS_KEY_FILE": bad}, "NATS_TLS_CERT_FILE"},
		{map[string]string{"NATS_TLS_CA_FILE": missing}, "NATS_TLS_CA_FILE"},
		{map[string]string{"NATS_TLS_CA_FILE": bad}, "NATS_TLS_CA_FILE"},
		{map[string]string{"EVENTS_MAX_BYTES": "-1"}, "EVENTS_MAX_BYTES"},
		{map[string]string{"DLQ_MAX_BYTES": "lots"}, "DLQ_MAX_BYTES"},
	} {
		_, err := parseCommon(t, tc.env)
		var ce *Error
		if !errors.As(err, &ce) || ce.Setting != tc.setting || ExitCode(err) != 2 {
			t.Errorf("%v: err = %v, want a configuration error naming %s", tc.env, err, tc.setting)
			continue
		}
		if strings.Contains(err.Error(), "hunter2-secret") {
			t.Errorf("%v: the error shows the password: %v", tc.env, err)
		}
	}
}

// TestNATSPasswordNeverAFlag: the password has no flag; only its file has.
func TestNATSPasswordNeverAFlag(t *testing.T) {
	var c Common
	s := New("x", configtest.Getenv(nil), io.Discard)
	c.RegisterCommon(s, ":0")
	if err := s.Parse([]string{"-nats-password", "x"}); err == nil {
		t.Fatal("-nats-password accepted")
	}
}
