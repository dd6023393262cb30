// Package index owns the console's in-memory index of the findings: one
// compact entry per key of KV ghas_findings (the facts the console's
// questions filter, sort and count by — never the whole document, which
// KV keeps), the aggregates those questions read (open findings by type,
// severity, owner and source, each repository's sources, fix times),
// maintained as each revision arrives, the two sort orders of the finding
// list, and the revision log read from GHAS_FINDINGS from which changes
// are told. Load and Watch (watch.go) fill it from NATS; the query
// methods answer the console's API and page.
package index

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// The vocabularies, as small integers in the index and their names in the
// document.
var (
	// Types are the finding types by their parameter value (the dataset).
	Types = []string{finding.SAST, finding.SCA, finding.Secret}
	// Statuses are the finding statuses.
	Statuses = []string{finding.StatusActive, finding.StatusFixed, finding.StatusDismissed, finding.StatusRemoved}
	// Severities are the severities, most severe first.
	Severities = []string{finding.SeverityCritical, finding.SeverityHigh, finding.SeverityMedium, finding.SeverityLow, finding.SeverityInfo}
)

const (
	active  = 0
	fixed   = 1
	removed = 3
	// none marks an unknown status or severity in the revision log.
	none = 255
)

func lookup(list []string, v string) (uint8, bool) {
	for i, s := range list {
		if s == v {
			return uint8(i), true
		}
	}
	return 0, false
}

// lookupBytes is lookup of a document's text.
func lookupBytes(list []string, v []byte) (uint8, bool) {
	for i, s := range list {
		if string(v) == s {
			return uint8(i), true
		}
	}
	return 0, false
}

// typeOf is the type of a findingTypeName.
func typeOf(typeName []byte) (uint8, bool) {
	switch string(typeName) {
	case finding.TypeSAST:
		return 0, true
	case finding.TypeSCA:
		return 1, true
	case finding.TypeSecret:
		return 2, true
	}
	return 0, false
}

// entry is one finding: 72 bytes, strings interned.
type entry struct {
	key     string
	repo    int32  // into Index.repos
	name    uint32 // Index.strs ids; 0 is ""
	rule    uint32
	owner   uint32
	source  uint32
	factors uint32 // into Index.factorSets; 0: none
	typ     uint8
	status  uint8
	sev     uint8
	score   int8   // -1: the document has no priority
	first   uint32 // Unix seconds (until 2106); 0: unknown
	last    uint32
	fixedAt uint32
	rev     uint64 // KV revision of the document, or of its deletion
	live    bool   // holds a document (false: deleted, or only seen in history)

	// The history reader's view of the finding: what its last revision
	// in GHAS_FINDINGS said, to tell what the next one changed.
	hSeen   bool
	hStatus uint8
	hSev    uint8
	hScore  int8
}

// repo is one repository, by its id.
type repo struct {
	id       int64
	fullName string
	lower    string
	owner    uint32
	entries  []int32
	// Counts over the repository's live findings.
	open [5]int32 // ACTIVE by severity
	live int32    // any status
	// sorted are the live findings in each order (as Index.prio and
	// Index.recent): a filter by repository, owner or source merges them.
	sorted [2][]elem
	// byTSS counts its live findings by type, status and severity (tssOf):
	// a filtered merge passes over repositories that have none.
	byTSS    [128]int32
	owners   map[uint32]int32 // live, by owner: where an owner filter looks
	bySource map[uint32]int32 // live, by source: where a source filter looks
	total    int32            // not REMOVED
	sources  map[uint32]int32 // not REMOVED, by source
}

// Index is the console's index. Its methods are safe for concurrent use:
// queries share a read lock, each applied revision takes the write lock
// briefly.
type Index struct {
	mu sync.RWMutex
	// now is the clock (tests set it).
	now func() time.Time

	entries []entry
	byKey   map[string]int32

	strs    []string
	lowers  []string // strs in lower case, for q
	strIDs  map[string]uint32
	factors [][]finding.Factor
	factIDs map[string]uint32
	scratch []byte // builds factor keys under the lock

	repos     []repo
	repoByID  map[int64]int32
	repoNames map[string]int32 // lower-case owner/name
	// ownerRepos and sourceRepos are the repositories with a live finding
	// of an owner, of a source: where their filters look.
	ownerRepos  map[uint32]map[int32]struct{}
	sourceRepos map[uint32]map[int32]struct{}

	agg    aggregates
	ttf    fixTimes
	prio   order
	recent order
	// loaded: the initial values are in and the orders built.
	loaded bool
	// gen counts changes of sort keys; moves record them for cursors.
	gen   uint64
	moves []move
	// movesFloor is the oldest gen a cursor may name.
	movesFloor uint64

	log      []revision
	lastRev  uint64 // highest KV revision applied
	lastSeq  uint64 // highest GHAS_FINDINGS sequence applied
	histDone bool   // the history reader caught up once
}

