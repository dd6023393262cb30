package index

import (
	"cmp"
	"slices"
	"time"
)

// TopOwners is how many owners the summary names; the rest are "other".
const TopOwners = 20

// TopExposures is how many ACTIVE findings the summary lists.
const TopExposures = 10

// Summary answers the morning questions at once.
type Summary struct {
	GeneratedAt  string `json:"generatedAt"`
	Findings     int64  `json:"findings"`
	Open         int64  `json:"open"`
	Repositories int    `json:"repositories"`
	// OpenByType holds, for each type, its ACTIVE findings by severity.
	OpenByType map[string]SeverityCounts `json:"openByType"`
	// OpenByOwner are the TopOwners owners with the most ACTIVE findings
	// and one row "other" (Other set) for the rest.
	OpenByOwner  []OwnerCounts `json:"openByOwner"`
	OpenBySource []SourceCount `json:"openBySource"`
	// TimeToFix is the median time to fix by type and severity over the
	// fixes of the last 90 days (cells without fixes left out).
	TimeToFix []FixTime `json:"timeToFix"`
	// TopExposures are the ACTIVE findings with the highest priority.
	TopExposures []Item `json:"topExposures"`
}

// FixTime is the median time to fix of a type and severity.
type FixTime struct {
	Type          string `json:"type"`
	Severity      string `json:"severity"`
	MedianSeconds int64  `json:"medianSeconds"`
	Median        string `json:"median"`
	Fixes         int    `json:"fixes"`
}

// Summary returns the summary.
func (ix *Index) Summary() (Summary, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if !ix.loaded {
		return Summary{}, ErrNotLoaded
	}
	s := Summary{GeneratedAt: ix.now().UTC().Format(time.RFC3339), Findings: ix.agg.live, OpenByType: map[string]SeverityCounts{}}
	for t, name := range Types {
		var c [5]int64
		for sev := range Severities {
			c[sev] = ix.agg.byTSS[t][sev][active]
		}
		sc := severityCounts(c)
		s.OpenByType[name] = sc
		s.Open += sc.Total
	}
	for i := range ix.repos {
		if ix.repos[i].live > 0 {
			s.Repositories++
		}
	}
	s.OpenByOwner = ix.openByOwner(TopOwners)
	s.OpenBySource = ix.openBySource()
	s.TimeToFix = []FixTime{}
	for t, tn := range Types {
		for sev, sn := range Severities {
			m, n := ix.ttf.median(t, sev)
			if n == 0 {
				continue
			}
			s.TimeToFix = append(s.TimeToFix, FixTime{Type: tn, Severity: sn, MedianSeconds: int64(m / time.Second), Median: HumanDuration(m), Fixes: n})
		}
	}
	s.TopExposures = ix.top(TopExposures)
	return s, nil
}

// top walks the priority order for the first n ACTIVE findings.
func (ix *Index) top(n int) []Item {
	out := []Item{}
	p := position{}
	for len(out) < n {
		x, ok := ix.prio.next(&p)
		if !ok {
			break
		}
		if e := &ix.entries[x.id]; e.live && e.status == active {
			out = append(out, ix.item(x.id, nil))
		}
	}
	return out
}

