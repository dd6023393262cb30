package reconcile

import (
	"context"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/ghclient"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
)

func TestParseTimeOfDay(t *testing.T) {
	for in, want := range map[string]time.Duration{"02:00": 2 * time.Hour, "00:00": 0, "23:59": 23*time.Hour + 59*time.Minute} {
		if got, err := ParseTimeOfDay(in); err != nil || got != want {
			t.Errorf("ParseTimeOfDay(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "2:00", "24:00", "02:60", "0200", "02:00:00", "noon"} {
		if _, err := ParseTimeOfDay(in); err == nil {
			t.Errorf("ParseTimeOfDay(%q) accepted", in)
		}
	}
}

func TestNextDaily(t *testing.T) {
	at := 2 * time.Hour
	for _, c := range []struct{ now, want string }{
		{"2026-11-21T01:59:59Z", "2026-11-21T02:00:00Z"},
		{"2026-11-21T02:00:00Z", "2026-11-22T02:00:00Z"},
		{"2026-11-21T23:00:00Z", "2026-11-22T02:00:00Z"},
		{"2026-12-31T03:00:00Z", "2027-01-01T02:00:00Z"},
		{"2026-11-21T03:30:00+02:00", "2026-11-21T02:00:00Z"}, // 01:30 UTC: today, in UTC
	} {
		now, _ := time.Parse(time.RFC3339, c.now)
		want, _ := time.Parse(time.RFC3339, c.want)
		if got := NextDaily(now, at); !got.Equal(want) {
			t.Errorf("NextDaily(%s) = %s, want %s", c.now, got, want)
		}
	}
}

// The daemon keeps its schedule when runs fail: the delta pull fails on
// every run (GitHub answers 500), the sweep goes on.
func TestDaemonSurvivesFailedRuns(t *testing.T) {
	e := newEnv(t, ghtest.Options{}, false, func(c *ghclient.Config) { c.MaxRetryElapsed = 50 * time.Millisecond })
	e.gh.Inject(ghtest.ServerError("/app/installations", 0, 0))
	c, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- e.rec.Daemon(c, Schedule{FullAt: 2 * time.Hour, DeltaEvery: 50 * time.Millisecond, RedeliverEvery: 30 * time.Millisecond})
	}()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if e.metrics.Runs.Value(ModeDelta, "failed") >= 2 && e.metrics.Runs.Value(ModeRedeliver, "ok") >= 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("daemon: %v", err)
	}
	if d, r := e.metrics.Runs.Value(ModeDelta, "failed"), e.metrics.Runs.Value(ModeRedeliver, "ok"); d < 2 || r < 3 {
		t.Errorf("daemon ran %d failed deltas and %d sweeps; want it to keep going", d, r)
	}
	if n := e.metrics.Runs.Value(ModeFull, "ok") + e.metrics.Runs.Value(ModeFull, "failed"); n != 0 {
		t.Errorf("full pull ran %d times before its time of day", n)
	}
}

// FuzzSchedule: whatever ParseTimeOfDay accepts is a time of day, and
// NextDaily is the first instant after now at that time, within a day.
func FuzzSchedule(f *testing.F) {
	for _, s := range []string{"02:00", "00:00", "23:59", "24:00", "2:00", "ab:cd", ""} {
		f.Add(s, int64(1763700000))
	}
	f.Fuzz(func(t *testing.T, s string, unix int64) {
		at, err := ParseTimeOfDay(s)
		if err != nil {
			return
		}
		if at < 0 || at >= 24*time.Hour || at%time.Minute != 0 {
			t.Fatalf("ParseTimeOfDay(%q) = %v", s, at)
		}
		now := time.Unix(unix%(1<<34), 0)
		next := NextDaily(now, at)
		if !next.After(now) || next.Sub(now) > 24*time.Hour {
			t.Fatalf("NextDaily(%v, %v) = %v", now, at, next)
		}
		midnight := next.Truncate(24 * time.Hour)
		if next.Sub(midnight) != at {
			t.Fatalf("NextDaily(%v, %v) = %v is not at %v UTC", now, at, next, at)
		}
	})
}
