package state

import (
	"context"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

func doc(key, status, lastFound, origin string) *finding.Document {
	return &finding.Document{SchemaVersion: 1, FindingKey: key, Origin: origin,
		Findings: []finding.Finding{{ExternalFindingID: "1", FindingStatus: status, Severity: finding.SeverityHigh, LastFoundOn: &lastFound}}}
}

func TestNewer(t *testing.T) {
	const k = "sast.1.1"
	for _, c := range []struct {
		name             string
		incoming, stored *finding.Document
		want             bool
	}{
		{"later wins", doc(k, "ACTIVE", "2026-01-02T00:00:00Z", "webhook"), doc(k, "FIXED", "2026-01-01T00:00:00Z", "webhook"), true},
		{"earlier loses", doc(k, "FIXED", "2026-01-01T00:00:00Z", "reconcile"), doc(k, "ACTIVE", "2026-01-02T00:00:00Z", "webhook"), false},
		{"same time: REST wins", doc(k, "ACTIVE", "2026-01-01T00:00:00Z", "reconcile"), doc(k, "FIXED", "2026-01-01T00:00:00Z", "webhook"), true},
		{"same time and origin: close wins", doc(k, "FIXED", "2026-01-01T00:00:00Z", "webhook"), doc(k, "ACTIVE", "2026-01-01T00:00:00Z", "webhook"), true},
		{"same time and origin: reopen loses", doc(k, "ACTIVE", "2026-01-01T00:00:00Z", "webhook"), doc(k, "FIXED", "2026-01-01T00:00:00Z", "webhook"), false},
		{"nothing stored", doc(k, "ACTIVE", "2026-01-01T00:00:00Z", "webhook"), nil, true},
	} {
		if got := Newer(c.incoming, c.stored); got != c.want {
			t.Errorf("%s: Newer = %v, want %v", c.name, got, c.want)
		}
	}
	// Any order of two versions decides the same winner.
	a, b := doc(k, "DISMISSED", "2026-01-01T00:00:00Z", "webhook"), doc(k, "DISMISSED", "2026-01-01T00:00:00Z", "webhook")
	b.Findings[0].Severity = finding.SeverityLow
	if Newer(a, b) == Newer(b, a) {
		t.Error("a tie on time, origin and status is not broken the same way in both orders")
	}
}

func TestAuthoritative(t *testing.T) {
	for _, c := range []struct {
		stored, snap uint64
		want         bool
	}{{5, 0, false}, {5, 5, true}, {4, 5, true}, {6, 5, false}, {0, 5, true}} {
		if got := Authoritative(c.stored, c.snap); got != c.want {
			t.Errorf("Authoritative(%d, %d) = %v, want %v", c.stored, c.snap, got, c.want)
		}
	}
}

// The store writes one revision per change with its own message id,
// writes after a delete marker, and scans headers only (markers included).
func TestStoreRevisions(t *testing.T) {
	_, js := streamtest.Run(t).Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, stream.FindingsBucket)
	if err != nil {
		t.Fatal(err)
	}
	s := New(js, kv, 16)
	const k = "sast.1.1"
	a := doc(k, "ACTIVE", "2026-01-01T00:00:00Z", "webhook")
	b := doc(k, "FIXED", "2026-01-02T00:00:00Z", "webhook")
	put := func(d *finding.Document) Outcome {
		o, err := s.Apply(ctx, k, func(*finding.Document, uint64) (*finding.Document, error) { return d, nil })
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	if put(a) != Written || put(a) != Unchanged || put(b) != Written || put(a) != Written {
		t.Fatal("A, A, B, A: want written, unchanged, written, written")
	}
	ids := map[string]bool{}
	for rev := uint64(1); rev <= 3; rev++ {
		m, err := js.Stream(ctx, stream.FindingsKVStream)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := m.GetMsg(ctx, rev)
		if err != nil {
			t.Fatal(err)
		}
		ids[raw.Header.Get(stream.HeaderMsgID)] = true
		wantPrev := map[uint64]string{1: "0", 2: "1", 3: "2"}[rev]
		if got := raw.Header.Get(stream.HeaderPreviousRevision); got != wantPrev {
			t.Errorf("revision %d: previous revision %q, want %q", rev, got, wantPrev)
		}
	}
	if len(ids) != 3 {
		t.Errorf("3 revisions carry %d distinct message ids", len(ids))
	}
	if err := kv.Delete(ctx, k); err != nil {
		t.Fatal(err)
	}
	d, rev, err := s.Get(ctx, k)
	if err != nil || d != nil || rev != 0 {
		t.Errorf("Get after delete = %v, %d, %v; want nil, 0, nil", d, rev, err)
	}
	if _, rev, _ := s.Get(ctx, "sast.1.2"); rev != 0 {
		t.Errorf("Get of a key never written: revision %d, want 0", rev)
	}
	if put(a) != Written {
		t.Fatal("a write after the delete marker was not stored")
	}
	_, _ = s.Apply(ctx, "sca.1.1", func(*finding.Document, uint64) (*finding.Document, error) {
		x := *b
		x.FindingKey = "sca.1.1"
		return &x, nil
	})
	if err := kv.Delete(ctx, "sca.1.1"); err != nil {
		t.Fatal(err)
	}
	got := map[string]Entry{}
	if err := s.Scan(ctx, func(e Entry) { got[e.Key] = e }); err != nil {
		t.Fatal(err)
	}
	if e := got[k]; e.Deleted || e.Hash != a.ContentHash() || e.Revision != 5 {
		t.Errorf("scan %s = %+v, want revision 5 with A's hash", k, e)
	}
	if e := got["sca.1.1"]; !e.Deleted || e.Hash != "" {
		t.Errorf("scan sca.1.1 = %+v, want a delete marker", e)
	}
	last, err := s.LastRevision(ctx)
	if err != nil || last != 7 {
		t.Errorf("LastRevision = %d, %v; want 7", last, err)
	}
}

// A restarted instance (empty cache) assumes a key it never saw is new and
// writes the content the key was created with: the same message id as the
// key's first write. That write must not pass for stored while a newer
// revision is current (the server checks the expected revision; write
// also re-reads on a duplicate ack): it is a conflict, read again and
// retried, and A is back over the hand-written revision.
func TestDuplicateIDIsNoSuccessOverANewerRevision(t *testing.T) {
	_, js := streamtest.Run(t).Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, stream.FindingsBucket)
	if err != nil {
		t.Fatal(err)
	}
	const k = "sast.1.1"
	a := doc(k, "ACTIVE", "2026-01-01T00:00:00Z", "reconcile")
	write := func(s *Store, d *finding.Document) Outcome {
		o, err := s.Apply(ctx, k, func(*finding.Document, uint64) (*finding.Document, error) { return d, nil })
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	if write(New(js, kv, 16), a) != Written {
		t.Fatal("first write not stored")
	}
	z := doc(k, "FIXED", "2027-01-01T00:00:00Z", "webhook")
	b, _, _ := z.Encode()
	if _, err := kv.Put(ctx, k, b); err != nil {
		t.Fatal(err)
	}
	// A restarted instance (empty cache) writes A again.
	if write(New(js, kv, 16), a) != Written {
		t.Fatal("second write of A not stored")
	}
	got, _, err := New(js, kv, 0).Get(ctx, k)
	if err != nil || got == nil || got.ContentHash() != a.ContentHash() {
		t.Errorf("stored %+v, want A back over the hand-written revision", got)
	}
}
