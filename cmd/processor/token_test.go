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

// A sink token with a character that cannot be in an HTTP header value is
// refused at start with exit code 2 naming where it came from; the trailing
// newline a token file usually ends with is not part of the token.
func TestSinkTokenMustBeAHeaderValue(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := map[string]string{"NATS_URL": "nats://127.0.0.1:1", "ADMIN_ADDR": "127.0.0.1:0", "SINK_URL": "http://127.0.0.1:1/in"}
	with := func(k, v string) map[string]string {
		e := map[string]string{k: v}
		for bk, bv := range base {
			e[bk] = bv
		}
		return e
	}
	for name, tc := range map[string]struct {
		env     map[string]string
		setting string
	}{
		"newline in env":         {with("SINK_TOKEN", "abc\ndef"), "SINK_TOKEN"},
		"header split in env":    {with("SINK_TOKEN", "abc\r\nX-Other: 1"), "SINK_TOKEN"},
		"control char in file":   {with("SINK_TOKEN_FILE", file("ctl", "abc\x01def\n")), "SINK_TOKEN_FILE"},
		"two lines in file":      {with("SINK_TOKEN_FILE", file("two", "abc\ndef\n")), "SINK_TOKEN_FILE"},
		"NUL at the end of file": {with("SINK_TOKEN_FILE", file("nul", "abc\x00")), "SINK_TOKEN_FILE"},
	} {
		t.Run(name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(context.Background(), []string{"processor"}, configtest.Getenv(tc.env), io.Discard, &stderr)
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Setting != tc.setting || config.ExitCode(err) != 2 {
				t.Fatalf("err = %v, want a config error naming %s", err, tc.setting)
			}
			if !strings.Contains(stderr.String(), tc.setting) {
				t.Errorf("stderr %q does not name %s", stderr.String(), tc.setting)
			}
			if strings.Contains(stderr.String(), "abc") {
				t.Errorf("stderr shows the token: %q", stderr.String())
			}
		})
	}
	for _, content := range []string{"abc-def\n", "abc-def\r\n", "abc-def"} {
		c, err := parseConfig([]string{"processor"}, configtest.Getenv(with("SINK_TOKEN_FILE", file("ok", content))), io.Discard)
		if err != nil {
			t.Errorf("token file %q refused: %v", content, err)
		} else if c.SinkToken != "abc-def" {
			t.Errorf("token file %q read as %q", content, c.SinkToken)
		}
	}
}