// HumanDuration writes d the way a person says it: "3 d 4 h", "5 h 12 min",
// "40 s".
func HumanDuration(d time.Duration) string {
	s := int64(d / time.Second)
	switch {
	case s >= 86400:
		return itoa(s/86400) + " d " + itoa(s%86400/3600) + " h"
	case s >= 3600:
		return itoa(s/3600) + " h " + itoa(s%3600/60) + " min"
	case s >= 60:
		return itoa(s/60) + " min"
	}
	return itoa(s) + " s"
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// Asset is a repository with its sources, owner and counts.
type Asset struct {
	Repository string `json:"repository"`
	ID         int64  `json:"repositoryId"`
	Owner      string `json:"owner"` // "": none
	// Sources report findings on it (REMOVED ones aside).
	Sources []string `json:"sources"`
	// Findings counts its findings that are not REMOVED.
	Findings int64          `json:"findings"`
	Open     SeverityCounts `json:"open"`
}

// AssetQuery selects repositories: Source reports on them; with Only, no
// other source does (without Source: exactly one source does).
type AssetQuery struct {
	Source string
	Only   bool
}

// Assets lists the repositories, most open findings first.
func (ix *Index) Assets(q AssetQuery) ([]Asset, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if !ix.loaded {
		return nil, ErrNotLoaded
	}
	src, known := ix.strIDs[q.Source]
	out := []Asset{}
	if q.Source != "" && !known {
		return out, nil
	}
	for i := range ix.repos {
		r := &ix.repos[i]
		if r.live == 0 {
			continue
		}
		_, has := r.sources[src]
		switch {
		case q.Source != "" && !has:
			continue
		case q.Only && len(r.sources) != 1:
			continue
		}
		out = append(out, ix.asset(r))
	}
	slices.SortFunc(out, func(a, b Asset) int {
		if c := cmp.Compare(b.Open.Total, a.Open.Total); c != 0 {
			return c
		}
		return cmp.Compare(a.Repository, b.Repository)
	})
	return out, nil
}

func (ix *Index) asset(r *repo) Asset {
	a := Asset{Repository: r.fullName, ID: r.id, Owner: ix.strs[r.owner], Sources: make([]string, 0, len(r.sources)), Findings: int64(r.total)}
	for s := range r.sources {
		a.Sources = append(a.Sources, ix.strs[s])
	}
	slices.Sort(a.Sources)
	var c [5]int64
	for i, v := range r.open {
		c[i] = int64(v)
	}
	a.Open = severityCounts(c)
	return a
}

// SourceAssets is how many repositories a source reports on, and how
// many of them no other source does.
type SourceAssets struct {
	Source       string `json:"source"`
	Repositories int    `json:"repositories"`
	Alone        int    `json:"alone"`
}

// AssetsBySource counts repositories by source, most first.
func (ix *Index) AssetsBySource() []SourceAssets {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	by := map[uint32]*SourceAssets{}
	for i := range ix.repos {
		r := &ix.repos[i]
		for s := range r.sources {
			sa := by[s]
			if sa == nil {
				sa = &SourceAssets{Source: ix.strs[s]}
				by[s] = sa
			}
			sa.Repositories++
			if len(r.sources) == 1 {
				sa.Alone++
			}
		}
	}
	out := make([]SourceAssets, 0, len(by))
	for _, sa := range by {
		out = append(out, *sa)
	}
	slices.SortFunc(out, func(a, b SourceAssets) int {
		if c := cmp.Compare(b.Repositories, a.Repositories); c != 0 {
			return c
		}
		return cmp.Compare(a.Source, b.Source)
	})
	return out
}

// Owners lists the owners of live findings and Sources the sources, for
// the page's filter choices (sorted).
func (ix *Index) Owners() []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	seen := map[uint32]bool{}
	for i := range ix.repos {
		if ix.repos[i].live > 0 && ix.repos[i].owner != 0 {
			seen[ix.repos[i].owner] = true
		}
	}
	for id := range ix.agg.openByOwner {
		if id != 0 {
			seen[id] = true
		}
	}
	out := make([]string, 0, len(seen))
	for id := range seen {
		out = append(out, ix.strs[id])
	}
	slices.Sort(out)
	return out
}

// Sources lists the sources of live findings, sorted.
func (ix *Index) Sources() []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	seen := map[uint32]bool{}
	for i := range ix.repos {
		for s := range ix.repos[i].sources {
			seen[s] = true
		}
	}
	out := make([]string, 0, len(seen))
	for id := range seen {
		out = append(out, ix.strs[id])
	}
	slices.Sort(out)
	return out
}
