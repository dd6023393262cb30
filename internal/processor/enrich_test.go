package processor

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ghclient"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/transform/transformtest"
)

// TestEnrichmentFromRESTWithRuleCache: a code scanning webhook without the
// rule's security severity gets it from REST once; later alerts of the same
// rule use the cache; a failing REST API never loses the event.
func TestEnrichmentFromRESTWithRuleCache(t *testing.T) {
	e := newEnv(t)
	gh := ghtest.New(t, ghtest.Options{})
	inst := gh.AddInstallation("Codertocat", "Organization")
	repo := gh.AddRepository(inst.ID, "Hello-World", false)
	alerts := gh.AddAlerts(repo.ID, ghtest.CodeScanning, 3)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	app, err := ghclient.New(logger, ghclient.Config{BaseURL: gh.URL(), AppID: gh.AppID(), PrivateKeyPEM: gh.PrivateKeyPEM(), MaxRetryElapsed: time.Second, RetryInitial: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	enricher := NewRESTEnricher(e.state, app, EnrichAuto, 5*time.Second)
	p := New(logger, e.js, e.js, e.findings, transformtest.Defaults(), enricher, NewMetrics(metrics.NewRegistry()), Config{Workers: 1})

	// The webhook's rule says "note" (LOW); REST knows its security
	// severity is high (HIGH).
	event := func(number int64) []byte {
		pl := sample(t, "code_scanning_alert", "created.payload.json")
		pl["installation"] = map[string]any{"id": inst.ID}
		r := pl["repository"].(map[string]any)
		r["id"], r["name"], r["full_name"] = repo.ID, repo.Name, repo.FullName
		r["owner"].(map[string]any)["login"] = repo.Owner
		a := pl["alert"].(map[string]any)
		a["number"] = number
		rule := a["rule"].(map[string]any)
		rule["id"], rule["severity"] = "js/zipslip", "note"
		delete(rule, "security_severity_level")
		return mustJSON(t, pl)
	}
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", event(alerts[0].Number))
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", event(alerts[1].Number))
	e.start(p)
	e.waitDrained()
	for _, a := range alerts[:2] {
		d, ok := e.doc(finding.Key(finding.SAST, repo.ID, a.Number))
		if !ok {
			t.Fatalf("alert %d: no finding", a.Number)
		}
		if got := d.Finding().Severity; got != finding.SeverityHigh {
			t.Errorf("alert %d: severity %s, want HIGH from REST", a.Number, got)
		}
	}
	if n := gh.Stats().ByEndpoint["GET /repos/{owner}/{repo}/code-scanning/alerts/{id}"]; n != 1 {
		t.Errorf("%d REST alert fetches, want 1 (the second alert uses the rule cache); stats %+v", n, gh.Stats().ByEndpoint)
	}

	// REST failing: the event is still processed, with the webhook's severity.
	if err := e.state.Purge(context.Background(), ruleKey("js/zipslip")); err != nil {
		t.Fatal(err)
	}
	gh.Inject(ghtest.ServerError("", 0, 1000))
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", event(alerts[2].Number))
	e.waitDrained()
	d, ok := e.doc(finding.Key(finding.SAST, repo.ID, alerts[2].Number))
	if !ok {
		t.Fatal("event lost when enrichment failed")
	}
	if got := d.Finding().Severity; got != finding.SeverityLow {
		t.Errorf("severity %s without enrichment, want LOW from the webhook", got)
	}
}
