package index

import (
	"slices"
	"time"
)

// HistoryWindow is how far back the revision log goes: GHAS_FINDINGS
// keeps 30 days.
const HistoryWindow = 30 * 24 * time.Hour

// Change kinds, in the order the API lists their counts.
const (
	KindNew             = "new"
	KindFixed           = "fixed"
	KindReopened        = "reopened"
	KindDismissed       = "dismissed"
	KindRemoved         = "removed"
	KindSeverityChanged = "severityChanged"
	KindPriorityChanged = "priorityChanged"
)

// Kinds are the change kinds; bit i of a revision's kinds is Kinds[i].
var Kinds = []string{KindNew, KindFixed, KindReopened, KindDismissed, KindRemoved, KindSeverityChanged, KindPriorityChanged}

const (
	bitNew = 1 << iota
	bitFixed
	bitReopened
	bitDismissed
	bitRemoved
	bitSeverity
	bitPriority
)

// statusBits is the change kind of arriving at a status.
var statusBits = [4]uint8{bitReopened, bitFixed, bitDismissed, bitRemoved}

// revision is one finding revision of GHAS_FINDINGS: 32 bytes.
type revision struct {
	at         int64 // when GHAS_FINDINGS stored it, Unix milliseconds
	seq        uint64
	id         int32
	kinds      uint8
	fromStatus uint8 // none: unknown
	toStatus   uint8
	fromSev    uint8
	toSev      uint8
	fromScore  int8 // -1: unknown
	toScore    int8
}

// histFields are what a revision says that changes are told from.
type histFields struct {
	key      []byte
	status   uint8
	sev      uint8
	score    int8
	prevRev  string // header Ghas-Previous-Revision: "0" for a new finding
	prevStat string // header Ghas-Previous-Status
}

// addRevision appends a revision read from GHAS_FINDINGS (sequence seq,
// stored at at) and tells what it changed from the finding's previous
// revision: the one read before it, else the headers the processor wrote
// (a new finding, or the status it replaced). A finding first stored in
// another status than ACTIVE is not "new" (it was found and closed before
// ghas-relay saw it) but a change to that status from none (from null):
// GitHub's "fixed" of an alert the relay had not seen is still a fix it
// learnt of. A revision without the processor's headers (a document
// another writer put in the bucket) that is the first of its finding read
// is taken as the finding's first.
func (ix *Index) addRevision(h histFields, seq uint64, at time.Time) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if seq <= ix.lastSeq {
		return // read again after the reader restarted
	}
	ix.lastSeq = seq
	id, ok := ix.entryOf(h.key)
	if !ok {
		return
	}
	e := &ix.entries[id]
	r := revision{at: at.UnixMilli(), seq: seq, id: id, fromStatus: none, toStatus: h.status, fromSev: none, toSev: h.sev, fromScore: -1, toScore: h.score}
	switch {
	case e.hSeen:
		r.fromStatus, r.fromSev, r.fromScore = e.hStatus, e.hSev, e.hScore
	case h.prevRev == "0", h.prevRev == "" && h.prevStat == "":
		if h.status == active {
			r.kinds |= bitNew
		} else {
			r.kinds |= statusBits[h.status]
		}
	default:
		if s, ok := lookup(Statuses, h.prevStat); ok {
			r.fromStatus = s
		}
	}
	if r.fromStatus != none && r.fromStatus != r.toStatus {
		r.kinds |= statusBits[r.toStatus]
	}
	if r.fromSev != none && r.fromSev != r.toSev {
		r.kinds |= bitSeverity
	}
	// A fix drops the score to 0: that is the fix, not a priority change.
	if r.fromStatus == r.toStatus && r.fromScore >= 0 && r.toScore >= 0 && r.fromScore != r.toScore {
		r.kinds |= bitPriority
	}
	e.hSeen, e.hStatus, e.hSev, e.hScore = true, h.status, h.sev, h.score
	ix.log = append(ix.log, r)
}

// historyCaughtUp marks the history reader as having read everything
// there was when it started.
func (ix *Index) historyCaughtUp() {
	ix.mu.Lock()
	ix.histDone = true
	ix.mu.Unlock()
}

// Change is one change of one finding.
type Change struct {
	Kind       string `json:"kind"`
	FindingKey string `json:"findingKey"`
	Type       string `json:"type"`
	Name       string `json:"name"`
	Repository string `json:"repository"`
	Owner      string `json:"owner"` // "": none
	// From and To are statuses, severities, or priority scores (numbers);
	// From is null for a new finding or when the previous value is not
	// known.
	From any    `json:"from"`
	To   any    `json:"to"`
	When string `json:"when"`
}

// Changes are the changes of a time window, newest first.
type Changes struct {
	Since string `json:"since"`
	Until string `json:"until"`
	// Counts holds every kind, 0 included.
	Counts  map[string]int `json:"counts"`
	Total   int            `json:"total"`
	Changes []Change       `json:"changes"`
	// Truncated: more changes than the limit; Changes holds the newest.
	Truncated bool `json:"truncated"`
}

