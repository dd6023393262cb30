package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/imports"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// Complete scans whose scope record is gone: the record expired with the
// bucket's max age (a scope imported less often than that), or the bucket
// was recreated or purged. The scan still settles what it no longer lists,
// from the state itself, and touches nothing of another scope.

const claudeCategory = "claude-security/full-scan/"

// scanOf is one complete scan of the Claude Security sample on
// Hello-World: its category and ref, a variant that gives the same rules
// other ids (the same rules found by another scope), its time and rules.
type scanOf struct {
	category, ref, variant, at string
	rules                      []string
}

// publish stores the scan as the receiver would and returns its import id.
func (s scanOf) publish(e *env) string {
	e.t.Helper()
	body := activeResults(e.t, importSARIF(e.t, s.at, s.rules...), s.variant)
	p := imports.Params{Format: imports.FormatSARIF, Repository: "Codertocat/Hello-World", Tool: "Claude Security", Organization: "Anthropic",
		Category: s.category, Ref: s.ref, ScannedAt: s.at, Complete: true}
	id := imports.ID(p, body)
	msg := imports.Message(id, p, body, time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))
	if _, err := e.js.PublishMsg(context.Background(), msg); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// activeResults drops the sample's suppressions (every result is ACTIVE)
// and appends suffix to every result's fingerprint, so the same rules get
// ids of their own.
func activeResults(t *testing.T, body []byte, suffix string) []byte {
	t.Helper()
	var log map[string]any
	if err := json.Unmarshal(body, &log); err != nil {
		t.Fatal(err)
	}
	for _, r := range log["runs"].([]any)[0].(map[string]any)["results"].([]any) {
		delete(r.(map[string]any), "suppressions")
		fp := r.(map[string]any)["partialFingerprints"].(map[string]any)
		fp["primaryLocationLineHash"] = fp["primaryLocationLineHash"].(string) + suffix
	}
	out, _ := json.Marshal(log)
	return out
}

// expireScopeRecords removes every scope record of Hello-World from
// ghas_imports as the bucket's max age does: the messages are gone, no
// marker is left.
func (e *env) expireScopeRecords() {
	e.t.Helper()
	ctx := context.Background()
	st, err := e.js.Stream(ctx, "KV_"+stream.ImportsBucket)
	if err != nil {
		e.t.Fatal(err)
	}
	subject := fmt.Sprintf("$KV.%s.%s%d.>", stream.ImportsBucket, scopeKeyPrefix, helloWorld)
	if err := st.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
		e.t.Fatal(err)
	}
	if n := len(e.scopeRecords()); n != 0 {
		e.t.Fatalf("%d scope records left after expiry", n)
	}
}

// scopeRecords are Hello-World's scope records by key.
func (e *env) scopeRecords() map[string]scopeRecord {
	e.t.Helper()
	ctx := context.Background()
	kv, err := e.js.KeyValue(ctx, stream.ImportsBucket)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]scopeRecord{}
	lister, err := kv.ListKeysFiltered(ctx, fmt.Sprintf("%s%d.*", scopeKeyPrefix, helloWorld))
	if err != nil {
		e.t.Fatal(err)
	}
	for k := range lister.Keys() {
		rec, _, err := getJSON[scopeRecord](ctx, kv, k)
		if err != nil || rec == nil {
			e.t.Fatalf("record %s: %v", k, err)
		}
		out[k] = *rec
	}
	return out
}

// claudeDocs are Hello-World's Claude Security findings with their
// revisions, by key.
func (e *env) claudeDocs() map[string]storedDoc {
	e.t.Helper()
	out := map[string]storedDoc{}
	lister, err := e.findings.ListKeysFiltered(context.Background(), fmt.Sprintf("sast.%d.claude-security.*", helloWorld))
	if err != nil {
		e.t.Fatal(err)
	}
	for k := range lister.Keys() {
		entry, err := e.findings.Get(context.Background(), k)
		if err != nil {
			e.t.Fatal(err)
		}
		d, err := finding.Decode(entry.Value())
		if err != nil {
			e.t.Fatal(err)
		}
		out[k] = storedDoc{doc: d, rev: entry.Revision()}
	}
	return out
}

type storedDoc struct {
	doc finding.Document
	rev uint64
}

func (s storedDoc) f() finding.Finding { return s.doc.Findings[0] }

