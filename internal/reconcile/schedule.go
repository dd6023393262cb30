package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/logging"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// Schedule is when the daemon runs each mode (RECONCILE_FULL_AT, RECONCILE_DELTA_EVERY, REDELIVER_EVERY).
type Schedule struct {
	// FullAt is the time of day (UTC) of the daily full pull, as an
	// offset from midnight (RECONCILE_FULL_AT, default 02:00).
	FullAt time.Duration
	// DeltaEvery is the delta pull interval (RECONCILE_DELTA_EVERY, default 1h).
	DeltaEvery time.Duration
	// RedeliverEvery is the missed-delivery sweep interval (REDELIVER_EVERY, default 10m).
	RedeliverEvery time.Duration
}

// ParseTimeOfDay parses "HH:MM" (24-hour, UTC) into an offset from midnight.
func ParseTimeOfDay(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return 0, fmt.Errorf("%q is not a time of day HH:MM", s)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// NextDaily is the first instant after now (UTC) at offset at from midnight.
func NextDaily(now time.Time, at time.Duration) time.Time {
	now = now.UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	next := day.Add(at)
	if !next.After(now) {
		next = day.AddDate(0, 0, 1).Add(at)
	}
	return next
}

// due is the next run of each mode.
type due struct {
	mode string
	at   time.Time
}

// nextDue picks the earliest of the schedule's runs; on a tie the order
// is redeliver, delta, full.
func nextDue(ds []due) int {
	best := 0
	for i := range ds {
		if ds[i].at.Before(ds[best].at) {
			best = i
		}
	}
	return best
}

// Daemon runs the three modes on schedule until ctx ends: the sweep and
// the delta pull at once and then every interval, the full pull daily at
// FullAt. When ghas_state holds no successful full pull (NeedsFullPull),
// the full pull runs at start instead of the first delta pull (which,
// without watermarks, would walk everything too). A failed run is logged
// (and reported) and the schedule goes on.
//
// The sweep has its own loop: a full pull of a large organisation, or one
// waiting for GitHub's rate limit, takes hours, and missed deliveries must
// still be recovered every RedeliverEvery meanwhile. Pulls never overlap
// each other, and sweeps never overlap each other.
func (r *Reconciler) Daemon(ctx context.Context, s Schedule) error {
	if s.DeltaEvery <= 0 || s.RedeliverEvery <= 0 {
		return errors.New("reconcile daemon: intervals must be positive")
	}
	now := r.cfg.Now()
	pulls := []due{
		{ModeDelta, now},
		{ModeFull, NextDaily(now, s.FullAt)},
	}
	need, err := r.NeedsFullPull(ctx)
	if err != nil {
		// Better one full pull too many (cheap with stored ETags) than
		// a day without one.
		r.logger.Warn("cannot tell whether a full pull succeeded before; pulling in full at start", logging.Err(err))
	}
	if need {
		pulls[0].at = now.Add(s.DeltaEvery)
		pulls[1].at = now
		r.logger.Info("no successful full pull recorded in " + stream.StateBucket + "; full pull at start")
	}
	r.logger.Info("reconciler daemon started",
		slog.Time(logging.KeyNextFull, pulls[1].at),
		slog.Duration(logging.KeyDeltaEvery, s.DeltaEvery),
		slog.Duration(logging.KeyRedeliverEvery, s.RedeliverEvery))
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		r.loop(ctx, s, []due{{ModeRedeliver, now}})
	}()
	go func() {
		defer wg.Done()
		r.loop(ctx, s, pulls)
	}()
	wg.Wait()
	return nil
}

// loop runs the modes of ds, one at a time, each when it is due, until
// ctx ends.
func (r *Reconciler) loop(ctx context.Context, s Schedule, ds []due) {
	for {
		i := nextDue(ds)
		if wait := ds[i].at.Sub(r.cfg.Now()); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		if ctx.Err() != nil {
			return
		}
		if _, err := r.Run(ctx, ds[i].mode); err != nil && ctx.Err() == nil {
			r.logger.Warn("reconcile run failed; the schedule goes on", slog.String(logging.KeyMode, ds[i].mode), logging.Err(err))
		}
		end := r.cfg.Now()
		switch ds[i].mode {
		case ModeFull:
			ds[i].at = NextDaily(end, s.FullAt)
		case ModeDelta:
			ds[i].at = end.Add(s.DeltaEvery)
		case ModeRedeliver:
			ds[i].at = end.Add(s.RedeliverEvery)
		}
	}
}
