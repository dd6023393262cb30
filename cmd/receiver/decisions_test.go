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

// TestDecisionTokens: DECISION_TOKENS_FILE is read like
// IMPORT_TOKENS_FILE (names, globs), apart from the import tokens; a
// mistake in it stops the receiver with exit 2 naming it, without
// printing a token.
func TestDecisionTokens(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg, err := parseConfig([]string{"receiver"}, configtest.Getenv(map[string]string{"GITHUB_WEBHOOK_SECRET": "s",
		"IMPORT_TOKENS": "tok-imp", "DECISION_TOKENS_FILE": write("ok", "appsec tok-a\nteam-web tok-w octo-org/web-*\n")}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.DecisionTokens.Names(), ","); got != "appsec,team-web" {
		t.Errorf("decision tokens %s", got)
	}
	if tok, ok := cfg.DecisionTokens.Lookup("tok-w"); !ok || tok.Allows("octo-org/api") || !tok.Allows("octo-org/web-shop") {
		t.Errorf("team-web: %v %+v", ok, tok)
	}
	if _, ok := cfg.DecisionTokens.Lookup("tok-imp"); ok {
		t.Error("an import token decides")
	}
	if _, ok := cfg.Tokens.Lookup("tok-a"); ok {
		t.Error("a decision token imports")
	}
	var stderr bytes.Buffer
	err = run(context.Background(), []string{"receiver"}, configtest.Getenv(map[string]string{
		"GITHUB_WEBHOOK_SECRET": "s", "DECISION_TOKENS_FILE": write("dup", "a tok-1\nb tok-1\n")}), io.Discard, &stderr)
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Setting != "DECISION_TOKENS_FILE" || config.ExitCode(err) != 2 {
		t.Fatalf("run = %v, want exit 2 naming DECISION_TOKENS_FILE", err)
	}
	if strings.Contains(stderr.String(), "tok-") {
		t.Errorf("stderr shows a token: %q", stderr.String())
	}
}
