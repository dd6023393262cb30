package main

import (
	"math"
	"testing"
	"time"
)

func TestSlope(t *testing.T) {
	var s series
	for i := range 61 {
		at := time.Duration(i) * 10 * time.Second
		// RSS grows 6 MiB an hour after the first 5 minutes; goroutines flat.
		rss := int64(100 << 20)
		if at > 5*time.Minute {
			rss += int64((at - 5*time.Minute).Hours() * 6 * (1 << 20))
		}
		s = append(s, sample{at: at, rss: rss, goroutines: 40})
	}
	got, n := s.slope(5*time.Minute, rssMiB)
	if math.Abs(got-6) > 0.01 || n != 31 {
		t.Errorf("RSS slope over the last 5 min: %.3f MiB/h from %d samples, want 6 from 31", got, n)
	}
	if g, _ := s.slope(0, goroutineCount); math.Abs(g) > 1e-9 {
		t.Errorf("flat goroutines: slope %v", g)
	}
	if g, n := s.slope(time.Hour, rssMiB); !math.IsNaN(g) || n != 0 {
		t.Errorf("no samples: %v from %d, want NaN from 0", g, n)
	}
	if lo, hi := s.span(0, goroutineCount); lo != 40 || hi != 40 {
		t.Errorf("span %v–%v", lo, hi)
	}
}
