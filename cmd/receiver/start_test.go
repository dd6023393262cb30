package main

import (
	"net"
	"strings"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/proc/proctest"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

// TestMainProcess is the child process of proctest.RunMain.
func TestMainProcess(t *testing.T) { proctest.MainProcess(t, "receiver", main) }

// A port that is already taken, for the webhook or the admin listener:
// the process exits non-zero with one line on stderr that names the
// address.
func TestBusyPortExitsWithTheAddress(t *testing.T) {
	ns := streamtest.Run(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	free := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	for _, setting := range []string{"LISTEN_ADDR", "ADMIN_ADDR"} {
		t.Run(setting, func(t *testing.T) {
			env := []string{"NATS_URL=" + ns.URL(), "GITHUB_WEBHOOK_SECRET=s", "LISTEN_ADDR=" + free(), "ADMIN_ADDR=" + free()}
			env = append(env, setting+"="+addr)
			code, stderr := proctest.RunMain(t, env...)
			if code == 0 {
				t.Fatalf("exit code 0 with %s busy; stderr:\n%s", setting, stderr)
			}
			line := proctest.LastLine(stderr)
			if !strings.HasPrefix(line, "receiver: ") || !strings.Contains(line, addr) || !strings.Contains(line, "address already in use") {
				t.Errorf("last stderr line %q does not name the busy address %s", line, addr)
			}
		})
	}
}

// NATS that stays unreachable at start: after NATS_START_TIMEOUT the
// process exits non-zero with one line naming the setting, instead of
// waiting silently forever.
func TestUnreachableNATSExitsAfterStartTimeout(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + dead.Addr().String()
	dead.Close() // nothing listens there now
	code, stderr := proctest.RunMain(t, "NATS_URL="+url, "GITHUB_WEBHOOK_SECRET=s", "LISTEN_ADDR=127.0.0.1:0", "ADMIN_ADDR=127.0.0.1:0", "NATS_START_TIMEOUT=2s")
	if code == 0 {
		t.Fatalf("exit code 0 with NATS unreachable; stderr:\n%s", stderr)
	}
	if line := proctest.LastLine(stderr); !strings.HasPrefix(line, "receiver: ") || !strings.Contains(line, "NATS_START_TIMEOUT") {
		t.Errorf("last stderr line %q does not name NATS_START_TIMEOUT", line)
	}
}
