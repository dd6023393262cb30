package index

// The posture the console's /metrics shows, read under the index's lock.

// Counts returns the live findings by type, severity and status (indexes
// of Types, Severities, Statuses).
func (ix *Index) Counts() [3][5][4]int64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.agg.byTSS
}

// OpenByOwner returns the top owners by ACTIVE findings and a row "other"
// for the rest.
func (ix *Index) OpenByOwner(top int) []OwnerCounts {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.openByOwner(top)
}

// FixHistogram counts the fixes of the last 90 days of a type and
// severity (indexes of Types and Severities) per bucket of bounds in
// seconds, the last count above the highest bound, and sums their times.
func (ix *Index) FixHistogram(t, s int, bounds []float64) ([]uint64, float64) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.ttf.histogram(t, s, bounds)
}
