package pace

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestOpenCallsAtTheRate(t *testing.T) {
	var calls atomic.Int64
	op := func(context.Context) error {
		if calls.Add(1)%4 == 0 {
			return errors.New("every fourth fails")
		}
		return nil
	}
	start := time.Now()
	res := Open(context.Background(), op, 200, 250*time.Millisecond, nil)
	if got := calls.Load(); got != 50 {
		t.Fatalf("calls = %d, want 50 (200/s for 250 ms)", got)
	}
	if res.N != 38 || res.Errs != 12 || res.FirstErr != "every fourth fails" {
		t.Fatalf("N, Errs, FirstErr = %d, %d, %q; want 38, 12, every fourth fails", res.N, res.Errs, res.FirstErr)
	}
	if el := time.Since(start); el < 245*time.Millisecond {
		t.Fatalf("took %s: the calls were not paced", el)
	}
	if len(res.Lat) != res.N || res.Pct(1) < res.Pct(0) {
		t.Fatalf("latencies: %d for %d successes, max %s < min %s", len(res.Lat), res.N, res.Pct(1), res.Pct(0))
	}
}

func TestClosedRunsEveryWorkerUntilTheEnd(t *testing.T) {
	var inFlight, most atomic.Int64
	op := func(context.Context) error {
		n := inFlight.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(5 * time.Millisecond)
		inFlight.Add(-1)
		return nil
	}
	res := Closed(context.Background(), op, 4, 100*time.Millisecond)
	if most.Load() != 4 {
		t.Fatalf("at most %d calls at once, want 4", most.Load())
	}
	// 4 workers for 100 ms with 5 ms calls: at most 4 × 21 calls, and
	// each worker goes on past its first call however slow the machine.
	if res.N < 8 || res.N > 84 || res.Errs != 0 {
		t.Fatalf("N = %d, Errs = %d; want 8–84 and 0", res.N, res.Errs)
	}
	if s := res.Summary(); s.N != res.N || s.Errors != 0 {
		t.Fatalf("Summary = %+v", s)
	}
}

func TestPctOfNothingIsZero(t *testing.T) {
	if p := (Result{}).Pct(0.99); p != 0 {
		t.Fatalf("Pct = %s, want 0", p)
	}
}
