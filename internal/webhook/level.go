package webhook

import (
	"sync"

	"github.com/ghas-relay/ghas-relay/internal/metrics"
)

// level is a count that goes up and down (connections, requests in a
// state), shown in a gauge. The count and the gauge change under one lock:
// with an atomic count, two changes could set the gauge out of order and
// leave it wrong until the next one.
type level struct {
	mu    sync.Mutex
	n     int64
	gauge *metrics.Gauge
}

func newLevel(g *metrics.Gauge) *level { return &level{gauge: g} }

// add changes the count by d.
func (l *level) add(d int64) {
	l.mu.Lock()
	l.n += d
	l.gauge.Set(float64(l.n))
	l.mu.Unlock()
}

// addBelow adds one if the count is below limit, and reports whether it did.
func (l *level) addBelow(limit int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n >= limit {
		return false
	}
	l.n++
	l.gauge.Set(float64(l.n))
	return true
}

// value is the count now.
func (l *level) value() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}
