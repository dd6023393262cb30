package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
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
// every run (GitHub answers 500), the sweep goes on. (A full pull
// succeeded before, so the full pull waits for its time of day.)
func TestDaemonSurvivesFailedRuns(t *testing.T) {
	e := newEnv(t, ghtest.Options{}, false, func(c *ghclient.Config) { c.MaxRetryElapsed = 50 * time.Millisecond })
	e.storeFullReport(nil)
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

// storeFullReport stores a full-pull report with these failures as the
// latest one, and as the latest successful one if there are none.
func (e *env) storeFullReport(failures []Failure) {
	e.t.Helper()
	b, err := json.Marshal(Report{Mode: ModeFull, Failures: failures})
	if err != nil {
		e.t.Fatal(err)
	}
	keys := []string{ReportKey(ModeFull)}
	if len(failures) == 0 {
		keys = append(keys, SuccessKey(ModeFull))
	}
	for _, k := range keys {
		if _, err := e.state.Put(context.Background(), k, b); err != nil {
			e.t.Fatal(err)
		}
	}
}

// daemonUntil runs the daemon until cond holds (or 20 s pass) and stops it.
func (e *env) daemonUntil(s Schedule, cond func() bool) {
	e.t.Helper()
	c, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.rec.Daemon(c, s) }()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		e.t.Fatalf("daemon: %v", err)
	}
	if !cond() {
		e.t.Fatal("daemon: condition not reached within 20s")
	}
}

func (e *env) runs(mode string) uint64 {
	return e.metrics.Runs.Value(mode, "ok") + e.metrics.Runs.Value(mode, "failed")
}

// A fresh deployment (or one whose NATS data was lost) has no successful
// full pull in ghas_state: the daemon runs one at start, after the sweep
// and instead of the first delta pull, rather than waiting for FullAt.
func TestDaemonFullPullAtStartWithoutSuccessfulOne(t *testing.T) {
	far := Schedule{DeltaEvery: time.Hour, RedeliverEvery: time.Hour}
	for _, c := range []struct {
		name     string
		seed     func(e *env)
		wantFull bool
	}{
		{"fresh", func(*env) {}, true},
		{"only failed full pulls", func(e *env) { e.storeFullReport([]Failure{{Scope: "org x code-scanning", Error: "500"}}) }, true},
		{"successful full pull", func(e *env) { e.storeFullReport(nil) }, false},
		// Written before report.full.ok existed: the latest report counts.
		{"latest full pull without failures", func(e *env) {
			b, _ := json.Marshal(Report{Mode: ModeFull})
			if _, err := e.state.Put(context.Background(), ReportKey(ModeFull), b); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, ghtest.Options{}, false)
			org := e.gh.AddInstallation("octo-org", "Organization")
			r := e.gh.AddRepository(org.ID, "repo", true)
			e.gh.AddAlerts(r.ID, ghtest.Dependabot, 5)
			c.seed(e)
			// Now is 03:00 UTC: the daily full pull at 02:00 is 23 hours away.
			at3 := time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)
			e.rec = e.reconciler(e.app, Config{Now: func() time.Time { return at3 }})
			s := far
			s.FullAt = 2 * time.Hour
			if c.wantFull {
				e.daemonUntil(s, func() bool { return e.runs(ModeFull) >= 1 })
				if n := e.metrics.Runs.Value(ModeFull, "ok"); n != 1 {
					t.Errorf("full pulls ok: %d, want 1", n)
				}
				if n := e.runs(ModeDelta); n != 0 {
					t.Errorf("delta pulls at start: %d, want none (the full pull replaces the first)", n)
				}
				if n := e.runs(ModeRedeliver); n != 1 {
					t.Errorf("sweeps before the full pull: %d, want 1", n)
				}
				need, err := e.rec.NeedsFullPull(context.Background())
				if err != nil || need {
					t.Errorf("after the full pull at start NeedsFullPull = %v, %v; want false", need, err)
				}
				rep, err := LatestReport(context.Background(), e.state, ModeFull)
				if err != nil || rep.Drift.New != 5 {
					t.Errorf("full report %+v, %v; want 5 new", rep, err)
				}
				return
			}
			e.daemonUntil(s, func() bool { return e.runs(ModeDelta) >= 1 && e.runs(ModeRedeliver) >= 1 })
			if n := e.runs(ModeFull); n != 0 {
				t.Errorf("full pull ran %d times although one succeeded before", n)
			}
		})
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

// A full pull that takes long (every GitHub request slow) never holds the
// missed-delivery sweep: sweeps run every RedeliverEvery meanwhile.
func TestSweepNotHeldBehindAFullPull(t *testing.T) {
	e := newEnv(t, ghtest.Options{}, false)
	org := e.gh.AddInstallation("octo-org", "Organization")
	for i := range 6 {
		r := e.gh.AddRepository(org.ID, fmt.Sprintf("repo-%d", i), true)
		e.gh.AddAlerts(r.ID, ghtest.Dependabot, 3)
	}
	// The organisation's Dependabot listing answers after 2 s: the full
	// pull at start takes that long.
	e.gh.Inject(ghtest.Fault{Path: "/dependabot/alerts", Delay: 2 * time.Second})
	s := Schedule{DeltaEvery: time.Hour, RedeliverEvery: 100 * time.Millisecond}
	var full, sweeps uint64
	e.daemonUntil(s, func() bool {
		if sweeps < 4 { // the counts when the fourth sweep ended, before the daemon stops
			full, sweeps = e.runs(ModeFull), e.runs(ModeRedeliver)
		}
		return sweeps >= 4
	})
	if full != 0 || sweeps < 4 {
		t.Errorf("while the first full pull ran: %d full pulls finished, %d sweeps; want 0 and at least 4", full, sweeps)
	}
}
