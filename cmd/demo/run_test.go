package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemo runs the README's first command as a newcomer would and checks
// it shows findings from every route and leaves no process behind.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs every binary")
	}
	dir := t.TempDir()
	t.Chdir(filepath.Join("..", ".."))
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"demo", "-dir", dir}, &out, &errb); err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	s := out.String()
	for _, want := range []string{
		"processor -setup (user setup) created", "FINDING KEY", "APPLICATION_SAST", "APPLICATION_SCA", "APPLICATION_SECRET",
		" webhook ", " reconcile ", "reconciler exited with code 0", "0 dead letters",
		"1 event(s) on ghas.redelivery.>",
		"triage once: dismissing", "the fake GitHub took PATCH", "applied to github", "applied to relay", `"status": "applied"`,
		"ACTIVE findings with the highest priority", "severity ", "corroborated true +5", "criticality critical +",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s)
		}
	}
	// The console showed the findings; the sample deliveries' findings are
	// not REMOVED by the demo's own full pull (their repositories exist).
	for _, want := range []string{"console at http://127.0.0.1:", "The console at http://", "top exposure: ", "changes since yesterday: "} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s)
		}
	}
	for _, line := range strings.Split(s, "\n") {
		for _, key := range []string{"sast.337911632.10 ", "sca.512875663.20 ", "sca.1296269.1 ", "secret.257423561.191 "} {
			if strings.HasPrefix(line, key) && strings.Contains(line, "REMOVED") {
				t.Errorf("a sample delivery's finding ends REMOVED: %s", line)
			}
		}
	}
	// No process of the demo's is left: nothing runs from its bin folder.
	ps, err := exec.Command("ps", "-eo", "args").Output()
	if err == nil && strings.Contains(string(ps), filepath.Join(dir, "bin")) {
		t.Errorf("a demo process is still running:\n%s", ps)
	}
}
