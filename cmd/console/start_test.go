package main

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/config"
	"github.com/ghas-relay/ghas-relay/internal/config/configtest"
	"github.com/ghas-relay/ghas-relay/internal/proc/proctest"
)

// TestMainProcess is the child process of proctest.RunMain.
func TestMainProcess(t *testing.T) { proctest.MainProcess(t, "console", main) }

// Without tokens only a loopback CONSOLE_ADDR is accepted: anything else
// exits 2 with one line naming the setting.
func TestNoTokensLoopbackOnly(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:8090": true, "[::1]:8090": true, "localhost:8090": true, "127.3.4.5:1": true,
		":8090": false, "0.0.0.0:8090": false, "10.1.2.3:8090": false, "[::]:8090": false, "console.example:8090": false, "nonsense": false,
	} {
		_, err := parseConfig([]string{"console"}, configtest.Getenv(map[string]string{"CONSOLE_ADDR": addr}), io.Discard)
		var ce *config.Error
		if ok && err != nil || !ok && (!errors.As(err, &ce) || ce.Setting != "CONSOLE_ADDR") {
			t.Errorf("CONSOLE_ADDR=%s without tokens: %v", addr, err)
		}
		if _, err := parseConfig([]string{"console"}, configtest.Getenv(map[string]string{"CONSOLE_ADDR": addr, "CONSOLE_TOKENS": "t"}), io.Discard); err != nil && addr != "nonsense" {
			t.Errorf("CONSOLE_ADDR=%s with a token: %v", addr, err)
		}
	}
	code, stderr := proctest.RunMain(t, "CONSOLE_ADDR=0.0.0.0:8090", "CONSOLE_TOKENS=", "CONSOLE_TOKENS_FILE=")
	line := proctest.LastLine(stderr)
	if code != 2 || !strings.HasPrefix(line, "console: ") || !strings.Contains(line, "CONSOLE_ADDR") {
		t.Errorf("exit %d, last line %q; want 2 naming CONSOLE_ADDR", code, line)
	}
}

// A token file in the named form; a bad one is an error naming the file
// setting and never the token.
func TestTokenFile(t *testing.T) {
	file := t.TempDir() + "/tokens"
	if err := writeFile(file, "# console users\nalice s3cret-alice\nbob s3cret-bob\n"); err != nil {
		t.Fatal(err)
	}
	c, err := parseConfig([]string{"console"}, configtest.Getenv(map[string]string{"CONSOLE_TOKENS_FILE": file, "CONSOLE_ADDR": ":8090"}), io.Discard)
	if err != nil || c.Tokens.Len() != 2 {
		t.Fatalf("%v, %d tokens", err, c.Tokens.Len())
	}
	if tok, ok := c.Tokens.Lookup("s3cret-bob"); !ok || tok.Name != "bob" {
		t.Errorf("lookup: %+v %v", tok, ok)
	}
	if err := writeFile(file, "alice s3cret-alice\nalice other-token\n"); err != nil {
		t.Fatal(err)
	}
	_, err = parseConfig([]string{"console"}, configtest.Getenv(map[string]string{"CONSOLE_TOKENS_FILE": file}), io.Discard)
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Setting != "CONSOLE_TOKENS_FILE" || strings.Contains(err.Error(), "other-token") {
		t.Errorf("a repeated name: %v", err)
	}
}
