package index

import (
	"cmp"
	"slices"
)

// aggregates are the counts the summary and the posture metrics read,
// kept as each revision is applied so that neither walks the findings.
type aggregates struct {
	live int64
	// byTSS counts live findings by type, severity and status.
	byTSS [3][5][4]int64
	// openByOwner counts ACTIVE findings by owner and severity.
	openByOwner map[uint32]*[5]int64
	// openBySource counts ACTIVE findings by source.
	openBySource map[uint32]int64
}

func (a *aggregates) init() {
	a.openByOwner = map[uint32]*[5]int64{}
	a.openBySource = map[uint32]int64{}
}

func (a *aggregates) add(e *entry, d int32) {
	dd := int64(d)
	a.live += dd
	a.byTSS[e.typ][e.sev][e.status] += dd
	if e.status != active {
		return
	}
	o := a.openByOwner[e.owner]
	if o == nil {
		o = new([5]int64)
		a.openByOwner[e.owner] = o
	}
	o[e.sev] += dd
	if total(o) == 0 {
		delete(a.openByOwner, e.owner)
	}
	if c := a.openBySource[e.source] + dd; c != 0 {
		a.openBySource[e.source] = c
	} else {
		delete(a.openBySource, e.source)
	}
}

func total(c *[5]int64) int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// SeverityCounts are counts by severity (CRITICAL..INFO) and their total.
type SeverityCounts struct {
	Critical int64 `json:"CRITICAL"`
	High     int64 `json:"HIGH"`
	Medium   int64 `json:"MEDIUM"`
	Low      int64 `json:"LOW"`
	Info     int64 `json:"INFO"`
	Total    int64 `json:"total"`
}

func severityCounts(c [5]int64) SeverityCounts {
	return SeverityCounts{Critical: c[0], High: c[1], Medium: c[2], Low: c[3], Info: c[4], Total: c[0] + c[1] + c[2] + c[3] + c[4]}
}

// Get returns the count of severity s (CRITICAL..INFO).
func (c SeverityCounts) Get(s string) int64 {
	switch s {
	case "CRITICAL":
		return c.Critical
	case "HIGH":
		return c.High
	case "MEDIUM":
		return c.Medium
	case "LOW":
		return c.Low
	case "INFO":
		return c.Info
	}
	return 0
}

// OwnerCounts are an owner's open findings; Owner "" is findings whose
// repository names no owner, and Other marks the sum of the owners beyond
// the top ones.
type OwnerCounts struct {
	Owner string `json:"owner"`
	Other bool   `json:"other,omitempty"`
	SeverityCounts
}

// SourceCount is a source's open findings.
type SourceCount struct {
	Source string `json:"source"`
	Open   int64  `json:"open"`
}

// openByOwner returns the owners with the most open findings (ties by
// name), the rest summed in one row with Other set.
func (ix *Index) openByOwner(top int) []OwnerCounts {
	rows := make([]OwnerCounts, 0, len(ix.agg.openByOwner))
	for id, c := range ix.agg.openByOwner {
		rows = append(rows, OwnerCounts{Owner: ix.strs[id], SeverityCounts: severityCounts(*c)})
	}
	slices.SortFunc(rows, func(a, b OwnerCounts) int {
		if c := cmp.Compare(b.Total, a.Total); c != 0 {
			return c
		}
		return cmp.Compare(a.Owner, b.Owner)
	})
	if len(rows) <= top {
		return rows
	}
	var rest [5]int64
	for _, r := range rows[top:] {
		rest[0] += r.Critical
		rest[1] += r.High
		rest[2] += r.Medium
		rest[3] += r.Low
		rest[4] += r.Info
	}
	return append(rows[:top:top], OwnerCounts{Owner: "other", Other: true, SeverityCounts: severityCounts(rest)})
}

func (ix *Index) openBySource() []SourceCount {
	rows := make([]SourceCount, 0, len(ix.agg.openBySource))
	for id, n := range ix.agg.openBySource {
		rows = append(rows, SourceCount{Source: ix.strs[id], Open: n})
	}
	slices.SortFunc(rows, func(a, b SourceCount) int {
		if c := cmp.Compare(b.Open, a.Open); c != 0 {
			return c
		}
		return cmp.Compare(a.Source, b.Source)
	})
	return rows
}
