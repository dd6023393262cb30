// Package metrics owns the Prometheus metrics of ghas-relay: counters with
// labels, gauges and histograms, written in the Prometheus text exposition
// format (version 0.0.4). It is a small, dependency-free registry because the
// dependency set is fixed (docs/decisions.md). docs/contract.md lists the
// metrics the binaries register.
package metrics

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// DefaultBuckets are latency buckets in seconds, from 0.5 ms to 10 s.
var DefaultBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Registry holds metrics and writes them in registration order.
type Registry struct {
	mu      sync.Mutex
	metrics []writer
	names   map[string]bool
}

type writer interface {
	write(w io.Writer) error
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{names: map[string]bool{}} }

func (r *Registry) add(name string, m writer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.names[name] {
		panic("metrics: duplicate metric " + name) // programming error
	}
	r.names[name] = true
	r.metrics = append(r.metrics, m)
}

// WriteTo writes every metric in the text exposition format.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	ms := slices.Clone(r.metrics)
	r.mu.Unlock()
	cw := &countWriter{w: w}
	for _, m := range ms {
		if err := m.write(cw); err != nil {
			return cw.n, err
		}
	}
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// CounterVec is a counter with labels.
type CounterVec struct {
	name, help string
	labels     []string
	mu         sync.RWMutex
	values     map[string]*atomic.Uint64 // key: joined label values
	order      []string
}

// NewCounterVec registers a counter with the given label names.
func (r *Registry) NewCounterVec(name, help string, labels ...string) *CounterVec {
	c := &CounterVec{name: name, help: help, labels: labels, values: map[string]*atomic.Uint64{}}
	r.add(name, c)
	return c
}

// Inc adds one to the counter with the given label values.
func (c *CounterVec) Inc(values ...string) { c.Add(1, values...) }

// Add adds n to the counter with the given label values.
func (c *CounterVec) Add(n uint64, values ...string) {
	key := strings.Join(values, "\xff")
	c.mu.RLock()
	v := c.values[key]
	c.mu.RUnlock()
	if v == nil {
		c.mu.Lock()
		if v = c.values[key]; v == nil {
			v = new(atomic.Uint64)
			c.values[key] = v
			c.order = append(c.order, key)
		}
		c.mu.Unlock()
	}
	v.Add(n)
}

// Value returns the counter with the given label values (for tests).
func (c *CounterVec) Value(values ...string) uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if v := c.values[strings.Join(values, "\xff")]; v != nil {
		return v.Load()
	}
	return 0
}

func (c *CounterVec) write(w io.Writer) error {
	c.mu.RLock()
	keys := slices.Clone(c.order)
	c.mu.RUnlock()
	slices.Sort(keys)
	if _, err := fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", c.name, c.help, c.name); err != nil {
		return err
	}
	for _, k := range keys {
		c.mu.RLock()
		v := c.values[k].Load()
		c.mu.RUnlock()
		if _, err := fmt.Fprintf(w, "%s%s %d\n", c.name, labelString(c.labels, k), v); err != nil {
			return err
		}
	}
	return nil
}

// Gauge is a value that goes up and down, without labels.
type Gauge struct {
	name, help string
	bits       atomic.Uint64
}

// NewGauge registers a gauge.
func (r *Registry) NewGauge(name, help string) *Gauge {
	g := &Gauge{name: name, help: help}
	r.add(name, g)
	return g
}

// Set sets the gauge.
func (g *Gauge) Set(v float64) { g.bits.Store(math.Float64bits(v)) }

// Value returns the gauge's value.
func (g *Gauge) Value() float64 { return math.Float64frombits(g.bits.Load()) }

func (g *Gauge) write(w io.Writer) error {
	_, err := fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %s\n", g.name, g.help, g.name, g.name, formatFloat(g.Value()))
	return err
}

// Histogram is a histogram without labels.
type Histogram struct {
	name, help string
	buckets    []float64
	mu         sync.Mutex
	counts     []uint64 // per bucket, not cumulative; last is +Inf
	sum        float64
	count      uint64
}

// NewHistogram registers a histogram with the given upper bounds.
func (r *Registry) NewHistogram(name, help string, buckets []float64) *Histogram {
	h := &Histogram{name: name, help: help, buckets: slices.Clone(buckets), counts: make([]uint64, len(buckets)+1)}
	r.add(name, h)
	return h
}

// Observe records one value.
func (h *Histogram) Observe(v float64) {
	i, _ := slices.BinarySearch(h.buckets, v)
	h.mu.Lock()
	h.counts[i]++
	h.sum += v
	h.count++
	h.mu.Unlock()
}

// Count returns the number of observations.
func (h *Histogram) Count() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count
}

func (h *Histogram) write(w io.Writer) error {
	h.mu.Lock()
	counts := slices.Clone(h.counts)
	sum, count := h.sum, h.count
	h.mu.Unlock()
	if _, err := fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", h.name, h.help, h.name); err != nil {
		return err
	}
	var cum uint64
	for i, b := range h.buckets {
		cum += counts[i]
		if _, err := fmt.Fprintf(w, "%s_bucket{le=\"%s\"} %d\n", h.name, formatFloat(b), cum); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %s\n%s_count %d\n", h.name, count, h.name, formatFloat(sum), h.name, count)
	return err
}

func labelString(names []string, key string) string {
	if len(names) == 0 {
		return ""
	}
	values := strings.Split(key, "\xff")
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		v := ""
		if i < len(values) {
			v = values[i]
		}
		b.WriteString(n)
		b.WriteString(`="`)
		b.WriteString(escapeLabel(v))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`).Replace(s)
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
