package index

import "slices"

// reserve makes room for findings entries and revisions log records, so
// that loading a million findings does not copy the tables as they grow
// (each copy holding the old and the new at once).
func (ix *Index) reserve(findings, revisions int) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if findings > len(ix.entries) {
		ix.entries = slices.Grow(ix.entries, findings-len(ix.entries))
		if len(ix.byKey) == 0 {
			ix.byKey = make(map[string]int32, findings)
		}
	}
	if revisions > len(ix.log) {
		ix.log = slices.Grow(ix.log, revisions-len(ix.log))
	}
}

// finishLoad builds the sort orders once the initial values are in.
func (ix *Index) finishLoad() {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.loaded {
		return
	}
	ix.prio.build()
	ix.recent.build()
	for id := range ix.entries {
		if e := &ix.entries[id]; e.live {
			rp := &ix.repos[e.repo]
			for kind := range rp.sorted {
				rp.sorted[kind] = append(rp.sorted[kind], elemOf(sortKind(kind), int32(id), e))
			}
		}
	}
	for i := range ix.repos {
		for kind := range ix.repos[i].sorted {
			slices.SortFunc(ix.repos[i].sorted[kind], ix.order(sortKind(kind)).cmp)
		}
	}
	ix.ttf.sortCells()
	ix.loaded = true
}

// Loaded reports whether the initial values of KV are in.
func (ix *Index) Loaded() bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.loaded
}

// Ready reports whether the initial values of KV are in and the history
// reader caught up once.
func (ix *Index) Ready() bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.loaded && ix.histDone
}

// Version changes whenever the index applies a revision (of the bucket
// or of the history): an answer computed at one version holds until the
// next.
func (ix *Index) Version() uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.lastRev + ix.lastSeq
}

// Stats are the index's sizes and positions, for metrics and the page.
type Stats struct {
	Findings     int    // live findings
	Repositories int    // repositories with a live finding
	Revisions    int    // revisions in the log
	LastRevision uint64 // highest KV revision applied
	LastSequence uint64 // highest GHAS_FINDINGS sequence applied
}

// Stats returns the index's sizes.
func (ix *Index) Stats() Stats {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	s := Stats{Findings: int(ix.agg.live), Revisions: len(ix.log), LastRevision: ix.lastRev, LastSequence: ix.lastSeq}
	for i := range ix.repos {
		if ix.repos[i].live > 0 {
			s.Repositories++
		}
	}
	return s
}