// inScope is the part of docs whose importScope is (category, ref).
func inScope(docs map[string]storedDoc, category, ref string) map[string]storedDoc {
	out := map[string]storedDoc{}
	for k, d := range docs {
		if d.f().ImportScope.Same("Claude Security", category, ref) {
			out[k] = d
		}
	}
	return out
}

func (e *env) claudeMessages() int {
	return len(e.messages(stream.FindingsStream, stream.FindingSubject(finding.SAST, helloWorld)))
}

// TestCompleteScanWithoutRecordFixesAbsent: a complete scan of a scope
// whose record expired fixes the scope's ACTIVE findings it no longer
// lists, keeps the one it lists ACTIVE, publishes one message per change,
// and writes the record again for the next scan.
func TestCompleteScanWithoutRecordFixesAbsent(t *testing.T) {
	e := helloWorldKnown(t)
	first := scanOf{category: claudeCategory, at: "2026-11-01T08:00:00Z", rules: allRules}
	if c := statusCounts(e, waitFor(e, first.publish(e))); c != (imports.Counts{New: 3}) {
		t.Fatalf("first scan: %+v", c)
	}
	e.expireScopeRecords()
	before := e.claudeMessages()

	later := scanOf{category: claudeCategory, at: "2026-12-01T08:00:00Z", rules: []string{"path-traversal"}}
	if c := statusCounts(e, waitFor(e, later.publish(e))); c.Fixed != 2 || c.Changed != 1 {
		t.Errorf("scan without record: %+v, want 2 fixed and 1 changed", c)
	}
	docs := e.claudeDocs()
	if len(docs) != 3 {
		t.Fatalf("%d findings, want 3", len(docs))
	}
	var listedID string
	for _, d := range docs {
		f := d.f()
		if f.RuleID == "path-traversal" {
			listedID = f.ExternalFindingID
			if f.FindingStatus != finding.StatusActive || deref(f.LastFoundOn) != later.at || deref(f.FirstFoundOn) != first.at {
				t.Errorf("listed finding: %s first %s last %s", f.FindingStatus, deref(f.FirstFoundOn), deref(f.LastFoundOn))
			}
			continue
		}
		if f.FindingStatus != finding.StatusFixed || f.SourceState != "absent" || deref(f.LastFixedOn) != later.at {
			t.Errorf("%s no longer listed: %s (%s) fixed on %s, want FIXED on %s", f.RuleID, f.FindingStatus, f.SourceState, deref(f.LastFixedOn), later.at)
		}
	}
	if got := e.claudeMessages() - before; got != 3 {
		t.Errorf("%d finding messages for 3 changes", got)
	}
	recs := e.scopeRecords()
	if len(recs) != 1 {
		t.Fatalf("%d scope records after the scan, want 1", len(recs))
	}
	for _, rec := range recs {
		if rec.ScannedAt != later.at || len(rec.IDs) != 1 || rec.IDs[0] != listedID {
			t.Errorf("record written again: %+v", rec)
		}
	}

	// Expired again: a later scan leaves the FIXED findings as they are.
	e.expireScopeRecords()
	fixedDocs, msgs := e.claudeDocs(), e.claudeMessages()
	again := scanOf{category: claudeCategory, at: "2027-01-01T08:00:00Z", rules: []string{"path-traversal"}}
	if c := statusCounts(e, waitFor(e, again.publish(e))); c.Fixed != 0 || c.Changed != 1 {
		t.Errorf("scan without record over FIXED findings: %+v, want 1 changed", c)
	}
	for k, d := range e.claudeDocs() {
		if d.f().RuleID != "path-traversal" && d.rev != fixedDocs[k].rev {
			t.Errorf("FIXED %s written again", k)
		}
	}
	if got := e.claudeMessages() - msgs; got != 1 {
		t.Errorf("%d finding messages for 1 change", got)
	}
}

