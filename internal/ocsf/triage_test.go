package ocsf_test

import (
	"path/filepath"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ocsf"
)

// TestTriage: an imported finding the relay dismissed is Suppressed
// (status_id 3) with the decision's comment and reason; a GitHub alert
// dismissed through the relay keeps GitHub's reason with the decision's
// comment; a reopened finding carries the reopen's comment; a triage the
// status no longer follows (a dismissed finding fixed since) gives
// nothing. Every event validates against the schema.
func TestTriage(t *testing.T) {
	schema := loadSchema(t)
	tri := func(decision, reason, comment string) *finding.Triage {
		return &finding.Triage{Decision: decision, Reason: reason, Comment: comment, By: "appsec", At: "2026-11-21T10:00:00Z",
			DecisionID: "0123456789abcdef0123456789abcdef", AppliedTo: "relay"}
	}
	imported := readDoc(t, filepath.Join("testdata", "documents", "import-sarif.json"))
	for _, c := range []struct {
		name       string
		doc        finding.Document
		status     string
		triage     *finding.Triage
		mitigation *finding.Mitigation
		statusID   int
		comment    string
		detail     string
	}{
		{"imported, dismissed", imported, finding.StatusDismissed, tri("dismiss", "tolerable_risk", "internal only"), nil, 3, "internal only", "tolerable_risk"},
		{"GitHub's, dismissed", sastDoc(t), finding.StatusDismissed, tri("dismiss", "false_positive", "sanitised"),
			&finding.Mitigation{MitigationStrategy: "false positive", Comment: "sanitised"}, 3, "sanitised", "false positive"},
		{"reopened", imported, finding.StatusActive, tri("reopen", "", "not so"), nil, 1, "not so", ""},
		{"fixed since", imported, finding.StatusFixed, tri("dismiss", "wont_fix", "later"), nil, 4, "", ""},
	} {
		doc := c.doc
		doc.Findings = append([]finding.Finding(nil), c.doc.Findings...)
		f := &doc.Findings[0]
		f.FindingStatus, f.Triage, f.Mitigation, f.RemovedReason = c.status, c.triage, c.mitigation, ""
		ev, err := ocsf.Convert(doc, ocsf.Revision{Time: revTime()})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if ev.StatusID != c.statusID || ev.Comment != c.comment || ev.StatusDetail != c.detail {
			t.Errorf("%s: status_id %d comment %q status_detail %q, want %d %q %q", c.name, ev.StatusID, ev.Comment, ev.StatusDetail, c.statusID, c.comment, c.detail)
		}
		b, err := ocsf.Encode(doc, ocsf.Revision{Time: revTime()})
		if err != nil {
			t.Fatal(err)
		}
		if err := schema.Validate(b); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
