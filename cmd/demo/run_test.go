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
		"ACTIVE findings with the highest priority", "severity ", "corroborated true +5",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s)
		}
	}
	// No process of the demo's is left: nothing runs from its bin folder.
	ps, err := exec.Command("ps", "-eo", "args").Output()
	if err == nil && strings.Contains(string(ps), filepath.Join(dir, "bin")) {
		t.Errorf("a demo process is still running:\n%s", ps)
	}
}
