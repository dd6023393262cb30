package main

import (
	"math"
	"time"
)

// sample is one reading of one process.
type sample struct {
	at         time.Duration // since the load started
	rss        int64         // bytes
	goroutines float64       // -1: not known (nats-server)
	heap       float64       // live heap after the last GC, bytes; -1: not known
}

// series is every sample of one process, in time order.
type series []sample

// slope is the least-squares slope of y over the samples at or after
// from, per hour, and the number of samples it used.
func (s series) slope(from time.Duration, y func(sample) float64) (perHour float64, n int) {
	var sx, sy, sxx, sxy float64
	for _, p := range s {
		if p.at < from {
			continue
		}
		x := p.at.Hours()
		v := y(p)
		sx += x
		sy += v
		sxx += x * x
		sxy += x * v
		n++
	}
	d := float64(n)*sxx - sx*sx
	if n < 2 || d == 0 {
		return math.NaN(), n
	}
	return (float64(n)*sxy - sx*sy) / d, n
}

// span is the smallest and largest y over the samples at or after from.
func (s series) span(from time.Duration, y func(sample) float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, p := range s {
		if p.at < from {
			continue
		}
		lo, hi = min(lo, y(p)), max(hi, y(p))
	}
	return lo, hi
}

func rssMiB(p sample) float64         { return float64(p.rss) / (1 << 20) }
func goroutineCount(p sample) float64 { return p.goroutines }
func heapMiB(p sample) float64        { return p.heap / (1 << 20) }
