package index

import (
	"errors"
	"slices"
	"strings"

	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// Filter selects findings; an empty field selects all. Values are the
// document's own (Types, Statuses, Severities); the caller checks them.
type Filter struct {
	Type, Status, Severity string
	// Owner is the asset's ownership.owner, Source the document's source,
	// Repository owner/name (any case).
	Owner, Source, Repository string
	// Q is text the name, the rule, the finding key or the repository
	// holds (any case).
	Q string
}

// Query is a page of the finding list.
type Query struct {
	Filter
	// Sort is "priority" (default) or "lastFoundOn".
	Sort   string
	Limit  int
	Cursor string
}

// Item is a finding as the list shows it.
type Item struct {
	FindingKey string `json:"findingKey"`
	Type       string `json:"type"`
	Name       string `json:"name"`
	Repository string `json:"repository"`
	// Owner is "" when the repository names none.
	Owner        string            `json:"owner"`
	Source       string            `json:"source"`
	Status       string            `json:"findingStatus"`
	Severity     string            `json:"severity"`
	RuleID       string            `json:"ruleId,omitempty"`
	Priority     *finding.Priority `json:"priority"`
	FirstFoundOn Time              `json:"firstFoundOn"`
	LastFoundOn  Time              `json:"lastFoundOn"`
	LastFixedOn  Time              `json:"lastFixedOn"`
}

// Page is one page of the list and the cursor of the next ("": none).
type Page struct {
	Findings []Item `json:"findings"`
	Next     string `json:"next,omitempty"`
}

// Errors of a query the caller turns into a 400 naming the parameter.
var (
	ErrBadCursor     = errors.New("not a cursor of this list")
	ErrCursorExpired = errors.New("the cursor is too old: start from the first page again")
	ErrNotLoaded     = errors.New("the index is still loading")
)

// maxMoves bounds the record of sort-key changes cursors are answered
// from: a cursor older than the last maxMoves changes has expired.
const maxMoves = 1 << 18

// move is a change of an entry's place in the orders.
type move struct {
	gen      uint64
	id       int32
	existed  bool // live before the change
	oldScore int8
	newScore int8
	oldLast  uint32
	newLast  uint32
}

func (ix *Index) recordMove(id int32, old, n *entry) {
	ix.gen++
	ix.moves = append(ix.moves, move{gen: ix.gen, id: id, existed: old.live,
		oldScore: old.score, oldLast: old.last, newScore: n.score, newLast: n.last})
	if len(ix.moves) > maxMoves {
		drop := len(ix.moves) - maxMoves/2
		ix.movesFloor = ix.moves[drop-1].gen
		ix.moves = slices.Delete(ix.moves, 0, drop)
	}
}

// compiled is a Filter resolved against the index.
type compiled struct {
	typ, status, sev int
	owner, source    uint32
	anyOwner         bool
	anySource        bool
	repo             int32 // -1: any
	q                string
	empty            bool // matches nothing
	// wanted are the type/status/severity combinations (tssOf) the filter
	// takes; all: it names none of them.
	wanted []uint8
	all    bool
}

// chunkWanted reports whether mix holds an element the filter takes.
func (c *compiled) chunkWanted(mix *[128]uint16) bool {
	if c.all {
		return true
	}
	for _, tss := range c.wanted {
		if mix[tss] > 0 {
			return true
		}
	}
	return false
}

func (ix *Index) compile(f Filter) compiled {
	c := compiled{typ: -1, status: -1, sev: -1, repo: -1, anyOwner: true, anySource: true, q: strings.ToLower(f.Q)}
	if f.Type != "" {
		t, ok := lookup(Types, strings.ToLower(f.Type))
		c.typ, c.empty = int(t), !ok
	}
	if f.Status != "" {
		s, ok := lookup(Statuses, strings.ToUpper(f.Status))
		c.status, c.empty = int(s), c.empty || !ok
	}
	if f.Severity != "" {
		s, ok := lookup(Severities, strings.ToUpper(f.Severity))
		c.sev, c.empty = int(s), c.empty || !ok
	}
	if f.Owner != "" {
		id, ok := ix.strIDs[f.Owner]
		c.owner, c.anyOwner, c.empty = id, false, c.empty || !ok
	}
	if f.Source != "" {
		id, ok := ix.strIDs[f.Source]
		c.source, c.anySource, c.empty = id, false, c.empty || !ok
	}
	if f.Repository != "" {
		r, ok := ix.repoNames[strings.ToLower(f.Repository)]
		c.repo, c.empty = r, c.empty || !ok
	}
	c.all = c.typ < 0 && c.status < 0 && c.sev < 0
	for tss := range 128 {
		if !c.all && c.tssMatches(uint8(tss)) {
			c.wanted = append(c.wanted, uint8(tss))
		}
	}
	return c
}

func (ix *Index) matches(c *compiled, id int32) bool {
	e := &ix.entries[id]
	if !e.live ||
		c.typ >= 0 && int(e.typ) != c.typ ||
		c.status >= 0 && int(e.status) != c.status ||
		c.sev >= 0 && int(e.sev) != c.sev ||
		!c.anyOwner && e.owner != c.owner ||
		!c.anySource && e.source != c.source ||
		c.repo >= 0 && e.repo != c.repo {
		return false
	}
	if c.q == "" {
		return true
	}
	return strings.Contains(ix.lowers[e.name], c.q) || strings.Contains(ix.lowers[e.rule], c.q) ||
		strings.Contains(e.key, c.q) || strings.Contains(ix.repos[e.repo].lower, c.q)
}

// Findings answers a page of the finding list. Pages follow one another
// without gaps or repeats while findings change: the first page fixes a
// moment, and every later page places each finding where it was then (or,
// for one that appeared since, where it first appeared), so a finding that
// moves between two pages (a fix drops its priority to 0) is listed once.
// Filters apply to the findings as they are now.
func (ix *Index) Findings(q Query) (Page, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if !ix.loaded {
		return Page{}, ErrNotLoaded
	}
	kind := sortPriority
	if q.Sort == Sorts[sortLastFound] {
		kind = sortLastFound
	}
	var cur cursor
	var at *point
	if q.Cursor != "" {
		var err error
		if cur, err = parseCursor(q.Cursor); err != nil || cur.sort != kind || cur.gen > ix.gen {
			return Page{}, ErrBadCursor
		}
		if cur.gen < ix.movesFloor {
			return Page{}, ErrCursorExpired
		}
		at = &cur.at
	} else {
		cur = cursor{sort: kind, gen: ix.gen}
	}
	limit := max(q.Limit, 1)
	c := ix.compile(q.Filter)
	page := Page{Findings: []Item{}}
	if c.empty {
		return page, nil
	}
	if ix.countTSS(&c) == 0 {
		return page, nil
	}
	movers := ix.movers(cur.gen, kind)
	var found []elem
	if repos, ok := ix.candidates(&c); ok {
		found = ix.scanRepos(repos, &c, kind, movers, at, limit+1)
	} else {
		found = ix.scanOrder(&c, kind, movers, at, limit+1)
	}
	// One allocation for the page's priorities, not one each.
	prios := make([]finding.Priority, len(found))
	for i, x := range found {
		if i == limit {
			last := found[limit-1]
			cur.at = point{k: last.k, key: ix.entries[last.id].key}
			page.Next = cur.String()
			break
		}
		page.Findings = append(page.Findings, ix.item(x.id, prios[i:]))
	}
	return page, nil
}

// moversOf are the entries whose place changed since a moment: by id,
// their key then, and sorted by it.
type moversOf struct {
	keys   map[int32]int64
	sorted []elem
}

func (ix *Index) movers(gen uint64, kind sortKind) moversOf {
	m := moversOf{}
	i, _ := slices.BinarySearchFunc(ix.moves, gen, func(mv move, g uint64) int {
		if mv.gen <= g {
			return -1
		}
		return 1
	})
	if i == len(ix.moves) {
		return m
	}
	m.keys = map[int32]int64{}
	for _, mv := range ix.moves[i:] {
		if _, seen := m.keys[mv.id]; seen {
			continue
		}
		k := sortKey(kind, mv.newScore, mv.newLast)
		if mv.existed {
			k = sortKey(kind, mv.oldScore, mv.oldLast)
		}
		m.keys[mv.id] = k
		m.sorted = append(m.sorted, elem{k: k, id: mv.id})
	}
	o := ix.order(kind)
	slices.SortFunc(m.sorted, o.cmp)
	return m
}

func (ix *Index) order(kind sortKind) *order {
	if kind == sortLastFound {
		return &ix.recent
	}
	return &ix.prio
}

// keyOf is an entry's place at the cursor's moment.
func (m moversOf) keyOf(kind sortKind, id int32, e *entry) int64 {
	if k, ok := m.keys[id]; ok {
		return k
	}
	return sortKey(kind, e.score, e.last)
}

// scanOrder walks the order from the cursor, merging the movers at their
// old places, until n findings match.
func (ix *Index) scanOrder(c *compiled, kind sortKind, m moversOf, at *point, n int) []elem {
	o := ix.order(kind)
	pos := o.after(at)
	return ix.merge(o, func() (elem, bool) { return ix.nextStill(o, &pos, m, c) }, c, m, at, n)
}

// merge takes the elements of next (which skips the movers) and the
// movers after the cursor, in order, until n findings match.
func (ix *Index) merge(o *order, next func() (elem, bool), c *compiled, m moversOf, at *point, n int) []elem {
	mi := 0
	if at != nil {
		mi, _ = slices.BinarySearchFunc(m.sorted, *at, func(x elem, p point) int {
			if ix.pointBefore(p, x.k, x.id) {
				return 1
			}
			return -1
		})
	}
	var out []elem
	a, okA := next()
	for len(out) < n {
		var x elem
		switch {
		case okA && (mi == len(m.sorted) || o.before(a, m.sorted[mi])):
			x = a
			a, okA = next()
		case mi < len(m.sorted):
			x = m.sorted[mi]
			mi++
		default:
			return out
		}
		if ix.matches(c, x.id) {
			out = append(out, x)
		}
	}
	return out
}

// nextStill is the next element of the order that did not move and
// whose type, status and severity pass the filter (read from the order
// itself: a selective filter walks the order's memory in sequence).
func (ix *Index) nextStill(o *order, p *position, m moversOf, c *compiled) (elem, bool) {
	for {
		// At a chunk's start, pass over chunks holding nothing wanted.
		if p.chunk < len(o.chunks) && p.i >= len(o.chunks[p.chunk]) {
			p.chunk, p.i = p.chunk+1, 0
		}
		for p.i == 0 && p.chunk < len(o.chunks) && !c.chunkWanted(o.mix[p.chunk]) {
			p.chunk++
		}
		x, ok := o.next(p)
		if !ok {
			return x, false
		}
		if !c.tssMatches(x.tss) {
			continue
		}
		if _, moved := m.keys[x.id]; !moved {
			return x, true
		}
	}
}

// candidateShare is the most of the findings a filter by repository,
// owner or source may select for the index to sort those it selects
// rather than walk a whole order.
const candidateShare = 8

// candidates are the findings of the repositories a repository, owner or
// source filter selects (the smallest such set), when it is small enough
// to sort; false: walk the order.
func (ix *Index) candidates(c *compiled) ([]int32, bool) {
	if c.repo >= 0 {
		return []int32{c.repo}, true
	}
	if c.anyOwner && c.anySource {
		return nil, false
	}
	// The smaller of the owner's and the source's repositories.
	set := ix.ownerRepos[c.owner]
	if c.anyOwner || !c.anySource && len(ix.sourceRepos[c.source]) < len(set) {
		set = ix.sourceRepos[c.source]
	}
	var repos []int32
	total := int64(0)
	for ri := range set {
		r := &ix.repos[ri]
		if !c.anyOwner && r.owners[c.owner] == 0 || !c.anySource && r.bySource[c.source] == 0 {
			continue
		}
		if !c.all && !slices.ContainsFunc(c.wanted, func(tss uint8) bool { return r.byTSS[tss] > 0 }) {
			continue // none of its findings has the type, status and severity
		}
		repos = append(repos, ri)
		total += int64(r.live)
		if total*candidateShare > ix.agg.live {
			return nil, false
		}
	}
	return repos, true
}

// countTSS is how many live findings have the filter's type, status and
// severity (-1: the filter names none of them).
func (ix *Index) countTSS(c *compiled) int64 {
	if c.typ < 0 && c.status < 0 && c.sev < 0 {
		return -1
	}
	var n int64
	for t := range ix.agg.byTSS {
		for s := range ix.agg.byTSS[t] {
			for st := range ix.agg.byTSS[t][s] {
				if (c.typ < 0 || c.typ == t) && (c.sev < 0 || c.sev == s) && (c.status < 0 || c.status == st) {
					n += ix.agg.byTSS[t][s][st]
				}
			}
		}
	}
	return n
}

// tssMatches reports whether an element's type, status and severity pass
// the filter.
func (c *compiled) tssMatches(tss uint8) bool {
	return (c.typ < 0 || int(tss>>5) == c.typ) && (c.status < 0 || int(tss>>3&3) == c.status) && (c.sev < 0 || int(tss&7) == c.sev)
}

// scanRepos merges the sorted findings of repos from the cursor, with
// the movers at their old places, until n findings match: it reads about
// as many findings as the page needs, whatever the number of findings.
func (ix *Index) scanRepos(repos []int32, c *compiled, kind sortKind, m moversOf, at *point, n int) []elem {
	o := ix.order(kind)
	// A min-heap (by o) of the repositories' next elements.
	type head struct {
		list []elem
		i    int
	}
	var h []head
	less := func(a, b head) bool { return o.before(a.list[a.i], b.list[b.i]) }
	down := func(i int) {
		for {
			l, r, small := 2*i+1, 2*i+2, i
			if l < len(h) && less(h[l], h[small]) {
				small = l
			}
			if r < len(h) && less(h[r], h[small]) {
				small = r
			}
			if small == i {
				return
			}
			h[i], h[small] = h[small], h[i]
			i = small
		}
	}
	for _, r := range repos {
		list := ix.repos[r].sorted[kind]
		i := 0
		if at != nil {
			i, _ = slices.BinarySearchFunc(list, *at, func(x elem, p point) int {
				if ix.pointBefore(p, x.k, x.id) {
					return 1
				}
				return -1
			})
		}
		if i < len(list) {
			h = append(h, head{list, i})
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(i)
	}
	next := func() (elem, bool) {
		for len(h) > 0 {
			x := h[0].list[h[0].i]
			if h[0].i++; h[0].i == len(h[0].list) {
				h[0] = h[len(h)-1]
				h = h[:len(h)-1]
			}
			if len(h) > 0 {
				down(0)
			}
			if !c.tssMatches(x.tss) {
				continue
			}
			if _, moved := m.keys[x.id]; !moved {
				return x, true
			}
		}
		return elem{}, false
	}
	return ix.merge(o, next, c, m, at, n)
}
