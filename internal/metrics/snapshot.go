package metrics

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// Metrics whose values are a snapshot of state another component owns
// (the console's posture over its index): the owner computes them when
// /metrics is read instead of keeping a second copy up to date.

// GaugeSample is one labelled value of a GaugeFunc.
type GaugeSample struct {
	Labels []string // values in the order of the family's label names
	Value  float64
}

// HistogramSample is one labelled histogram of a HistogramFunc: Counts
// per bucket of the family's bounds, not cumulative, the last one above
// the highest bound.
type HistogramSample struct {
	Labels []string
	Counts []uint64
	Sum    float64
}

type gaugeFunc struct {
	name, help string
	labels     []string
	fn         func() []GaugeSample
}

// NewGaugeFunc registers a gauge family with labels whose samples fn
// returns at each scrape.
func (r *Registry) NewGaugeFunc(name, help string, labels []string, fn func() []GaugeSample) {
	r.add(name, &gaugeFunc{name: name, help: help, labels: slices.Clone(labels), fn: fn})
}

func (g *gaugeFunc) write(w io.Writer) error {
	if _, err := fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n", g.name, g.help, g.name); err != nil {
		return err
	}
	samples := g.fn()
	slices.SortFunc(samples, func(a, b GaugeSample) int { return slices.Compare(a.Labels, b.Labels) })
	for _, s := range samples {
		if _, err := fmt.Fprintf(w, "%s%s %s\n", g.name, labelString(g.labels, strings.Join(s.Labels, "\xff")), formatFloat(s.Value)); err != nil {
			return err
		}
	}
	return nil
}

type histogramFunc struct {
	name, help string
	labels     []string
	buckets    []float64
	fn         func() []HistogramSample
}

// NewHistogramFunc registers a histogram family with labels and the given
// upper bounds whose samples fn returns at each scrape.
func (r *Registry) NewHistogramFunc(name, help string, labels []string, buckets []float64, fn func() []HistogramSample) {
	r.add(name, &histogramFunc{name: name, help: help, labels: slices.Clone(labels), buckets: slices.Clone(buckets), fn: fn})
}

func (h *histogramFunc) write(w io.Writer) error {
	if _, err := fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", h.name, h.help, h.name); err != nil {
		return err
	}
	samples := h.fn()
	slices.SortFunc(samples, func(a, b HistogramSample) int { return slices.Compare(a.Labels, b.Labels) })
	for _, s := range samples {
		labels := labelString(h.labels, strings.Join(s.Labels, "\xff"))
		// le joins the family's labels: {type="sast",le="0.5"}.
		prefix := "{"
		if labels != "" {
			prefix = labels[:len(labels)-1] + ","
		}
		var cum, count uint64
		for _, c := range s.Counts {
			count += c
		}
		for i, b := range h.buckets {
			if i < len(s.Counts) {
				cum += s.Counts[i]
			}
			if _, err := fmt.Fprintf(w, "%s_bucket%sle=\"%s\"} %d\n", h.name, prefix, formatFloat(b), cum); err != nil {
				return err
			}
		}
		if _, err := fmt.Fprintf(w, "%s_bucket%sle=\"+Inf\"} %d\n%s_sum%s %s\n%s_count%s %d\n",
			h.name, prefix, count, h.name, labels, formatFloat(s.Sum), h.name, labels, count); err != nil {
			return err
		}
	}
	return nil
}
