package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/config"
	"github.com/ghas-relay/ghas-relay/internal/config/configtest"
)

// TestImportTokensFile: the file's line form is read with names and
// globs, an old file of comma-separated tokens still works, and every
// mistake in the file stops the receiver with exit code 2 naming
// IMPORT_TOKENS_FILE, without printing a token.
func TestImportTokensFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		name, text string
		env        string // IMPORT_TOKENS, which wins over the file
		want       []string
	}{
		{"line form", "# CI\nci tok-ci octo-org/*\nscanner tok-scanner\n", "", []string{"ci", "scanner"}},
		{"old comma file", "tok-a,tok-b\n", "", []string{"token-1", "token-2"}},
		{"environment wins", "ci tok-ci\n", "tok-env", []string{"token-1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parseConfig([]string{"receiver"}, configtest.Getenv(map[string]string{
				"GITHUB_WEBHOOK_SECRET": "s", "IMPORT_TOKENS_FILE": write(c.name, c.text), "IMPORT_TOKENS": c.env}), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Tokens.Names(); strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Errorf("names %v, want %v", got, c.want)
			}
		})
	}
	for _, c := range []struct{ name, text string }{
		{"duplicate name", "ci tok-1\nci tok-2\n"},
		{"duplicate token", "ci tok-1\nscanner tok-1\n"},
		{"bad glob", "ci tok-1 octo-org/[\n"},
		{"name without token", "ci tok-1\nscanner\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(context.Background(), []string{"receiver"}, configtest.Getenv(map[string]string{
				"GITHUB_WEBHOOK_SECRET": "s", "IMPORT_TOKENS_FILE": write(c.name, c.text)}), io.Discard, &stderr)
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Setting != "IMPORT_TOKENS_FILE" || config.ExitCode(err) != 2 {
				t.Fatalf("run = %v, want exit 2 naming IMPORT_TOKENS_FILE", err)
			}
			if !strings.Contains(stderr.String(), "IMPORT_TOKENS_FILE") || strings.Contains(stderr.String(), "tok-") {
				t.Errorf("stderr %q: want IMPORT_TOKENS_FILE named and no token", stderr.String())
			}
		})
	}
}
