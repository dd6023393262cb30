package transform

import (
	"testing"
)

// BenchmarkAlert measures the transform alone, per dataset, on real
// webhook samples (about 10 KB each, most of it repository URLs) and on a
// REST alert in the reconciler's envelope.
func BenchmarkAlert(b *testing.B) {
	maps := Defaults()
	repo := listedRepository(b)
	cases := []struct{ name, event string }{
		{"sast/webhook", EventCodeScanning},
		{"sca/webhook", EventDependabot},
		{"secret/webhook", EventSecretScanning},
	}
	files := map[string]string{
		EventCodeScanning:   repoRoot + "/webhooks/code_scanning_alert/fixed.payload.json",
		EventDependabot:     repoRoot + "/webhooks/dependabot_alert/created.payload.json",
		EventSecretScanning: repoRoot + "/webhooks/secret_scanning_alert/reopened.payload.json",
	}
	for _, c := range cases {
		payload := readFile(b, files[c.event])
		b.Run(c.name, func(b *testing.B) {
			benchAlert(b, maps, Event{Name: c.event, Payload: payload, ReceivedAt: testReceived})
		})
	}
	rest := map[string]string{
		"sast/rest":   "code-scanning-get-alert.json",
		"sca/rest":    "dependabot-get-alert.json",
		"secret/rest": "secret-scanning-get-alert.json",
	}
	for _, name := range []string{"sast/rest", "sca/rest", "secret/rest"} {
		ev := map[string]string{"sast": EventCodeScanning, "sca": EventDependabot, "secret": EventSecretScanning}[name[:len(name)-5]]
		payload := envelope(b, ActionReconcile, readFile(b, repoRoot+"/rest/"+rest[name]), repo)
		b.Run(name, func(b *testing.B) { benchAlert(b, maps, Event{Name: ev, Payload: payload, ReceivedAt: testReceived}) })
	}
}

func benchAlert(b *testing.B, maps *Maps, ev Event) {
	b.SetBytes(int64(len(ev.Payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := maps.Alert(ev, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkInspect(b *testing.B) {
	ev := Event{Name: EventCodeScanning, Payload: readFile(b, repoRoot+"/webhooks/code_scanning_alert/fixed.payload.json")}
	b.SetBytes(int64(len(ev.Payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Inspect(ev); err != nil {
			b.Fatal(err)
		}
	}
}
