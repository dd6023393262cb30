package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// chromium returns the headless browser on this machine, or skips.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium on this machine (.ci/run installs it)")
	return ""
}

// dumpDOM loads url in headless Chromium and returns the document as the
// browser built it.
func dumpDOM(t *testing.T, browser, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir="+t.TempDir(), "--dump-dom", url)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom %s: %v", url, err)
	}
	return string(out)
}

// TestBrowser loads the overview in headless Chromium and checks what a
// person sees: the top exposure's name and score, its factors, the
// changes since yesterday, the filters; then a finding's history.
func TestBrowser(t *testing.T) {
	browser := chromium(t)
	w := seeded(t)
	// Without tokens, on a loopback address: the browser needs none.
	base, _ := startConsole(t, w, map[string]string{"CONSOLE_TOKENS": ""})
	dom := dumpDOM(t, browser, base+"/")
	for _, want := range []string{"Top exposures", "SQL injection in checkout", `<span class="score">97</span>`, "exposure public +10",
		"What changed", "Changes by kind", "Assets by source", "Show findings"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the overview as Chromium shows it lacks %q", want)
		}
	}
	// The top exposure comes first in its table.
	top := dom[strings.Index(dom, "Top exposures"):]
	if i, j := strings.Index(top, "SQL injection in checkout"), strings.Index(top, "Stripe key"); i < 0 || j < 0 || i > j {
		t.Error("the top exposure is not listed first")
	}
	if strings.Contains(dom, "<script>alert") {
		t.Error("a finding's name became markup")
	}
	detail := dumpDOM(t, browser, base+"/findings/sast.337911632.10")
	if !strings.Contains(detail, "History") || strings.Count(detail, "<li><strong>") < 2 {
		t.Errorf("the finding page as Chromium shows it lacks its history:\n%.2000s", detail)
	}
}
