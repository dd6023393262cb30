package reconcile

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/state"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// snapEntry is one stored GitHub finding when a full pull began: its alert
// number and the first 8 bytes of its content hash (0 when unknown).
type snapEntry struct {
	number int64
	hash   uint64
}

// snapshot is what ghas_findings held when a full pull began, by
// repository and dataset, sorted by alert number: the candidates for
// removal (findings stored later never are in this run) and the proof a
// page record is checked against. Delete markers are left out: a deleted
// finding is not stored. About 16 bytes per finding.
type snapshot struct {
	byRepo map[int64]map[string][]snapEntry
}

// loadSnapshot reads the latest revision of every key of ghas_findings,
// headers only.
func (r *Reconciler) loadSnapshot(ctx context.Context) (*snapshot, error) {
	s := &snapshot{byRepo: map[int64]map[string][]snapEntry{}}
	err := r.store.Scan(ctx, func(e state.Entry) {
		if e.Deleted {
			return
		}
		ds, repo, num, err := finding.ParseKey(e.Key)
		if err != nil {
			return // not an alert of GitHub's (an import, say): never removed by a pull
		}
		m := s.byRepo[repo]
		if m == nil {
			m = map[string][]snapEntry{}
			s.byRepo[repo] = m
		}
		m[ds] = append(m[ds], snapEntry{number: num, hash: shortHash(e.Hash)})
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot of %s: %w", stream.FindingsBucket, err)
	}
	for _, m := range s.byRepo {
		for _, es := range m {
			slices.SortFunc(es, func(a, b snapEntry) int { return compareInt(a.number, b.number) })
		}
	}
	return s, nil
}

// hash returns the short content hash of a stored finding, and whether it
// is stored.
func (s *snapshot) hash(ds string, repo, number int64) (uint64, bool) {
	es := s.byRepo[repo][ds]
	i, ok := slices.BinarySearchFunc(es, number, func(e snapEntry, n int64) int { return compareInt(e.number, n) })
	if !ok {
		return 0, false
	}
	return es[i].hash, true
}

// numbers lists the stored alert numbers of a repository and dataset.
func (s *snapshot) numbers(ds string, repo int64) []int64 {
	es := s.byRepo[repo][ds]
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.number
	}
	return out
}

// shortHash is the first 8 bytes of a hex content hash; 0 when it is not
// one (a revision written without the hash header never proves a page).
func shortHash(h string) uint64 {
	if len(h) < 16 {
		return 0
	}
	b, err := hex.DecodeString(h[:16])
	if err != nil {
		return 0
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

func compareInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