// New returns an empty index.
func New() *Index {
	ix := &Index{
		now:       time.Now,
		byKey:     map[string]int32{},
		strIDs:    map[string]uint32{"": 0},
		strs:      []string{""},
		lowers:    []string{""},
		factors:   [][]finding.Factor{nil},
		factIDs:   map[string]uint32{"": 0},
		repoByID:  map[int64]int32{},
		repoNames: map[string]int32{},

		ownerRepos:  map[uint32]map[int32]struct{}{},
		sourceRepos: map[uint32]map[int32]struct{}{},
	}
	ix.agg.init()
	ix.ttf.init()
	ix.prio = newOrder(ix, sortPriority)
	ix.recent = newOrder(ix, sortLastFound)
	return ix
}

// SetClock replaces the clock (tests).
func (ix *Index) SetClock(now func() time.Time) {
	ix.mu.Lock()
	ix.now = now
	ix.mu.Unlock()
}

func (ix *Index) intern(b []byte) uint32 {
	if id, ok := ix.strIDs[string(b)]; ok {
		return id
	}
	id := uint32(len(ix.strs))
	s := string(b)
	ix.strs = append(ix.strs, s)
	ix.lowers = append(ix.lowers, strings.ToLower(s))
	ix.strIDs[s] = id
	return id
}

func (ix *Index) internFactors(fs []rawFactor) uint32 {
	if len(fs) == 0 {
		return 0
	}
	b := ix.scratch[:0]
	for _, f := range fs {
		b = append(b, f.name...)
		b = append(b, 0)
		b = append(b, f.value...)
		b = append(b, 0)
		b = strconv.AppendInt(b, int64(f.points), 10)
		b = append(b, 0)
	}
	ix.scratch = b
	if id, ok := ix.factIDs[string(b)]; ok {
		return id
	}
	id := uint32(len(ix.factors))
	set := make([]finding.Factor, len(fs))
	for i, f := range fs {
		set[i] = finding.Factor{Name: string(f.name), Value: string(f.value), Points: f.points}
	}
	ix.factors = append(ix.factors, set)
	ix.factIDs[string(b)] = id
	return id
}

// repoOf returns the repository of a finding key (its second token), made
// on first sight.
func (ix *Index) repoOf(key []byte) (int32, bool) {
	dot := bytes.IndexByte(key, '.')
	if dot < 0 {
		return 0, false
	}
	rest := key[dot+1:]
	end := bytes.IndexByte(rest, '.')
	if end <= 0 {
		return 0, false
	}
	var id int64
	for _, c := range rest[:end] {
		if c < '0' || c > '9' || id > (1<<62)/10 {
			return 0, false
		}
		id = id*10 + int64(c-'0')
	}
	if r, ok := ix.repoByID[id]; ok {
		return r, true
	}
	r := int32(len(ix.repos))
	ix.repos = append(ix.repos, repo{id: id, sources: map[uint32]int32{}, owners: map[uint32]int32{}, bySource: map[uint32]int32{}})
	ix.repoByID[id] = r
	return r, true
}

func (ix *Index) renameRepo(r int32, fullName []byte) {
	rp := &ix.repos[r]
	if len(fullName) == 0 || string(fullName) == rp.fullName {
		return
	}
	if rp.lower != "" && ix.repoNames[rp.lower] == r {
		delete(ix.repoNames, rp.lower)
	}
	rp.fullName = string(fullName)
	rp.lower = strings.ToLower(rp.fullName)
	ix.repoNames[rp.lower] = r
}

// entryOf returns the entry of key, made (not live) on first sight.
func (ix *Index) entryOf(key []byte) (int32, bool) {
	if id, ok := ix.byKey[string(key)]; ok {
		return id, true
	}
	r, ok := ix.repoOf(key)
	if !ok {
		return 0, false
	}
	id := int32(len(ix.entries))
	k := string(key)
	ix.entries = append(ix.entries, entry{key: k, repo: r, score: -1})
	ix.byKey[k] = id
	ix.repos[r].entries = append(ix.repos[r].entries, id)
	return id, true
}

