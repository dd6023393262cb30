// Package pace drives an operation for the load commands: in a closed loop
// (a fixed number of workers back to back) or in an open loop (a fixed
// rate, each operation on its own goroutine, latency counted from its
// scheduled start so that a stall shows in the tail).
package pace

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Op is one operation: a delivery, a publish.
type Op func(ctx context.Context) error

// Result of one measurement.
type Result struct {
	N        int // operations that succeeded
	Errs     int
	Elapsed  time.Duration
	Lat      []time.Duration // one per successful operation
	FirstErr string
}

// Rate is the successful operations per second.
func (r Result) Rate() float64 { return float64(r.N) / r.Elapsed.Seconds() }

// Pct is the latency at quantile p (0–1); 0 without operations.
func (r Result) Pct(p float64) time.Duration {
	if len(r.Lat) == 0 {
		return 0
	}
	s := slices.Clone(r.Lat)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// collector merges outcomes from many goroutines.
type collector struct {
	mu  sync.Mutex
	res Result
}

func (c *collector) add(lat []time.Duration, errs int, firstErr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.res.Lat = append(c.res.Lat, lat...)
	c.res.Errs += errs
	if c.res.FirstErr == "" {
		c.res.FirstErr = firstErr
	}
}

func (c *collector) one(lat time.Duration, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.res.Errs++
		if c.res.FirstErr == "" {
			c.res.FirstErr = err.Error()
		}
		return
	}
	c.res.Lat = append(c.res.Lat, lat)
}

func (c *collector) done(start time.Time) Result {
	c.res.Elapsed = time.Since(start)
	c.res.N = len(c.res.Lat)
	return c.res
}

// Closed runs conc workers calling op back to back for d.
func Closed(ctx context.Context, op Op, conc int, d time.Duration) Result {
	var (
		c  collector
		wg sync.WaitGroup
	)
	start := time.Now()
	end := start.Add(d)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			errs, firstErr := 0, ""
			for time.Now().Before(end) {
				t := time.Now()
				if err := op(ctx); err != nil {
					errs++
					if firstErr == "" {
						firstErr = err.Error()
					}
					continue
				}
				lat = append(lat, time.Since(t))
			}
			c.add(lat, errs, firstErr)
		}()
	}
	wg.Wait()
	return c.done(start)
}

// Open calls op at rate per second for d, each call on its own goroutine.
// tick, when not nil, is called about every 5 seconds with the time elapsed.
func Open(ctx context.Context, op Op, rate int, d time.Duration, tick func(elapsed time.Duration)) Result {
	var (
		c  collector
		wg sync.WaitGroup
	)
	interval := time.Second / time.Duration(rate)
	total := int(d / interval)
	start := time.Now()
	nextTick := time.Duration(0)
	for i := 0; i < total; i++ {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		if el := time.Since(start); tick != nil && el >= nextTick {
			tick(el)
			nextTick += 5 * time.Second
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := op(ctx)
			c.one(time.Since(due), err)
		}()
	}
	wg.Wait()
	return c.done(start)
}

// Summary is a Result's counts as JSON, for a measurement that runs in
// another process.
type Summary struct {
	N          int    `json:"n"`
	Errors     int    `json:"errors"`
	FirstError string `json:"first_error,omitempty"`
}

// Summary returns r's counts.
func (r Result) Summary() Summary { return Summary{N: r.N, Errors: r.Errs, FirstError: r.FirstErr} }
