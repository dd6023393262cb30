package config

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/config/configtest"
)

func TestFlagWinsOverEnv(t *testing.T) {
	var url string
	var n int64
	var d time.Duration
	s := New("x", configtest.Getenv(map[string]string{"NATS_URL": "nats://env:4222", "MAX_BODY_BYTES": "10", "REDELIVER_EVERY": "5m"}), io.Discard)
	s.String(&url, "NATS_URL", "nats://127.0.0.1:4222", "")
	s.Int(&n, "MAX_BODY_BYTES", 1, "")
	s.Duration(&d, "REDELIVER_EVERY", time.Minute, "")
	if err := s.Parse([]string{"-nats-url", "nats://flag:4222"}); err != nil {
		t.Fatal(err)
	}
	if url != "nats://flag:4222" || n != 10 || d != 5*time.Minute {
		t.Errorf("got %q %d %v", url, n, d)
	}
}

func TestInvalidNamesSetting(t *testing.T) {
	var n int64
	s := New("x", configtest.Getenv(map[string]string{"MAX_BODY_BYTES": "lots"}), io.Discard)
	s.Int(&n, "MAX_BODY_BYTES", 1, "")
	err := s.Parse(nil)
	var ce *Error
	if !errors.As(err, &ce) || ce.Setting != "MAX_BODY_BYTES" || ExitCode(err) != 2 {
		t.Fatalf("err = %v", err)
	}
	if err := New("x", configtest.Getenv(nil), io.Discard).Parse([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	if ExitCode(errors.New("boom")) != 1 || ExitCode(nil) != 0 {
		t.Fatal("exit codes")
	}
}

func TestSecretFromEnvOrFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var v string
	s := New("x", configtest.Getenv(map[string]string{"SECRET_FILE": file}), io.Discard)
	s.Secret(&v, "SECRET", "SECRET_FILE", "the secret")
	if err := s.Parse(nil); err != nil || v != "s3cret" {
		t.Fatalf("file: %q %v", v, err)
	}
	s = New("x", configtest.Getenv(map[string]string{"SECRET": "fromenv", "SECRET_FILE": file}), io.Discard)
	s.Secret(&v, "SECRET", "SECRET_FILE", "the secret")
	if err := s.Parse(nil); err != nil || v != "fromenv" {
		t.Fatalf("env: %q %v", v, err)
	}
	s = New("x", configtest.Getenv(nil), io.Discard)
	s.Secret(&v, "SECRET", "SECRET_FILE", "the secret")
	err := s.Parse([]string{"-secret-file", "/nonexistent"})
	var ce *Error
	if !errors.As(err, &ce) || ce.Setting != "SECRET_FILE" {
		t.Fatalf("missing file: %v", err)
	}
}

// TestHelpListsSettings: -h answers the settings as registered — code
// defaults, not the environment's values — with a secret's value as no
// flag and its file as one.
func TestHelpListsSettings(t *testing.T) {
	var url, secret string
	var n int64
	var d time.Duration
	var once bool
	s := New("x", configtest.Getenv(map[string]string{"NATS_URL": "nats://env:4222", "MAX_BODY_BYTES": "10"}), io.Discard)
	s.String(&url, "NATS_URL", "nats://127.0.0.1:4222", "")
	s.Int(&n, "MAX_BODY_BYTES", 1, "")
	s.Duration(&d, "REDELIVER_EVERY", 5*time.Minute, "")
	s.Secret(&secret, "SECRET", "SECRET_FILE", "the secret")
	s.Bool(&once, "once", false, "")
	err := s.Parse([]string{"-h"})
	var h *Help
	if !errors.As(err, &h) || !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	want := []Setting{
		{Env: "NATS_URL", Flag: "nats-url", Default: "nats://127.0.0.1:4222"},
		{Env: "MAX_BODY_BYTES", Flag: "max-body-bytes", Default: "1"},
		{Env: "REDELIVER_EVERY", Flag: "redeliver-every", Default: "5m0s"},
		{Env: "SECRET", Secret: true},
		{Env: "SECRET_FILE", Flag: "secret-file"},
		{Flag: "once", Default: "false"},
	}
	if !slices.Equal(h.Settings, want) || !slices.Equal(s.Settings(), want) {
		t.Errorf("settings\n got %+v\nwant %+v", h.Settings, want)
	}
}
