package metrics

import (
	"strings"
	"testing"
)

// Snapshot families write what their function returns at each scrape, in
// label order, with le after the family's labels.
func TestSnapshotFamilies(t *testing.T) {
	r := NewRegistry()
	value := 2.0
	r.NewGaugeFunc("ghas_test_things", "Things.", []string{"kind", "state"}, func() []GaugeSample {
		return []GaugeSample{{Labels: []string{"b", "x"}, Value: value}, {Labels: []string{"a", "y\"z"}, Value: 1}}
	})
	r.NewHistogramFunc("ghas_test_wait_seconds", "Waits.", []string{"kind"}, []float64{1, 10}, func() []HistogramSample {
		return []HistogramSample{{Labels: []string{"a"}, Counts: []uint64{1, 0, 2}, Sum: 41.5}}
	})
	value = 3
	var b strings.Builder
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	want := `# HELP ghas_test_things Things.
# TYPE ghas_test_things gauge
ghas_test_things{kind="a",state="y\"z"} 1
ghas_test_things{kind="b",state="x"} 3
# HELP ghas_test_wait_seconds Waits.
# TYPE ghas_test_wait_seconds histogram
ghas_test_wait_seconds_bucket{kind="a",le="1"} 1
ghas_test_wait_seconds_bucket{kind="a",le="10"} 1
ghas_test_wait_seconds_bucket{kind="a",le="+Inf"} 3
ghas_test_wait_seconds_sum{kind="a"} 41.5
ghas_test_wait_seconds_count{kind="a"} 3
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}
