package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// traversalAlert is the code scanning sample on Codertocat/Hello-World
// (public) turned into alert number of rule CWE-22 at the place where the
// Claude Security sample reports its path traversal, with action at
// minute m.
func traversalAlert(t *testing.T, number int, action string, minute int) []byte {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(codeScanningEvent(t, number, action, minute), &p); err != nil {
		t.Fatal(err)
	}
	a := p["alert"].(map[string]any)
	a["rule"].(map[string]any)["tags"] = []string{"security", "external/cwe/cwe-022"}
	loc := a["instances"].([]any)[0].(map[string]any)["location"].(map[string]any)
	loc["path"], loc["start_line"], loc["end_line"] = "spec-main/api-session-spec.ts", 917, 921
	return mustJSON(t, p)
}

// factorsOf is a priority's factors as name=value:points.
func factorsOf(p *finding.Priority) []string {
	if p == nil {
		return nil
	}
	var out []string
	for _, f := range p.Factors {
		out = append(out, fmt.Sprintf("%s=%s:%d", f.Name, f.Value, f.Points))
	}
	return out
}

func (e *env) mustDoc(key string) finding.Document {
	e.t.Helper()
	d, ok := e.doc(key)
	if !ok {
		e.t.Fatalf("%s not stored", key)
	}
	return d
}

// wantPriority checks a stored finding's score and factors.
func (e *env) wantPriority(key string, score int, factors ...string) finding.Document {
	e.t.Helper()
	d := e.mustDoc(key)
	p := d.Finding().Priority
	if p == nil || p.Score != score || !reflect.DeepEqual(factorsOf(p), factors) {
		e.t.Errorf("%s: priority %v %v, want %d %v", key, p != nil && p.Score == score, factorsOf(p), score, factors)
		if p != nil {
			e.t.Errorf("%s: score %d", key, p.Score)
		}
	}
	return d
}

// findingMsgs counts the messages on GHAS_FINDINGS of one finding key.
func (e *env) findingMsgs(key string) int {
	e.t.Helper()
	n := 0
	for _, m := range e.messages(stream.FindingsStream, "ghas.findings.") {
		if m.Header.Get(stream.HeaderFindingKey) == key {
			n++
		}
	}
	return n
}

// TestPriorityOnEveryWrite: GitHub's alerts and imported findings carry
// the priority of the default table, from their own inputs.
func TestPriorityOnEveryWrite(t *testing.T) {
	e := newEnv(t)
	e.start(e.newProcessor(Config{}))
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", mustJSON(t, sample(t, "code_scanning_alert", "created.payload.json")))
	e.publish(stream.WebhookSubject("dependabot_alert"), "dependabot_alert", mustJSON(t, sample(t, "dependabot_alert", "created.payload.json")))
	e.publish(stream.WebhookSubject("secret_scanning_alert"), "secret_scanning_alert", mustJSON(t, sample(t, "secret_scanning_alert", "reopened.payload.json")))
	e.waitDrained()
	id := e.publishImport("Codertocat/Hello-World", "2026-11-21T08:00:00Z", importSARIF(t, "2026-11-21T08:00:00Z", allRules...), "")
	waitFor(e, id)
	var keys []string
	lister, err := e.findings.ListKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	if len(keys) != 6 {
		t.Fatalf("%d findings stored: %v", len(keys), keys)
	}
	docs := map[string]finding.Document{} // by rule
	for _, k := range keys {
		d := e.mustDoc(k)
		if d.Finding().Priority == nil || len(d.Finding().Priority.Factors) == 0 {
			t.Errorf("%s without a priority", k)
		}
		docs[d.Finding().RuleID] = d
	}
	// SARIF's security-severity 8.1 replaces the level's HIGH; the
	// repository is public. (The secret scanning sample's repository has
	// Hello-World's name with another id: the import goes to the latest.)
	pt := docs["path-traversal"]
	if s := pt.Finding().SecuritySeverityScore; s == nil || *s != 8.1 {
		t.Errorf("securitySeverityScore %v", s)
	}
	e.wantPriority(pt.FindingKey, 91, "severity=security-severity 8.1:81", "exposure=public:10")
	// Suppressed (DISMISSED): 0, factors kept.
	e.wantPriority(docs["hardcoded-credential"].FindingKey, 0, "severity=security-severity 9.3:93", "exposure=public:10", "status=DISMISSED:0")
	// GitHub's code scanning gives no numeric score: the rule's level.
	e.wantPriority(finding.Key(finding.SAST, helloWorld, 10), 80, "severity=HIGH:70", "exposure=public:10")
	e.wantPriority(docs["GHSA-c2qf-rxjj-qqgw"].FindingKey, 63, "severity=cvss3 5.3:53", "exposure=public:10")
	e.wantPriority(docs["adafruit_io_key"].FindingKey, 80, "severity=HIGH:70", "exposure=public:10")
}