// TestCompleteScanWithoutRecordKeepsOtherScopes: without records, a
// complete scan of one scope never touches the findings of another
// category or another ref of the same tool on the same repository.
func TestCompleteScanWithoutRecordKeepsOtherScopes(t *testing.T) {
	e := helloWorldKnown(t)
	scans := []scanOf{
		{category: claudeCategory, at: "2026-11-01T08:00:00Z", rules: allRules},
		{category: "claude-security/pr-scan/", variant: "-pr", at: "2026-11-01T09:00:00Z", rules: allRules},
		{category: claudeCategory, ref: "refs/heads/release", variant: "-release", at: "2026-11-01T10:00:00Z", rules: allRules},
	}
	for _, s := range scans {
		if c := statusCounts(e, waitFor(e, s.publish(e))); c != (imports.Counts{New: 3}) {
			t.Fatalf("scan %s %s: %+v", s.category, s.ref, c)
		}
	}
	e.expireScopeRecords()
	before := e.claudeDocs()
	if len(before) != 9 {
		t.Fatalf("%d findings, want 9", len(before))
	}

	later := scanOf{category: claudeCategory, at: "2026-12-01T08:00:00Z", rules: []string{"path-traversal"}}
	if c := statusCounts(e, waitFor(e, later.publish(e))); c.Fixed != 2 {
		t.Errorf("scan without record: %+v, want 2 fixed", c)
	}
	after := e.claudeDocs()
	fixed := 0
	for _, d := range inScope(after, claudeCategory, "") {
		if d.f().FindingStatus == finding.StatusFixed {
			fixed++
		}
	}
	if fixed != 2 {
		t.Errorf("%d findings of the scanned scope FIXED, want 2", fixed)
	}
	for _, other := range scans[1:] {
		docs := inScope(after, other.category, other.ref)
		if len(docs) != 3 {
			t.Fatalf("scope %s %s holds %d findings, want 3", other.category, other.ref, len(docs))
		}
		for k, d := range docs {
			if d.f().FindingStatus != finding.StatusActive || d.rev != before[k].rev {
				t.Errorf("%s of scope %s %s touched: %s, revision %d → %d", k, other.category, other.ref, d.f().FindingStatus, before[k].rev, d.rev)
			}
		}
	}
}

// TestOlderScanWithoutRecordFixesNothing: without a record, a complete
// scan older than the findings' lastFoundOn changes none of them; the
// record it writes still lets the next, later scan fix what that one no
// longer lists.
func TestOlderScanWithoutRecordFixesNothing(t *testing.T) {
	e := helloWorldKnown(t)
	current := scanOf{category: claudeCategory, at: "2026-11-10T08:00:00Z", rules: allRules}
	if c := statusCounts(e, waitFor(e, current.publish(e))); c != (imports.Counts{New: 3}) {
		t.Fatalf("scan: %+v", c)
	}
	e.expireScopeRecords()
	before := e.claudeDocs()
	msgs := e.claudeMessages()

	older := scanOf{category: claudeCategory, at: "2026-11-01T08:00:00Z", rules: []string{"path-traversal"}}
	if c := statusCounts(e, waitFor(e, older.publish(e))); c.Fixed != 0 || c.Changed != 0 || c.New != 0 {
		t.Errorf("older scan without record: %+v, want nothing changed", c)
	}
	for k, d := range e.claudeDocs() {
		if d.f().FindingStatus != finding.StatusActive || deref(d.f().LastFoundOn) != current.at || d.rev != before[k].rev {
			t.Errorf("%s changed by an older scan: %s last found %s", k, d.f().FindingStatus, deref(d.f().LastFoundOn))
		}
	}
	if got := e.claudeMessages() - msgs; got != 0 {
		t.Errorf("an older scan published %d finding messages", got)
	}

	next := scanOf{category: claudeCategory, at: "2026-11-20T08:00:00Z", rules: []string{"path-traversal"}}
	if c := statusCounts(e, waitFor(e, next.publish(e))); c.Fixed != 2 {
		t.Errorf("the next scan: %+v, want 2 fixed", c)
	}
	for k, d := range e.claudeDocs() {
		want := finding.StatusFixed
		if d.f().RuleID == "path-traversal" {
			want = finding.StatusActive
		}
		if d.f().FindingStatus != want {
			t.Errorf("%s after the next scan: %s, want %s", k, d.f().FindingStatus, want)
		}
	}
}

// helloWorldKnown is a running processor that knows Hello-World from
// GitHub's code scanning sample (an import resolves its repository so).
func helloWorldKnown(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	e.start(e.newProcessor(Config{}))
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", mustJSON(t, sample(t, "code_scanning_alert", "created.payload.json")))
	e.waitDrained()
	return e
}

// waitFor waits until the processor drained its events and returns id.
func waitFor(e *env, id string) string {
	e.t.Helper()
	e.waitDrained()
	return id
}
