package processor

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/scope"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/transform"
)

// manyAlerts publishes n code scanning alerts of repository 1296269
// (public) with the given custom properties: rule levels error, warning
// and note in turn (HIGH, MEDIUM, LOW), every fourth one fixed.
func (e *env) manyAlerts(n int, props map[string]any) {
	e.t.Helper()
	levels := []string{"error", "warning", "note"}
	for i := 1; i <= n; i++ {
		var p map[string]any
		if err := json.Unmarshal(alertIn(e.t, i, levels[i%3], i, props), &p); err != nil {
			e.t.Fatal(err)
		}
		if i%4 == 0 {
			a := p["alert"].(map[string]any)
			a["state"], a["fixed_at"] = "fixed", a["updated_at"]
		}
		e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", mustJSON(e.t, p))
	}
	e.waitDrained()
}

// expectedScore is the default table's score of alert i of manyAlerts on
// a public repository of the given criticality points.
func expectedScore(i, criticality int) int {
	if i%4 == 0 {
		return 0
	}
	base := []int{70, 45, 20}[i%3]
	return min(base+10+criticality, 100)
}

// findingMessages counts the finding messages on GHAS_FINDINGS by key.
func (e *env) findingMessageCounts() map[string]int {
	e.t.Helper()
	out := map[string]int{}
	for _, m := range e.messages(stream.FindingsStream, "ghas.findings.") {
		out[m.Header.Get(stream.HeaderFindingKey)]++
	}
	return out
}

// propertyEvent is a custom_property_values event of repository 1296269
// setting criticality.
func propertyEvent(t *testing.T, criticality string) []byte {
	return mustJSON(t, map[string]any{
		"action":              "updated",
		"repository":          map[string]any{"id": 1296269, "name": "api", "full_name": "octo-org/api", "html_url": "https://github.com/octo-org/api", "owner": map[string]any{"login": "octo-org"}, "topics": []string{"go", "payments"}, "visibility": "public"},
		"new_property_values": []map[string]any{{"property_name": "criticality", "value": criticality}},
		"organization":        map[string]any{"login": "octo-org"},
		"installation":        map[string]any{"id": 1},
	})
}

// TestCriticalityChangeRescoresTheRepository: a custom_property_values
// event that changes a repository's criticality writes each of its 1,000
// findings once — their asset changed — with the new score, and the same
// values again write nothing.
func TestCriticalityChangeRescoresTheRepository(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 findings")
	}
	const n = 1000
	e := newEnv(t)
	e.start(e.newProcessor(Config{Scope: filter(t, scope.Settings{CriticalityProperty: scope.DefaultCriticalityProperty})}))
	e.manyAlerts(n, map[string]any{"criticality": "medium", "owner": "payments"})
	for _, i := range []int{1, 2, 3, 4} {
		d := e.mustDoc(finding.Key(finding.SAST, 1296269, int64(i)))
		if got := d.Finding().Priority.Score; got != expectedScore(i, 0) || d.AssetDetail.RepositoryAssetClass.Criticality != "medium" {
			t.Fatalf("finding %d before: score %d criticality %q", i, got, d.AssetDetail.RepositoryAssetClass.Criticality)
		}
	}
	before := e.findingMessageCounts()

	start := time.Now()
	e.publish(stream.WebhookSubject("custom_property_values"), "custom_property_values", propertyEvent(t, "critical"))
	e.waitDrained()
	t.Logf("criticality change on %d findings: %v", n, time.Since(start))
	after := e.findingMessageCounts()
	for i := 1; i <= n; i++ {
		key := finding.Key(finding.SAST, 1296269, int64(i))
		if got := after[key] - before[key]; got != 1 {
			t.Errorf("%s: %d messages for the change, want 1", key, got)
		}
		d := e.mustDoc(key)
		p := d.Finding().Priority
		if d.AssetDetail.RepositoryAssetClass.Criticality != "critical" || p.Score != expectedScore(i, 15) {
			t.Errorf("%s: criticality %q score %d, want critical %d", key, d.AssetDetail.RepositoryAssetClass.Criticality, p.Score, expectedScore(i, 15))
		}
		if !strings.Contains(strings.Join(factorsOf(p), " "), "criticality=critical:15") {
			t.Errorf("%s: factors %v", key, factorsOf(p))
		}
	}
	if len(after) != len(before) {
		t.Errorf("%d findings with messages, were %d", len(after), len(before))
	}

	// The same value again: nothing changes, nothing is published.
	e.publish(stream.WebhookSubject("custom_property_values"), "custom_property_values", propertyEvent(t, "critical"))
	e.waitDrained()
	again := e.findingMessageCounts()
	for k, c := range again {
		if c != after[k] {
			t.Errorf("%s: %d more messages for an unchanged criticality", k, c-after[k])
		}
	}
}

