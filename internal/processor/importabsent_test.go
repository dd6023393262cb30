package processor

import (
	"context"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/imports"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// TestAbsentFixesDismissed: absent means FIXED whatever the status. A
// later complete scan that no longer lists a finding the tool suppressed
// (DISMISSED) or the relay dismissed (a triage on the document) fixes it;
// the rest of the document — the triage, the mitigation — stays, and a
// scan that lists it again brings the triage's dismissal back.
func TestAbsentFixesDismissed(t *testing.T) {
	e := newEnv(t)
	e.start(e.newProcessor(Config{}))
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", mustJSON(t, sample(t, "code_scanning_alert", "created.payload.json")))
	e.waitDrained()
	all := []string{"path-traversal", "missing-authorization", "hardcoded-credential"}
	e.publishImport("Codertocat/Hello-World", "2026-11-21T08:30:00Z", importSARIF(t, "2026-11-21T08:30:00Z", all...), "")
	e.waitDrained()
	docs := e.importedDocs()
	if s := docs["hardcoded-credential"].Findings[0].FindingStatus; s != finding.StatusDismissed {
		t.Fatalf("the suppressed result is %s", s)
	}
	// The relay dismissed missing-authorization (as a decision does).
	ma := docs["missing-authorization"]
	ma.Findings[0].FindingStatus = finding.StatusDismissed
	ma.Findings[0].Triage = &finding.Triage{Decision: "dismiss", Reason: "false_positive", By: "team-a", At: "2026-11-21T09:00:00Z", DecisionID: "d1"}
	b, _, err := ma.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.findings.Put(context.Background(), ma.FindingKey, b); err != nil {
		t.Fatal(err)
	}

	later := e.publishImport("Codertocat/Hello-World", "2026-11-22T08:30:00Z", importSARIF(t, "2026-11-22T08:30:00Z", "path-traversal"), "")
	e.waitDrained()
	if st := e.importStatus(later); st.Findings.Fixed != 2 {
		t.Errorf("later scan: %+v, want 2 fixed", st.Findings)
	}
	docs = e.importedDocs()
	for _, rule := range []string{"missing-authorization", "hardcoded-credential"} {
		if f := docs[rule].Findings[0]; f.FindingStatus != finding.StatusFixed || f.LastFixedOn == nil || *f.LastFixedOn != "2026-11-22T08:30:00Z" {
			t.Errorf("%s absent from a later scan: %s, lastFixedOn %v", rule, f.FindingStatus, f.LastFixedOn)
		}
	}
	if tr := docs["missing-authorization"].Findings[0].Triage; tr == nil || tr.DecisionID != "d1" {
		t.Errorf("the triage was dropped: %+v", tr)
	}
	if m := docs["hardcoded-credential"].Findings[0].Mitigation; m == nil || m.MitigationStrategy != "suppressed" {
		t.Errorf("the mitigation was dropped: %+v", m)
	}

	back := e.publishImport("Codertocat/Hello-World", "2026-11-23T08:30:00Z", importSARIF(t, "2026-11-23T08:30:00Z", all...), "")
	e.waitDrained()
	if st := e.importStatus(back); st.Status != imports.StatusProcessed {
		t.Fatalf("third scan: %+v", st)
	}
	if f := e.importedDocs()["missing-authorization"].Findings[0]; f.FindingStatus != finding.StatusDismissed || f.Triage == nil {
		t.Errorf("listed again: %s, triage %+v; want the triage's dismissal back", f.FindingStatus, f.Triage)
	}
}
