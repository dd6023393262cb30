package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

// envRunMain makes the test binary run main instead of the tests, so that
// a test can watch the real process's exit code and stderr.
const envRunMain = "GHAS_RELAY_TEST_RUN_MAIN"

// TestMainProcess is the child process of runMain; it does nothing in a
// normal test run.
func TestMainProcess(t *testing.T) {
	if os.Getenv(envRunMain) != "1" {
		t.Skip("child process of runMain only")
	}
	os.Args = []string{"receiver"}
	main()
}

// runMain runs the program as its own process with env and returns its
// exit code and stderr.
func runMain(t *testing.T, env ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainProcess$")
	cmd.Env = append(os.Environ(), append([]string{envRunMain + "=1", "LOG_LEVEL=error"}, env...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), stderr.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, stderr.String()
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("the process did not exit within 20s; stderr:\n%s", stderr.String())
	}
	return 0, ""
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

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
			code, stderr := runMain(t, env...)
			if code == 0 {
				t.Fatalf("exit code 0 with %s busy; stderr:\n%s", setting, stderr)
			}
			line := lastLine(stderr)
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
	code, stderr := runMain(t, "NATS_URL="+url, "GITHUB_WEBHOOK_SECRET=s", "LISTEN_ADDR=127.0.0.1:0", "ADMIN_ADDR=127.0.0.1:0", "NATS_START_TIMEOUT=2s")
	if code == 0 {
		t.Fatalf("exit code 0 with NATS unreachable; stderr:\n%s", stderr)
	}
	if line := lastLine(stderr); !strings.HasPrefix(line, "receiver: ") || !strings.Contains(line, "NATS_START_TIMEOUT") {
		t.Errorf("last stderr line %q does not name NATS_START_TIMEOUT", line)
	}
}