// Changes lists the changes stored in GHAS_FINDINGS from since up to
// (not including) until, newest first, at most limit of them; the counts
// are over the whole window.
func (ix *Index) Changes(since, until time.Time, limit int) Changes {
	out := Changes{Since: since.UTC().Format(time.RFC3339), Until: until.UTC().Format(time.RFC3339), Changes: []Change{}}
	out.Counts, out.Total = ix.EachChange(since, until, limit, func(v *ChangeView) {
		c := Change{Kind: v.Kind, FindingKey: v.FindingKey, Type: v.Type, Name: v.Name, Repository: v.Repository, Owner: v.Owner,
			When: time.UnixMilli(v.AtMillis).UTC().Format(time.RFC3339Nano)}
		switch {
		case v.Scores:
			c.From, c.To = v.FromScore, v.ToScore
		default:
			if v.From != "" {
				c.From = v.From
			}
			c.To = v.To
		}
		out.Changes = append(out.Changes, c)
	})
	out.Truncated = len(out.Changes) < out.Total
	return out
}

// ChangeView is one change as EachChange passes it; its strings are the
// index's own, shared, not copied.
type ChangeView struct {
	Kind, FindingKey, Type, Name, Repository, Owner string
	// From and To are statuses or severities ("" unknown), or with Scores
	// FromScore and ToScore are priority scores.
	From, To           string
	Scores             bool
	FromScore, ToScore int
	// AtMillis is when GHAS_FINDINGS stored it, Unix milliseconds.
	AtMillis int64
}

// EachChange calls fn with the changes stored from since up to (not
// including) until, newest first, at most limit of them, under the
// index's read lock (fn must not call the index), and returns the counts
// of every kind over the whole window and their total.
func (ix *Index) EachChange(since, until time.Time, limit int, fn func(*ChangeView)) (map[string]int, int) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	lo, hi := ix.window(since, until)
	var counts [8]int
	for i := lo; i < hi; i++ {
		k := ix.log[i].kinds
		for k != 0 {
			b := k & -k
			counts[bitIndex(b)]++
			k &^= b
		}
	}
	byKind, total := map[string]int{}, 0
	for i, k := range Kinds {
		byKind[k] = counts[i]
		total += counts[i]
	}
	n := 0
	var v ChangeView
	for i := hi - 1; i >= lo && n < limit; i-- {
		r := &ix.log[i]
		for b := 0; b < len(Kinds) && r.kinds != 0 && n < limit; b++ {
			if r.kinds&(1<<b) == 0 {
				continue
			}
			ix.view(&v, r, b)
			fn(&v)
			n++
		}
	}
	return byKind, total
}

// window is the range of the log stored in [since, until).
func (ix *Index) window(since, until time.Time) (int, int) {
	at := func(t time.Time) int {
		ms := t.UnixMilli()
		i, _ := slices.BinarySearchFunc(ix.log, ms, func(r revision, ms int64) int {
			if r.at < ms {
				return -1
			}
			return 1
		})
		return i
	}
	lo, hi := at(since), at(until)
	return lo, max(lo, hi)
}

func bitIndex(b uint8) int {
	for i := 0; i < 8; i++ {
		if b == 1<<i {
			return i
		}
	}
	return 7
}

func (ix *Index) view(v *ChangeView, r *revision, bit int) {
	e := &ix.entries[r.id]
	*v = ChangeView{Kind: Kinds[bit], FindingKey: e.key, Type: Types[e.typ], Name: ix.strs[e.name], Repository: ix.repos[e.repo].fullName,
		Owner: ix.strs[e.owner], AtMillis: r.at}
	switch 1 << bit {
	case bitSeverity:
		v.From, v.To = Severities[r.fromSev], Severities[r.toSev]
	case bitPriority:
		v.Scores, v.FromScore, v.ToScore = true, int(r.fromScore), int(r.toScore)
	default:
		if r.fromStatus != none {
			v.From = Statuses[r.fromStatus]
		}
		v.To = Statuses[r.toStatus]
	}
}

// Revision is one stored revision of a finding: where it is in
// GHAS_FINDINGS, when it was stored and what it changed.
type Revision struct {
	Sequence uint64   `json:"sequence"`
	StoredAt string   `json:"storedAt"`
	Status   string   `json:"findingStatus"`
	Severity string   `json:"severity"`
	Score    *int     `json:"priorityScore"`
	Changes  []string `json:"changes"`
}

// Revisions lists the revisions of key in the log, oldest first.
func (ix *Index) Revisions(key string) []Revision {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := []Revision{}
	id, ok := ix.byKey[key]
	if !ok {
		return out
	}
	for i := range ix.log {
		r := &ix.log[i]
		if r.id != id {
			continue
		}
		rv := Revision{Sequence: r.seq, StoredAt: time.UnixMilli(r.at).UTC().Format(time.RFC3339Nano),
			Status: Statuses[r.toStatus], Severity: Severities[r.toSev], Changes: []string{}}
		if r.toScore >= 0 {
			s := int(r.toScore)
			rv.Score = &s
		}
		for b := range Kinds {
			if r.kinds&(1<<b) != 0 {
				rv.Changes = append(rv.Changes, Kinds[b])
			}
		}
		out = append(out, rv)
	}
	return out
}

// expireHistory drops the revisions older than the window.
func (ix *Index) expireHistory(now time.Time) {
	floor := now.Add(-HistoryWindow).UnixMilli()
	i, _ := slices.BinarySearchFunc(ix.log, floor, func(r revision, ms int64) int {
		if r.at < ms {
			return -1
		}
		return 1
	})
	if i > 0 {
		ix.log = slices.Delete(ix.log, 0, i)
	}
}

// Maintain drops what left its window: revisions older than 30 days,
// fixes older than 90. The console calls it every minute.
func (ix *Index) Maintain() {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	now := ix.now()
	ix.expireHistory(now)
	if ix.loaded {
		ix.ttf.expire(now.Unix())
	}
}