// TestPriorityTableChangeRescores: a new priority table in KV ghas_maps
// re-scores the stored findings at once, writing exactly those whose
// priority changed; a refused table changes nothing.
func TestPriorityTableChangeRescores(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mapsKV, err := e.js.KeyValue(ctx, stream.MapsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := transform.Seed(ctx, mapsKV); err != nil {
		t.Fatal(err)
	}
	w := transform.NewWatcher(slog.New(slog.NewTextHandler(io.Discard, nil)), mapsKV)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = w.Run(wctx) }()
	if err := w.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	p := New(slog.New(slog.NewTextHandler(io.Discard, nil)), e.js, e.js, e.findings, w, nil, NewMetrics(metrics.NewRegistry()), Config{Workers: 4})
	e.start(p)
	const n = 60
	e.manyAlerts(n, map[string]any{"criticality": "high"})
	before := e.findingMessageCounts()

	// HIGH is worth 80 now: the HIGH findings change (the ACTIVE ones'
	// score, the FIXED ones' factors); MEDIUM and LOW ones do not.
	table := strings.Replace(string(transform.DefaultPriorityJSON()), `"HIGH": 70`, `"HIGH": 80`, 1)
	rev, err := mapsKV.Put(ctx, transform.PriorityKey, []byte(table))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WaitRevision(ctx, rev); err != nil {
		t.Fatal(err)
	}
	highs := 0
	for i := 1; i <= n; i++ {
		if i%3 == 0 {
			highs++
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		after := e.findingMessageCounts()
		changed := 0
		for i := 1; i <= n; i++ {
			key := finding.Key(finding.SAST, 1296269, int64(i))
			changed += after[key] - before[key]
		}
		if changed == highs {
			break
		}
		if changed > highs || time.Now().After(deadline) {
			t.Fatalf("%d findings re-published after the table change, want the %d HIGH ones", changed, highs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := 1; i <= n; i++ {
		key := finding.Key(finding.SAST, 1296269, int64(i))
		d := e.mustDoc(key)
		want := expectedScore(i, 8)
		if i%3 == 0 && i%4 != 0 {
			want = min(80+10+8, 100)
		}
		if got := d.Finding().Priority.Score; got != want {
			t.Errorf("%s: score %d, want %d", key, got, want)
		}
		if i%3 == 0 && d.Finding().Priority.Factors[0].Points != 80 {
			t.Errorf("%s: severity factor %+v", key, d.Finding().Priority.Factors[0])
		}
	}

	// A refused table: nothing is re-scored.
	settled := e.findingMessageCounts()
	bad := strings.Replace(table, `"HIGH": 80`, `"HIGH": 800`, 1)
	if rev, err = mapsKV.Put(ctx, transform.PriorityKey, []byte(bad)); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitRevision(ctx, rev); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	for k, c := range e.findingMessageCounts() {
		if c != settled[k] {
			t.Errorf("%s re-published after a refused table", k)
		}
	}
}
