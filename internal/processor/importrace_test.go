package processor

import (
	"context"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/imports"
	"github.com/ghas-relay/ghas-relay/internal/stream"
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

// TestOlderScanWrittenAfterLaterRecord: findings an older complete scan
// wrote that the later scan's record never named are FIXED as of the later
// scan once the older scan meets that record. The interleaving (the
// random-fault test's seed 7026: four findings ACTIVE that only earlier
// imports listed): both imports read the scope's record before either
// wrote it; the older one wrote its findings (new ids, which that record
// did not name) and then lost its record's compare-and-set, or was killed
// before writing it; the later one's absent pass, which looks only at the
// ids of the record it read, never saw them; the older one's redelivery
// found the later record and changed nothing, so they stayed ACTIVE.
func TestOlderScanWrittenAfterLaterRecord(t *testing.T) {
	e := helloWorldKnown(t)
	ctx := context.Background()
	kv, err := e.js.KeyValue(ctx, stream.ImportsBucket)
	if err != nil {
		t.Fatal(err)
	}
	first := scanOf{category: claudeCategory, at: "2026-11-01T08:00:00Z", rules: []string{"path-traversal"}}
	waitFor(e, first.publish(e))
	recs := e.scopeRecords()
	if len(recs) != 1 {
		t.Fatalf("%d scope records, want 1", len(recs))
	}
	var key string
	for k := range recs {
		key = k
	}
	read, err := kv.Get(ctx, key) // the record both imports read
	if err != nil {
		t.Fatal(err)
	}
	// The older scan writes its findings; its record never lands.
	older := scanOf{category: claudeCategory, at: "2026-11-02T08:00:00Z", rules: allRules}
	waitFor(e, older.publish(e))
	if _, err := kv.Put(ctx, key, read.Value()); err != nil {
		t.Fatal(err)
	}
	// The later scan settles with the record it read.
	later := scanOf{category: claudeCategory, at: "2026-11-03T08:00:00Z", rules: []string{"path-traversal"}}
	waitFor(e, later.publish(e))
	// The older import is delivered again.
	body := activeResults(t, importSARIF(t, older.at, older.rules...), "")
	p := imports.Params{Format: imports.FormatSARIF, Repository: "Codertocat/Hello-World", Tool: "Claude Security", Organization: "Anthropic",
		Category: older.category, ScannedAt: older.at, Complete: true}
	msg := imports.Message(imports.ID(p, body), p, body, time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))
	msg.Header.Del(stream.HeaderMsgID) // a redelivery, not a duplicate publish
	if _, err := e.js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	e.waitDrained()
	docs := e.claudeDocs()
	if len(docs) < 2 {
		t.Fatalf("%d findings, want the older scan's too", len(docs))
	}
	for k, d := range docs {
		f := d.f()
		switch {
		case f.RuleID == "path-traversal" && (f.FindingStatus != finding.StatusActive || deref(f.LastFoundOn) != later.at):
			t.Errorf("%s (%s): %s, last found %s, want ACTIVE found %s", k, f.RuleID, f.FindingStatus, deref(f.LastFoundOn), later.at)
		case f.RuleID != "path-traversal" && (f.FindingStatus != finding.StatusFixed || deref(f.LastFixedOn) != later.at):
			t.Errorf("%s (%s): %s, fixed %s, want FIXED as of %s", k, f.RuleID, f.FindingStatus, deref(f.LastFixedOn), later.at)
		}
	}
}
