// Package proctest runs a command's main as its own process from inside
// the command's tests, so a test can watch the real exit code and stderr
// (a busy port, NATS unreachable) without building the binary.
//
// The test package declares
//
//	func TestMainProcess(t *testing.T) { proctest.MainProcess(t, "receiver", main) }
//
// and a test calls proctest.RunMain(t, env...).
package proctest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// envRunMain makes the test binary run main instead of the tests.
const envRunMain = "GHAS_RELAY_TEST_RUN_MAIN"

// MainProcess runs main as program name when the test binary was started
// by RunMain; in a normal test run it skips.
func MainProcess(t *testing.T, name string, main func()) {
	if os.Getenv(envRunMain) != "1" {
		t.Skip("child process of RunMain only")
	}
	os.Args = []string{name}
	main()
}

// RunMain runs the test binary's TestMainProcess as its own process with
// env added (LOG_LEVEL=error first, so env can override it) and returns
// its exit code and stderr. It fails the test if the process does not
// exit within 20 s.
func RunMain(t *testing.T, env ...string) (code int, stderr string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainProcess$")
	cmd.Env = append(os.Environ(), append([]string{envRunMain + "=1", "LOG_LEVEL=error"}, env...)...)
	var buf bytes.Buffer
	cmd.Stderr = &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), buf.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, buf.String()
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("the process did not exit within 20s; stderr:\n%s", buf.String())
	}
	return 0, ""
}

// LastLine is the last non-empty line of s.
func LastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
