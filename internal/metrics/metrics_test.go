package metrics

import (
	"strings"
	"testing"
)

func TestTextFormat(t *testing.T) {
	r := NewRegistry()
	c := r.NewCounterVec("ghas_test_total", "A test counter.", "event", "result")
	h := r.NewHistogram("ghas_test_seconds", "A test histogram.", []float64{0.1, 1})
	g := r.NewGauge("ghas_test_gauge", "A test gauge.")
	c.Inc("ping", "accepted")
	c.Add(2, "ping", "accepted")
	c.Inc("a\"b", "x")
	h.Observe(0.05)
	h.Observe(0.5)
	h.Observe(5)
	g.Set(1.5)
	var b strings.Builder
	if _, err := r.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	want := `# HELP ghas_test_total A test counter.
# TYPE ghas_test_total counter
ghas_test_total{event="a\"b",result="x"} 1
ghas_test_total{event="ping",result="accepted"} 3
# HELP ghas_test_seconds A test histogram.
# TYPE ghas_test_seconds histogram
ghas_test_seconds_bucket{le="0.1"} 1
ghas_test_seconds_bucket{le="1"} 2
ghas_test_seconds_bucket{le="+Inf"} 3
ghas_test_seconds_sum 5.55
ghas_test_seconds_count 3
# HELP ghas_test_gauge A test gauge.
# TYPE ghas_test_gauge gauge
ghas_test_gauge 1.5
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	if c.Value("ping", "accepted") != 3 {
		t.Errorf("Value = %d", c.Value("ping", "accepted"))
	}
}
