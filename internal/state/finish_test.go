package state

import (
	"context"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

// recordingFinisher names every document it finishes and records how
// Apply ended.
type recordingFinisher struct {
	finishes int
	done     []bool // written, per Done
	final    []*finding.Document
}

func (r *recordingFinisher) Finish(_ context.Context, _, next *finding.Document) (*finding.Document, error) {
	r.finishes++
	d := *next
	d.Findings = append([]finding.Finding(nil), next.Findings...)
	d.Findings[0].Name = "finished"
	return &d, nil
}

func (r *recordingFinisher) Done(_ context.Context, final *finding.Document, written bool) error {
	r.done = append(r.done, written)
	r.final = append(r.final, final)
	return nil
}

// TestFinisher: every written document passes through the finisher, the
// finisher's document is what is stored and compared, and Done reports
// the end of each Apply that called Finish.
func TestFinisher(t *testing.T) {
	_, js := streamtest.Run(t).Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, stream.FindingsBucket)
	if err != nil {
		t.Fatal(err)
	}
	var fins []*recordingFinisher
	s := NewFinishing(js, kv, 16, func(string) Finisher {
		f := &recordingFinisher{}
		fins = append(fins, f)
		return f
	})
	const k = "sast.1.1"
	put := func(status string) Outcome {
		t.Helper()
		o, err := s.Apply(ctx, k, func(*finding.Document, uint64) (*finding.Document, error) {
			return doc(k, status, "2026-01-01T00:00:00Z", "webhook"), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	if o := put(finding.StatusActive); o != Written {
		t.Fatalf("first write: %v", o)
	}
	got, _, err := s.Get(ctx, k)
	if err != nil || got == nil || got.Findings[0].Name != "finished" {
		t.Fatalf("stored %+v, %v: not the finisher's document", got, err)
	}
	if f := fins[0]; f.finishes != 1 || len(f.done) != 1 || !f.done[0] || f.final[0].Findings[0].Name != "finished" {
		t.Errorf("first Apply: %d finishes, done %v", f.finishes, f.done)
	}
	// The same content again: the finisher's document equals the stored
	// one, so nothing is written; Done says so.
	if o := put(finding.StatusActive); o != Unchanged {
		t.Fatalf("second write: %v", o)
	}
	if f := fins[1]; f.finishes == 0 || len(f.done) != 1 || f.done[0] || f.final[0] == nil {
		t.Errorf("unchanged Apply: %d finishes, done %v", f.finishes, f.done)
	}
	// An update function that leaves the finding alone never reaches
	// Finish, and Done is not called.
	if _, err := s.Apply(ctx, k, func(*finding.Document, uint64) (*finding.Document, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if f := fins[2]; f.finishes != 0 || len(f.done) != 0 {
		t.Errorf("stale Apply: %d finishes, done %v", f.finishes, f.done)
	}
}
