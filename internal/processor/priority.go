package processor

import (
	"context"
	"slices"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/state"
)

// Priority: every document the processor writes, whatever built it (an
// alert, an import, a repository or property change, a removal, a
// re-scoring), passes through a finisher (state.Finisher) that decides the
// finding's corroboration (correlate.go) and sets its priority from the
// table in use. The priority is part of the content, so a finding is
// written and published once when its score or any other field changed,
// and not at all otherwise.

// finisher finishes the documents of one state.Store.Apply call.
type finisher struct {
	p   *Processor
	key string
	// touched are the correlation keys whose index entry a Finish of this
	// call changed or confirmed; last those of the latest Finish, the one
	// that read what KV holds when the call wrote.
	touched []string
	last    []string
}

func (p *Processor) newFinisher(key string) state.Finisher { return &finisher{p: p, key: key} }

// Finish implements state.Finisher: it copies next, decides its
// corroboration when the finding enters, leaves or moves within the
// correlation index, and sets its priority.
func (f *finisher) Finish(ctx context.Context, stored, next *finding.Document) (*finding.Document, error) {
	d := *next
	d.Findings = slices.Clone(next.Findings)
	nf := d.Finding()
	if nf == nil {
		return &d, nil
	}
	f.last = f.last[:0]
	if nf.CorrelationKey == "" {
		nf.Corroborated = false
	} else if old, cur := membershipOf(stored), membershipOf(&d); old != cur {
		corroborated, err := f.p.correlate(ctx, f, old, cur)
		if err != nil {
			return nil, err
		}
		if cur.key != "" {
			nf.Corroborated = corroborated
		}
		// A finding that leaves ACTIVE keeps the corroboration it had, for
		// history, like its other factors.
	}
	f.p.maps.Current().Priority().Apply(&d)
	return &d, nil
}

// Done implements state.Finisher: an index entry changed by an attempt
// whose document was not the one written is set back to what KV holds.
func (f *finisher) Done(ctx context.Context, final *finding.Document, written bool) error {
	var settle []string
	for _, ck := range f.touched {
		if !written || !slices.Contains(f.last, ck) {
			settle = append(settle, ck)
		}
	}
	if len(settle) == 0 {
		return nil
	}
	return f.p.settle(ctx, f.key, settle, membershipOf(final))
}

// touch records that this call changed or confirmed ck's index entry.
func (f *finisher) touch(ck string) {
	f.last = append(f.last, ck)
	if !slices.Contains(f.touched, ck) {
		f.touched = append(f.touched, ck)
	}
}