// put applies a document read from KV at revision rev. It returns false
// when the document is not one the index can hold (no finding, an unknown
// type, status or severity, a key without a repository id).
func (ix *Index) put(f fields, rev uint64) bool {
	typ, ok1 := typeOf(f.typeName)
	status, ok2 := lookupBytes(Statuses, f.status)
	sev, ok3 := lookupBytes(Severities, f.severity)
	if !ok1 || !ok2 || !ok3 {
		return false
	}
	id, ok := ix.entryOf(f.key)
	if !ok {
		return false
	}
	e := &ix.entries[id]
	if rev != 0 && rev <= e.rev {
		return true // an older revision than the one held
	}
	old := *e
	n := old
	n.typ, n.status, n.sev = typ, status, sev
	n.name = ix.intern(f.name)
	n.rule = ix.intern(f.rule)
	n.owner = ix.intern(f.owner)
	n.source = ix.intern(f.source)
	n.score = -1
	if f.hasPriority {
		n.score = int8(min(max(f.score, 0), 100))
	}
	n.factors = ix.internFactors(f.factors)
	n.first, n.last, n.fixedAt = parseTime(f.first), parseTime(f.last), parseTime(f.fixed)
	n.rev = rev
	n.live = true
	ix.renameRepo(n.repo, f.fullName)
	if len(f.owner) > 0 {
		ix.repos[n.repo].owner = n.owner
	}
	ix.replace(id, old, n)
	if rev > ix.lastRev {
		ix.lastRev = rev
	}
	return true
}

// del applies the deletion of key at revision rev.
func (ix *Index) del(key string, rev uint64) {
	id, ok := ix.byKey[key]
	if !ok {
		return
	}
	e := &ix.entries[id]
	if rev != 0 && rev <= e.rev {
		return
	}
	old := *e
	n := old
	n.live, n.rev = false, rev
	ix.replace(id, old, n)
	if rev > ix.lastRev {
		ix.lastRev = rev
	}
}

// replace swaps entry id from old to n, keeping every aggregate and order
// in step.
func (ix *Index) replace(id int32, old, n entry) {
	if old.live {
		ix.count(id, &old, -1)
	}
	ix.entries[id] = n
	if n.live {
		ix.count(id, &n, +1)
	}
	if !ix.loaded {
		return
	}
	moved := old.live != n.live || n.live && (old.score != n.score || old.last != n.last)
	if !moved && (!n.live || tssOf(&old) == tssOf(&n)) {
		return // the orders and cursors are not concerned
	}
	rp := &ix.repos[n.repo]
	if old.live {
		ix.prio.remove(elemOf(sortPriority, id, &old))
		ix.recent.remove(elemOf(sortLastFound, id, &old))
		for kind := range rp.sorted {
			rp.sorted[kind] = ix.order(sortKind(kind)).without(rp.sorted[kind], elemOf(sortKind(kind), id, &old))
		}
	}
	if n.live {
		ix.prio.insert(elemOf(sortPriority, id, &n))
		ix.recent.insert(elemOf(sortLastFound, id, &n))
		for kind := range rp.sorted {
			rp.sorted[kind] = ix.order(sortKind(kind)).with(rp.sorted[kind], elemOf(sortKind(kind), id, &n))
		}
	}
	if moved {
		ix.recordMove(id, &old, &n)
	}
}

// count adds (d = +1) or removes (d = -1) a live entry's share of the
// aggregates.
func (ix *Index) count(id int32, e *entry, d int32) {
	ix.agg.add(e, d)
	rp := &ix.repos[e.repo]
	rp.live += d
	rp.byTSS[tssOf(e)] += d
	if addCount(rp.owners, e.owner, d) {
		setMember(ix.ownerRepos, e.owner, e.repo, rp.owners[e.owner] > 0)
	}
	if addCount(rp.bySource, e.source, d) {
		setMember(ix.sourceRepos, e.source, e.repo, rp.bySource[e.source] > 0)
	}
	if e.status != removed {
		rp.total += d
		if c := rp.sources[e.source] + d; c > 0 {
			rp.sources[e.source] = c
		} else {
			delete(rp.sources, e.source)
		}
	}
	if e.status == active {
		rp.open[e.sev] += d
	}
	if e.status == fixed {
		if d > 0 {
			ix.ttf.add(id, e, ix.now().Unix())
		} else {
			ix.ttf.remove(id, e)
		}
	}
}

// addCount adds d to m[k] (deleting it at 0) and reports whether it
// became or stopped being positive.
func addCount(m map[uint32]int32, k uint32, d int32) bool {
	before := m[k]
	if c := before + d; c > 0 {
		m[k] = c
	} else {
		delete(m, k)
	}
	return (before > 0) != (m[k] > 0)
}

// setMember adds (in) or removes repository r in the set of k.
func setMember(sets map[uint32]map[int32]struct{}, k uint32, r int32, in bool) {
	s := sets[k]
	if in {
		if s == nil {
			s = map[int32]struct{}{}
			sets[k] = s
		}
		s[r] = struct{}{}
		return
	}
	delete(s, r)
	if len(s) == 0 {
		delete(sets, k)
	}
}
