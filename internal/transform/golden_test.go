package transform

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// Fixed clocks: golden files must not depend on when the tests run.
var (
	testNow      = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	testReceived = time.Date(2026, 11, 21, 9, 59, 58, 0, time.UTC)
)

const repoRoot = "../../testdata"

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// alertEvents lists the alert events with webhook samples.
func alertEvents() []string { return []string{EventCodeScanning, EventDependabot, EventSecretScanning} }

// webhookSamples returns event → sample paths.
func webhookSamples(t testing.TB) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, ev := range alertEvents() {
		files, err := filepath.Glob(filepath.Join(repoRoot, "webhooks", ev, "*.json"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no samples for %s: %v", ev, err)
		}
		out[ev] = files
	}
	return out
}

// listedRepository is the full repository object of the installation
// repository listing, as the reconciler puts it in its envelope.
func listedRepository(t testing.TB) json.RawMessage {
	t.Helper()
	var list struct {
		Repositories []json.RawMessage `json:"repositories"`
	}
	if err := json.Unmarshal(readFile(t, filepath.Join(repoRoot, "rest", "apps-list-repos-accessible-to-installation.json")), &list); err != nil || len(list.Repositories) == 0 {
		t.Fatalf("repository listing: %v", err)
	}
	return list.Repositories[0]
}

// envelope wraps a REST alert as the reconciler publishes it.
func envelope(t testing.TB, action string, alert, repo json.RawMessage) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"action": action, "alert": alert, "repository": repo,
		"installation": map[string]any{"id": 42},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type restSample struct {
	name  string // golden file name
	event string
	alert json.RawMessage
}

// restSamples returns every REST alert object of testdata/rest: the
// single-alert responses and each item of the list responses.
func restSamples(t testing.TB) []restSample {
	t.Helper()
	prefixes := map[string]string{
		"code-scanning-":   EventCodeScanning,
		"dependabot-":      EventDependabot,
		"secret-scanning-": EventSecretScanning,
	}
	files, err := filepath.Glob(filepath.Join(repoRoot, "rest", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []restSample
	for _, f := range files {
		base := strings.TrimSuffix(filepath.Base(f), ".json")
		var event string
		for p, ev := range prefixes {
			if strings.HasPrefix(base, p) {
				event = ev
			}
		}
		if event == "" || strings.Contains(base, "instances") || strings.Contains(base, "locations") {
			continue // not alerts
		}
		b := readFile(t, f)
		if strings.Contains(base, "-list-") {
			var items []json.RawMessage
			if err := json.Unmarshal(b, &items); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			for i, it := range items {
				out = append(out, restSample{name: base + "." + strconv.Itoa(i), event: event, alert: it})
			}
			continue
		}
		out = append(out, restSample{name: base, event: event, alert: b})
	}
	if len(out) < 10 {
		t.Fatalf("only %d REST alert samples", len(out))
	}
	return out
}

func render(t testing.TB, d finding.Document) []byte {
	t.Helper()
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; got:\n%s", path, got)
	}
}

// The golden documents are what the processor publishes for an event seen
// alone: the maps' document with the priority of the default table (the
// processor adds it to every document it writes; nothing here corroborates
// them or gives them a criticality).

// TestGoldenWebhooks: every webhook alert sample → its finding document.
func TestGoldenWebhooks(t *testing.T) {
	maps := Defaults()
	for ev, files := range webhookSamples(t) {
		for _, f := range files {
			name := strings.TrimSuffix(filepath.Base(f), ".json")
			t.Run(ev+"/"+name, func(t *testing.T) {
				d, err := maps.Alert(Event{Name: ev, Payload: readFile(t, f), Origin: "webhook", ReceivedAt: testReceived}, testNow)
				if err != nil {
					t.Fatal(err)
				}
				maps.Priority().Apply(&d)
				checkGolden(t, filepath.Join("testdata", "golden", ev, name+".json"), render(t, d))
			})
		}
	}
}

// TestGoldenREST: every REST alert sample in the reconciler's envelope →
// its finding document; and the same alert as reconcile_removed.
func TestGoldenREST(t *testing.T) {
	maps := Defaults()
	repo := listedRepository(t)
	for _, s := range restSamples(t) {
		t.Run(s.event+"/"+s.name, func(t *testing.T) {
			ev := Event{Name: s.event, Payload: envelope(t, ActionReconcile, s.alert, repo), Origin: "reconcile", ReceivedAt: testReceived}
			d, err := maps.Alert(ev, testNow)
			if err != nil {
				t.Fatal(err)
			}
			maps.Priority().Apply(&d)
			checkGolden(t, filepath.Join("testdata", "golden", s.event, "rest", s.name+".json"), render(t, d))
		})
	}
}