// TestCorroboration: a CodeQL alert and an imported finding of the same
// weakness corroborate each other while both are ACTIVE: each is written
// once when the other appears or leaves, and nothing else is.
func TestCorroboration(t *testing.T) {
	e := newEnv(t)
	e.start(e.newProcessor(Config{}))
	gh := finding.Key(finding.SAST, helloWorld, 10)
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", traversalAlert(t, 10, "created", 1))
	e.waitDrained()
	d := e.wantPriority(gh, 80, "severity=HIGH:70", "exposure=public:10")
	if d.Finding().CorrelationKey == "" || d.Finding().Corroborated {
		t.Fatalf("alert: correlationKey %q corroborated %v", d.Finding().CorrelationKey, d.Finding().Corroborated)
	}

	// The import reports the same weakness: both are corroborated, each
	// with one more message.
	id := e.publishImport("Codertocat/Hello-World", "2026-11-21T08:00:00Z", importSARIF(t, "2026-11-21T08:00:00Z", "path-traversal"), "")
	waitFor(e, id)
	im := e.importedDocs()["path-traversal"]
	if im.Finding().CorrelationKey != d.Finding().CorrelationKey {
		t.Fatalf("correlation keys differ: %q %q", im.Finding().CorrelationKey, d.Finding().CorrelationKey)
	}
	e.wantPriority(im.FindingKey, 96, "severity=security-severity 8.1:81", "exposure=public:10", "corroborated=true:5")
	e.wantPriority(gh, 85, "severity=HIGH:70", "exposure=public:10", "corroborated=true:5")
	if n, m := e.findingMsgs(gh), e.findingMsgs(im.FindingKey); n != 2 || m != 1 {
		t.Errorf("messages: alert %d (want 2), import %d (want 1: born corroborated)", n, m)
	}

	// The same import again changes nothing.
	id = e.publishImport("Codertocat/Hello-World", "2026-11-21T08:00:00Z", importSARIF(t, "2026-11-21T08:00:00Z", "path-traversal"), "again")
	waitFor(e, id)
	// An alert event that changes neither its key, status nor source
	// leaves the corroboration as it is.
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", traversalAlert(t, 10, "appeared_in_branch", 2))
	e.waitDrained()
	e.wantPriority(gh, 85, "severity=HIGH:70", "exposure=public:10", "corroborated=true:5")
	if n, m := e.findingMsgs(gh), e.findingMsgs(im.FindingKey); n != 3 || m != 1 {
		t.Errorf("messages after a re-import and an alert update: alert %d (want 3), import %d (want 1)", n, m)
	}

	// CodeQL's alert is fixed: a FIXED finding corroborates nothing; it
	// scores 0 and keeps its factors.
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", traversalAlert(t, 10, "fixed", 3))
	e.waitDrained()
	e.wantPriority(gh, 0, "severity=HIGH:70", "exposure=public:10", "corroborated=true:5", "status=FIXED:0")
	e.wantPriority(im.FindingKey, 91, "severity=security-severity 8.1:81", "exposure=public:10")
	if n, m := e.findingMsgs(gh), e.findingMsgs(im.FindingKey); n != 4 || m != 2 {
		t.Errorf("messages after the fix: alert %d (want 4), import %d (want 2)", n, m)
	}

	// Reopened: corroborated again, both.
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", traversalAlert(t, 10, "reopened", 4))
	e.waitDrained()
	e.wantPriority(gh, 85, "severity=HIGH:70", "exposure=public:10", "corroborated=true:5")
	e.wantPriority(im.FindingKey, 96, "severity=security-severity 8.1:81", "exposure=public:10", "corroborated=true:5")

	// The code moved: the alert's new place is another weakness.
	var p map[string]any
	_ = json.Unmarshal(traversalAlert(t, 10, "appeared_in_branch", 5), &p)
	p["alert"].(map[string]any)["instances"].([]any)[0].(map[string]any)["location"].(map[string]any)["start_line"] = 950
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", mustJSON(t, p))
	e.waitDrained()
	e.wantPriority(gh, 80, "severity=HIGH:70", "exposure=public:10")
	e.wantPriority(im.FindingKey, 91, "severity=security-severity 8.1:81", "exposure=public:10")
}

// TestSettleRestoresTheIndex: an Apply whose first attempt moved a finding
// into the correlation index but which then wrote nothing (KV held a newer
// state) sets the index back to what KV holds, and the other member's
// corroboration with it.
func TestSettleRestoresTheIndex(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p1 := e.newProcessor(Config{})
	const ck = "0123456789abcdef"
	put := func(p *Processor, key, source, status string) {
		t.Helper()
		if _, err := p.store.Apply(ctx, key, func(*finding.Document, uint64) (*finding.Document, error) {
			return &finding.Document{SchemaVersion: 1, FindingKey: key, FindingTypeName: finding.TypeSAST, Source: source,
				Findings: []finding.Finding{{ExternalFindingID: key, FindingStatus: status, Severity: finding.SeverityHigh, CorrelationKey: ck}}}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	const f, g = "sast.7.1", "sast.7.tool.x"
	put(p1, g, "Tool", finding.StatusActive)
	put(p1, f, "GitHub", finding.StatusFixed)
	if d := e.mustDoc(g); d.Finding().Corroborated {
		t.Fatal("corroborated by a FIXED finding")
	}
	// A second instance has never seen f: its first attempt takes it for
	// new and ACTIVE; KV says FIXED, and the event turns out stale.
	p2 := e.newProcessor(Config{})
	o, err := p2.store.Apply(ctx, f, func(stored *finding.Document, _ uint64) (*finding.Document, error) {
		if stored != nil {
			return nil, nil
		}
		return &finding.Document{SchemaVersion: 1, FindingKey: f, FindingTypeName: finding.TypeSAST, Source: "GitHub",
			Findings: []finding.Finding{{ExternalFindingID: f, FindingStatus: finding.StatusActive, Severity: finding.SeverityHigh, CorrelationKey: ck}}}, nil
	})
	if err != nil || o.String() != "stale" {
		t.Fatalf("Apply: %v %v", o, err)
	}
	ms, err := p2.readIndex(ctx, 7, ck)
	if err != nil || len(ms) != 1 || ms[0].Key != g {
		t.Errorf("index %+v %v, want only %s", ms, err, g)
	}
	if d := e.mustDoc(g); d.Finding().Corroborated {
		t.Errorf("%s corroborated by a finding KV holds FIXED", g)
	}
	if d := e.mustDoc(f); d.Finding().FindingStatus != finding.StatusFixed {
		t.Errorf("%s is %s", f, d.Finding().FindingStatus)
	}
}
