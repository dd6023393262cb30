package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/config"
	"github.com/ghas-relay/ghas-relay/internal/config/configtest"
	"github.com/ghas-relay/ghas-relay/internal/proc/proctest"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

// processor -setup creates the whole layout on an empty server and says
// so, one line per stream and bucket, then exits 0; a second run finds
// nothing to change. GitHub and sink settings it does not use are not
// checked (a Job shares the processor's configuration without its App key).
func TestSetupCreatesTheLayoutAndExits(t *testing.T) {
	ns := streamtest.Run(t)
	env := configtest.Getenv(map[string]string{"NATS_URL": ns.URL(), "ENRICH": "always", "NATS_START_TIMEOUT": "20s"})
	for i, want := range []string{stream.ActionCreated, stream.ActionUnchanged} {
		var stdout, stderr bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := run(ctx, []string{"processor", "-setup"}, env, &stdout, &stderr)
		cancel()
		if err != nil {
			t.Fatalf("run #%d: %v\n%s", i+1, err, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		l := stream.Layout{}
		if len(lines) != len(l.BucketConfigs())+len(l.StreamConfigs()) {
			t.Fatalf("run #%d printed %d lines:\n%s", i+1, len(lines), stdout.String())
		}
		for _, line := range lines {
			if !strings.HasPrefix(line, want+" ") {
				t.Errorf("run #%d: line %q, want %s", i+1, line, want)
			}
		}
		if i == 0 && !strings.Contains(stdout.String(), "created stream GHAS_FINDINGS\n") {
			t.Errorf("no line for GHAS_FINDINGS:\n%s", stdout.String())
		}
	}
	nc, js := ns.Connect()
	if err := stream.Check(t.Context(), nc, js); err != nil {
		t.Fatalf("layout after -setup: %v", err)
	}
}

// processor -setup with NATS unreachable gives up after NATS_START_TIMEOUT
// with one stderr line naming it, exit non-zero.
func TestSetupGivesUp(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + dead.Addr().String()
	dead.Close()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	err = run(t.Context(), []string{"processor", "-setup"}, configtest.Getenv(map[string]string{"NATS_URL": url, "NATS_START_TIMEOUT": "1s", "LOG_LEVEL": "error"}), &stdout, &stderr)
	if err == nil || config.ExitCode(err) == 0 {
		t.Fatalf("exit code 0 with NATS unreachable (%v)", err)
	}
	if el := time.Since(start); el > 15*time.Second {
		t.Errorf("gave up after %s", el)
	}
	if line := proctest.LastLine(stderr.String()); !strings.HasPrefix(line, "processor: setup: ") || !strings.Contains(line, "NATS_START_TIMEOUT") {
		t.Errorf("last stderr line %q does not name NATS_START_TIMEOUT", line)
	}
}
