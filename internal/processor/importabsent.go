package processor

import (
	"context"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/imports"
	"github.com/ghas-relay/ghas-relay/internal/scope"
	"github.com/ghas-relay/ghas-relay/internal/state"
)

// Findings a complete scan no longer lists. With the scope's record (the
// fast path) they are the ids the last complete scan listed. Without it —
// the record expired with the bucket's max age, or the bucket was
// recreated or purged — they come from the state itself: the stored
// findings the same tool imported on the repository whose document names
// this scope (findings[0].importScope). Findings of another scope (another
// category or ref of the same tool) and those written before documents
// named their scope are left alone.

// absentScan is a complete scan settling the findings of its scope it no
// longer lists.
type absentScan struct {
	repoID    int64
	facts     scope.Repository
	filter    *scope.Filter
	tool      string
	category  string
	ref       string
	scannedAt string
	now       time.Time
	// seen holds the ids the scan listed.
	seen map[string]bool
}

// absentOutcome counts what settling did; kept are the ids of the scope,
// found without a record, that the scan left as they were because a
// later scan listed them: the next record keeps them so the next complete
// scan still speaks for them.
type absentOutcome struct {
	fixed, removed int
	kept           []string
}

// settleAbsent marks FIXED every finding of the scope the scan no longer
// lists, DISMISSED ones too (REMOVED out-of-scope when the filters exclude
// it now), each under compare-and-set, one write per change. rec is the scope's
// record, nil when there is none.
func (p *Processor) settleAbsent(ctx context.Context, a absentScan, rec *scopeRecord) (absentOutcome, error) {
	var out absentOutcome
	keys, checkScope, err := p.absentCandidates(ctx, a, rec)
	if err != nil {
		return out, err
	}
	for _, key := range keys {
		var removed, kept bool
		o, err := p.store.Apply(ctx, key, func(stored *finding.Document, _ uint64) (*finding.Document, error) {
			removed, kept = false, false
			if checkScope && (stored == nil || stored.Finding() == nil || !stored.Finding().ImportScope.Same(a.tool, a.category, a.ref)) {
				return nil, nil // another scope's, or written before documents named their scope
			}
			if d := leftScope(a.filter, a.facts, stored, a.now); d != nil {
				removed = true
				return d, nil
			}
			d := imports.Fixed(stored, a.scannedAt, a.now)
			kept = d == nil && stored != nil && stored.Finding() != nil && !imports.Settled(stored)
			return d, nil
		})
		if err != nil {
			return out, err
		}
		switch {
		case o == state.Written && removed:
			out.removed++
		case o == state.Written:
			out.fixed++
		case checkScope && kept:
			_, _, _, id, _ := finding.ParseImportKey(key)
			out.kept = append(out.kept, id)
		}
	}
	return out, nil
}

// absentCandidates are the keys of the findings a complete scan may have
// to settle, and whether each must be checked for the scan's scope: the
// record's ids the scan did not list, or, without a record, every stored
// key of the tool on the repository the scan did not list.
func (p *Processor) absentCandidates(ctx context.Context, a absentScan, rec *scopeRecord) (keys []string, checkScope bool, err error) {
	if rec != nil {
		for _, id := range rec.IDs {
			if !a.seen[id] {
				keys = append(keys, finding.ImportKey(finding.SAST, a.repoID, a.tool, id))
			}
		}
		return keys, false, nil
	}
	all, err := p.store.KeysOfImportTool(ctx, finding.SAST, a.repoID, a.tool)
	if err != nil {
		return nil, false, err
	}
	for _, k := range all {
		if _, _, _, id, err := finding.ParseImportKey(k); err == nil && !a.seen[id] {
			keys = append(keys, k)
		}
	}
	return keys, true, nil
}
