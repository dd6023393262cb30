package transform

import (
	"encoding/json"
	"testing"
	"time"
)

// obj edits a JSON object.
func obj(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWebhookEqualsREST: one alert, arriving as a webhook payload (in the
// shape GitHub's webhooks use) or as the REST object in the reconciler's
// envelope, gives the same document (same content hash).
func TestWebhookEqualsREST(t *testing.T) {
	repo := listedRepository(t)
	maps := Defaults()
	for _, tc := range []struct {
		name, event, action, rest string
		hookAlert                 func(a map[string]any) // REST alert → webhook alert
		ruleSeverity              string
	}{
		{
			// The old webhook shape: instances[] instead of
			// most_recent_instance, and no security_severity_level on the
			// rule (the processor knows it from its rule cache).
			name: "code scanning, old instances shape", event: EventCodeScanning, action: "closed_by_user",
			rest: "code-scanning-get-alert.json", ruleSeverity: "high",
			hookAlert: func(a map[string]any) {
				a["instances"] = []any{a["most_recent_instance"]}
				delete(a, "most_recent_instance")
				delete(a, "instances_url")
				delete(a["rule"].(map[string]any), "security_severity_level")
			},
		},
		{
			name: "code scanning, current shape", event: EventCodeScanning, action: "closed_by_user",
			rest: "code-scanning-update-alert.dismissed.json",
			hookAlert: func(a map[string]any) {
				a["instances"] = []any{map[string]any{"ref": "refs/heads/other", "location": map[string]any{"path": "x.js"}}}
			},
		},
		{
			// A Dependabot webhook's alert is the REST alert object itself
			// (assignees, dependency.relationship and all).
			name: "dependabot", event: EventDependabot, action: "dismissed",
			rest:      "dependabot-update-alert.dismissed.json",
			hookAlert: func(map[string]any) {},
		},
		{
			// Secret scanning webhooks have no state and never the secret.
			name: "secret scanning", event: EventSecretScanning, action: "resolved",
			rest: "secret-scanning-update-alert.resolved.json",
			hookAlert: func(a map[string]any) {
				delete(a, "state")
				delete(a, "secret")
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			restAlert := obj(t, readFile(t, repoRoot+"/rest/"+tc.rest))
			// Real alerts carry updated_at; the documentation examples
			// do not always. Give both the same one.
			restAlert["updated_at"] = "2024-06-01T12:00:00Z"
			hook := obj(t, marshal(t, restAlert))
			tc.hookAlert(hook)

			restEv := Event{Name: tc.event, Origin: "reconcile", ReceivedAt: testReceived,
				Payload: envelope(t, ActionReconcile, marshal(t, restAlert), repo)}
			hookEv := Event{Name: tc.event, Origin: "webhook", ReceivedAt: testReceived.Add(-time.Hour), RuleSeverity: tc.ruleSeverity,
				Payload: marshal(t, map[string]any{"action": tc.action, "alert": hook, "repository": json.RawMessage(repo),
					"installation": map[string]any{"id": 42}, "sender": map[string]any{"login": "octocat"}})}
			a, err := maps.Alert(restEv, testNow)
			if err != nil {
				t.Fatal(err)
			}
			b, err := maps.Alert(hookEv, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if a.ContentHash() != b.ContentHash() {
				t.Errorf("documents differ:\nREST:    %s\nwebhook: %s", render(t, a), render(t, b))
			}
			if a.Origin != "reconcile" || b.Origin != "webhook" {
				t.Errorf("origins %q %q", a.Origin, b.Origin)
			}
		})
	}
}
