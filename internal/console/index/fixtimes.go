package index

import (
	"cmp"
	"slices"
	"time"
)

// FixWindow is how far back fixes count towards the time to fix.
const FixWindow = 90 * 24 * time.Hour

// fixTimes holds, per type and severity, the time to fix of every FIXED
// finding fixed within FixWindow, sorted: the median is the middle one,
// a histogram bucket a binary search. Fixes that leave the window are
// dropped by expire, which runs on the index's maintenance tick.
type fixTimes struct {
	cells [3][5][]fix
	// unsorted: during the initial load fixes are appended, and sorted
	// once at its end (sortCells).
	unsorted bool
}

// fix is one finding's time to fix: lastFixedOn − firstFoundOn.
type fix struct {
	dur int64 // seconds
	at  int64 // lastFixedOn, Unix seconds
	id  int32
}

func (f *fixTimes) init() { f.unsorted = true }

func cmpFix(a, b fix) int {
	if c := cmp.Compare(a.dur, b.dur); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

// fixOf is e's time to fix, false when it has none (not both times, a fix
// before the find, or a fix outside the window).
func fixOf(id int32, e *entry, now int64) (fix, bool) {
	if e.first == 0 || e.fixedAt == 0 || e.fixedAt < e.first {
		return fix{}, false
	}
	if now-int64(e.fixedAt) > int64(FixWindow/time.Second) {
		return fix{}, false
	}
	return fix{dur: int64(e.fixedAt - e.first), at: int64(e.fixedAt), id: id}, true
}

func (f *fixTimes) add(id int32, e *entry, now int64) {
	x, ok := fixOf(id, e, now)
	if !ok {
		return
	}
	cell := &f.cells[e.typ][e.sev]
	if f.unsorted {
		*cell = append(*cell, x)
		return
	}
	i, _ := slices.BinarySearchFunc(*cell, x, cmpFix)
	*cell = slices.Insert(*cell, i, x)
}

func (f *fixTimes) remove(id int32, e *entry) {
	if e.first == 0 || e.fixedAt == 0 || e.fixedAt < e.first {
		return
	}
	x := fix{dur: int64(e.fixedAt - e.first), id: id}
	cell := &f.cells[e.typ][e.sev]
	if f.unsorted {
		*cell = slices.DeleteFunc(*cell, func(y fix) bool { return y.id == id })
		return
	}
	if i, found := slices.BinarySearchFunc(*cell, x, cmpFix); found {
		*cell = slices.Delete(*cell, i, i+1)
	}
}

// expire drops the fixes older than the window.
func (f *fixTimes) expire(now int64) {
	floor := now - int64(FixWindow/time.Second)
	for t := range f.cells {
		for s := range f.cells[t] {
			f.cells[t][s] = slices.DeleteFunc(f.cells[t][s], func(x fix) bool { return x.at < floor })
		}
	}
}

// sortCells sorts every cell (after the initial load appended unsorted).
func (f *fixTimes) sortCells() {
	for t := range f.cells {
		for s := range f.cells[t] {
			slices.SortFunc(f.cells[t][s], cmpFix)
		}
	}
	f.unsorted = false
}

// median is the median time to fix of a cell (of an even count, the mean
// of the two in the middle, as the median is usually defined), and the
// number of fixes.
func (f *fixTimes) median(t, s int) (time.Duration, int) {
	c := f.cells[t][s]
	n := len(c)
	if n == 0 {
		return 0, 0
	}
	if n%2 == 1 {
		return time.Duration(c[n/2].dur) * time.Second, n
	}
	return time.Duration(c[n/2-1].dur+c[n/2].dur) * time.Second / 2, n
}

// histogram counts a cell's fixes per bucket of bounds (seconds), the
// last count above the highest bound, and sums them.
func (f *fixTimes) histogram(t, s int, bounds []float64) ([]uint64, float64) {
	c := f.cells[t][s]
	counts := make([]uint64, len(bounds)+1)
	prev := 0
	for i, b := range bounds {
		// the first fix longer than b
		j, _ := slices.BinarySearchFunc(c, b, func(x fix, b float64) int {
			if float64(x.dur) <= b {
				return -1
			}
			return 1
		})
		counts[i] = uint64(j - prev)
		prev = j
	}
	counts[len(bounds)] = uint64(len(c) - prev)
	var sum float64
	for _, x := range c {
		sum += float64(x.dur)
	}
	return counts, sum
}
