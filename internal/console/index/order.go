package index

import (
	"slices"
	"strings"
)

// sortKind is an order of the finding list.
type sortKind uint8

const (
	sortPriority  sortKind = iota // score, then lastFoundOn, newest first
	sortLastFound                 // lastFoundOn, newest first
)

// Sorts are the sort parameter's values, by sortKind.
var Sorts = []string{"priority", "lastFoundOn"}

// lastBits holds lastFoundOn in the priority sort key: seconds up to the
// year 36812.
const lastBits = 40

// sortKey is an entry's position in an order: larger first, ties by
// findingKey ascending. For priority it is the score (−1 without one) and
// lastFoundOn in one integer.
func sortKey(s sortKind, score int8, last uint32) int64 {
	if s == sortLastFound {
		return int64(last)
	}
	return int64(score+1)<<lastBits | int64(last)
}

// elem is one entry in an order, with its type, status and severity, so
// that a scan filtering by them reads the order alone.
type elem struct {
	k   int64
	id  int32
	tss uint8 // tssOf
}

// tssOf packs an entry's type, status and severity.
func tssOf(e *entry) uint8 { return e.typ<<5 | e.status<<3 | e.sev }

func elemOf(s sortKind, id int32, e *entry) elem {
	return elem{k: sortKey(s, e.score, e.last), id: id, tss: tssOf(e)}
}

// chunkMax bounds a chunk: an insert or a removal moves at most this many
// elements, and a seek is two binary searches.
const chunkMax = 1024

// order keeps the live entries sorted for one sortKind in chunks, so that
// a change moves one entry in O(log n + chunkMax), not the whole list.
type order struct {
	ix     *Index
	kind   sortKind
	chunks [][]elem
	// mix[i] counts chunk i's elements by type, status and severity: a
	// filtered walk passes over a chunk that holds none it wants (the
	// priority order puts all CRITICAL findings first, so a walk for LOW
	// ones would otherwise read them all).
	mix []*[128]uint16
}

func mixOf(c []elem) *[128]uint16 {
	m := new([128]uint16)
	for _, x := range c {
		m[x.tss]++
	}
	return m
}

func newOrder(ix *Index, kind sortKind) order { return order{ix: ix, kind: kind} }

// before reports whether a comes before b.
func (o *order) before(a, b elem) bool {
	if a.k != b.k {
		return a.k > b.k
	}
	return o.ix.entries[a.id].key < o.ix.entries[b.id].key
}

// cmp orders elements for binary searches.
func (o *order) cmp(a, b elem) int {
	switch {
	case a.id == b.id && a.k == b.k:
		return 0
	case o.before(a, b):
		return -1
	}
	return 1
}

// build sorts every live entry.
func (o *order) build() {
	all := make([]elem, 0, o.ix.agg.live)
	for id := range o.ix.entries {
		if e := &o.ix.entries[id]; e.live {
			all = append(all, elemOf(o.kind, int32(id), e))
		}
	}
	slices.SortFunc(all, o.cmp)
	o.chunks, o.mix = o.chunks[:0], o.mix[:0]
	for len(all) > 0 {
		n := min(len(all), chunkMax/2)
		o.chunks = append(o.chunks, slices.Clip(all[:n:n]))
		o.mix = append(o.mix, mixOf(all[:n]))
		all = all[n:]
	}
}

// chunkFor is the chunk where x belongs: the first whose last element
// does not come before x (the last chunk when x comes after all).
func (o *order) chunkFor(x elem) int {
	i, _ := slices.BinarySearchFunc(o.chunks, x, func(c []elem, x elem) int {
		if o.before(c[len(c)-1], x) {
			return -1
		}
		return 1
	})
	return min(i, len(o.chunks)-1)
}

func (o *order) insert(x elem) {
	if len(o.chunks) == 0 {
		o.chunks = append(o.chunks, []elem{x})
		o.mix = append(o.mix, mixOf(o.chunks[0]))
		return
	}
	ci := o.chunkFor(x)
	c := o.chunks[ci]
	i, _ := slices.BinarySearchFunc(c, x, o.cmp)
	c = slices.Insert(c, i, x)
	o.mix[ci][x.tss]++
	if len(c) > chunkMax {
		half := len(c) / 2
		right := slices.Clone(c[half:])
		c = slices.Clip(c[:half])
		o.chunks = slices.Insert(o.chunks, ci+1, right)
		o.mix[ci] = mixOf(c)
		o.mix = slices.Insert(o.mix, ci+1, mixOf(right))
	}
	o.chunks[ci] = c
}

func (o *order) remove(x elem) {
	if len(o.chunks) == 0 {
		return
	}
	ci := o.chunkFor(x)
	c := o.chunks[ci]
	i, found := slices.BinarySearchFunc(c, x, o.cmp)
	if !found {
		return
	}
	c = slices.Delete(c, i, i+1)
	if len(c) == 0 {
		o.chunks = slices.Delete(o.chunks, ci, ci+1)
		o.mix = slices.Delete(o.mix, ci, ci+1)
		return
	}
	o.chunks[ci] = c
	o.mix[ci][x.tss]--
}

// with inserts x into list, sorted by o (a repository's findings).
func (o *order) with(list []elem, x elem) []elem {
	i, _ := slices.BinarySearchFunc(list, x, o.cmp)
	return slices.Insert(list, i, x)
}

// without removes x from list, sorted by o.
func (o *order) without(list []elem, x elem) []elem {
	if i, found := slices.BinarySearchFunc(list, x, o.cmp); found {
		return slices.Delete(list, i, i+1)
	}
	return list
}

// position is a place in an order.
type position struct{ chunk, i int }

// after returns the position of the first element that comes after the
// cursor point (k, key): the start when at is nil.
func (o *order) after(at *point) position {
	if at == nil {
		return position{}
	}
	pointBefore := func(e elem) bool {
		if at.k != e.k {
			return at.k > e.k
		}
		return at.key < o.ix.entries[e.id].key
	}
	ci, _ := slices.BinarySearchFunc(o.chunks, 0, func(c []elem, _ int) int {
		if pointBefore(c[len(c)-1]) {
			return 1
		}
		return -1
	})
	if ci == len(o.chunks) {
		return position{chunk: ci}
	}
	c := o.chunks[ci]
	i, _ := slices.BinarySearchFunc(c, 0, func(e elem, _ int) int {
		if pointBefore(e) {
			return 1
		}
		return -1
	})
	return position{chunk: ci, i: i}
}

// next returns the element at p and advances p; false at the end.
func (o *order) next(p *position) (elem, bool) {
	for p.chunk < len(o.chunks) {
		c := o.chunks[p.chunk]
		if p.i < len(c) {
			x := c[p.i]
			p.i++
			return x, true
		}
		p.chunk++
		p.i = 0
	}
	return elem{}, false
}

// point is a place between elements: a sort key and a findingKey.
type point struct {
	k   int64
	key string
}

// pointBeforeElem reports whether the point comes before element x.
func (ix *Index) pointBefore(at point, k int64, id int32) bool {
	if at.k != k {
		return at.k > k
	}
	return strings.Compare(at.key, ix.entries[id].key) < 0
}
