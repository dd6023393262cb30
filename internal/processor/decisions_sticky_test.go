package processor

import (
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/decisions"
	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
)

// TestDecisionStickyImports: a dismissal of an imported finding changes
// it in KV only and sticks: a later complete scan that lists it keeps it
// DISMISSED, one that does not list it makes it FIXED with its triage
// kept, and listed again it is DISMISSED again. A reopen takes it back.
func TestDecisionStickyImports(t *testing.T) {
	e := newDecEnv(t)
	e.start(e.processor(Config{}))
	e.alert(ghtest.CodeScanning, 1) // the repository, known to the relay
	e.waitDrained()
	both := []string{"path-traversal", "missing-authorization"}
	e.scan("2026-11-21T08:30:00Z", both...)
	key := e.importedKey("missing-authorization")
	st := e.outcome(e.decide("appsec", nil, decisions.Request{FindingKey: key, Decision: "dismiss", Reason: "tolerable_risk", Comment: "internal only"})[0])
	if st.Status != decisions.StatusApplied || st.Results[0].AppliedTo != "relay" {
		t.Fatalf("dismissal: %+v", st)
	}
	check := func(when, status string) {
		t.Helper()
		f := e.finding(key)
		if f.FindingStatus != status || f.Triage == nil || f.Triage.Decision != "dismiss" || f.Triage.Reason != "tolerable_risk" ||
			f.Triage.AppliedTo != "relay" || f.Triage.By != "appsec" {
			t.Errorf("%s: %s %+v, want %s with the triage", when, f.FindingStatus, f.Triage, status)
		}
	}
	check("dismissed", finding.StatusDismissed)
	if n := len(e.gh.Updates()); n != 0 {
		t.Errorf("an imported finding's decision made %d GitHub updates", n)
	}

	e.scan("2026-11-22T08:30:00Z", both...)
	check("listed by the next scan", finding.StatusDismissed)
	e.scan("2026-11-23T08:30:00Z", "path-traversal")
	check("absent from a scan", finding.StatusFixed)
	e.scan("2026-11-24T08:30:00Z", both...)
	check("listed again", finding.StatusDismissed)
	if f := e.finding(e.importedKey("path-traversal")); f.FindingStatus != finding.StatusActive || f.Triage != nil {
		t.Errorf("the other finding: %s %+v", f.FindingStatus, f.Triage)
	}

	st = e.outcome(e.decide("appsec", nil, decisions.Request{FindingKey: key, Decision: "reopen"})[0])
	if f := e.finding(key); st.Status != decisions.StatusApplied || f.FindingStatus != finding.StatusActive || f.Triage.Decision != "reopen" {
		t.Errorf("reopen: %+v %s %+v", st, f.FindingStatus, f.Triage)
	}
	e.scan("2026-11-25T08:30:00Z", both...)
	if f := e.finding(key); f.FindingStatus != finding.StatusActive {
		t.Errorf("after a reopen a scan made it %s", f.FindingStatus)
	}
}
