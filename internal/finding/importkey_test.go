package finding

import (
	"errors"
	"strings"
	"testing"
)

func TestToolSlug(t *testing.T) {
	for in, want := range map[string]string{
		"Claude Security": "claude-security", "Semgrep OSS": "semgrep-oss", "CodeQL": "codeql",
		"  --Codex  Security!! ": "codex-security", "": "unknown", "日本": "unknown", "a.b*c>d": "a-b-c-d",
	} {
		if got := ToolSlug(in); got != want {
			t.Errorf("ToolSlug(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestImportID(t *testing.T) {
	if got := ImportID("js-sql", "abc_1"); got != "js-sql-abc_1" {
		t.Errorf("plain id: %q", got)
	}
	long := ImportID("js/sql-injection", "8f3c0e2b:1")
	if len(long) != 32 || long != ImportID("js/sql-injection", "8f3c0e2b:1") {
		t.Errorf("hashed id %q: want 32 stable hex digits", long)
	}
	if ImportID(strings.Repeat("a", 65)) == strings.Repeat("a", 65) {
		t.Error("an id over 64 characters is used as is")
	}
}

func TestImportKeyRoundTrip(t *testing.T) {
	k := ImportKey(SAST, 42, "Claude Security", "f-1")
	if k != "sast.42.claude-security.f-1" {
		t.Fatalf("key %q", k)
	}
	ds, repo, slug, id, err := ParseImportKey(k)
	if err != nil || ds != SAST || repo != 42 || slug != "claude-security" || id != "f-1" {
		t.Fatalf("ParseImportKey = %q %d %q %q %v", ds, repo, slug, id, err)
	}
	ds, repo, _, err = ParseKey(k)
	if !errors.Is(err, ErrImportKey) || ds != SAST || repo != 42 {
		t.Errorf("ParseKey(import key) = %q %d %v; want dataset, repository and ErrImportKey", ds, repo, err)
	}
	if _, _, _, err := ParseKey("sast.42.7"); err != nil {
		t.Errorf("ParseKey(alert key): %v", err)
	}
	if _, _, _, _, err := ParseImportKey("sast.42.7"); err == nil {
		t.Error("ParseImportKey accepts an alert key")
	}
}
