package processor

import (
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// TestOlderScanAfterLaterFix: an older complete scan applied after a later
// one of its scope changes nothing, also when the scope's record does not
// say so — two processors took the two imports at once and both read the
// record before either wrote it (the random-fault test's seed 7002: three
// findings the later scan fixed were ACTIVE again, written by the older
// scan, whose record write then failed its compare-and-set and whose
// redelivery saw the later record), or the record expired in between.
// The findings the later scan fixed stay FIXED as of it, and the one it
// listed keeps its time.
func TestOlderScanAfterLaterFix(t *testing.T) {
	e := helloWorldKnown(t)
	first := scanOf{category: claudeCategory, at: "2026-11-01T08:00:00Z", rules: allRules}
	waitFor(e, first.publish(e))
	later := scanOf{category: claudeCategory, at: "2026-11-03T08:00:00Z", rules: []string{"path-traversal"}}
	if c := statusCounts(e, waitFor(e, later.publish(e))); c.Fixed != 2 {
		t.Fatalf("later scan: %+v, want 2 fixed", c)
	}
	before := e.claudeDocs()
	// The older scan sees no record of the later one, as when it read the
	// record before the later scan wrote it.
	e.expireScopeRecords()
	older := scanOf{category: claudeCategory, at: "2026-11-02T08:00:00Z", rules: allRules}
	c := statusCounts(e, waitFor(e, older.publish(e)))
	if c.New+c.Changed+c.Fixed != 0 {
		t.Errorf("older scan: %+v, want nothing changed", c)
	}
	after := e.claudeDocs()
	for k, b := range before {
		a := after[k]
		if a.rev != b.rev {
			f := a.f()
			t.Errorf("%s (%s) written again by the older scan: %s, last found %s, fixed %s", k, f.RuleID, f.FindingStatus, deref(f.LastFoundOn), deref(f.LastFixedOn))
		}
		if b.f().RuleID != "path-traversal" && b.f().FindingStatus != finding.StatusFixed {
			t.Errorf("%s: %s after the later scan, want FIXED", k, b.f().FindingStatus)
		}
	}
}
