package reconcile

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/logging"
)

// Report is what one run did. It is logged at the end of the run
// and stored in ghas_state under ReportKey(mode).
type Report struct {
	Mode       string    `json:"mode"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
	// DurationSeconds is the wall time of the run.
	DurationSeconds float64 `json:"durationSeconds"`

	Installations int `json:"installations"`
	Repositories  int `json:"repositories"`
	// AlertsSeen counts every alert a listing covered, including those of
	// pages GitHub answered 304 Not Modified.
	AlertsSeen       int   `json:"alertsSeen"`
	Pages            int   `json:"pages"`
	PagesNotModified int   `json:"pagesNotModified"`
	ListingsComplete int   `json:"listingsComplete"`
	ListingsFallback int   `json:"listingsFallback"`
	Drift            Drift `json:"drift"`
	// RemovalsConfirmed counts findings a complete listing no longer
	// held whose single-alert GET answered 404 (they were marked REMOVED;
	// removals of inaccessible repositories need no GET and are not
	// counted here). RemovalsRefuted counts those GitHub still returned:
	// the listing skipped them (pages shift when alerts are deleted
	// during the walk); they were compared like listed alerts, not removed.
	RemovalsConfirmed int `json:"removalsConfirmed"`
	RemovalsRefuted   int `json:"removalsRefuted"`
	Published         int `json:"published"`
	DuplicatesDropped int `json:"duplicatesDropped"`

	// Requests is every HTTP request to GitHub during the run; NotModified
	// the 304 answers among them (free of rate limit). RateLimitSpent is
	// their difference.
	Requests       int `json:"requests"`
	NotModified    int `json:"notModified"`
	RateLimitSpent int `json:"rateLimitSpent"`
	// RateLimitRemaining is the budget GitHub last reported, by
	// installation id ("app" for the App's JWT calls).
	RateLimitRemaining map[string]int `json:"rateLimitRemaining,omitempty"`

	// FeaturesOff lists listings GitHub refused because the feature is not
	// enabled; they are not retried and nothing is removed for them.
	FeaturesOff []string `json:"featuresOff,omitempty"`
	// Skipped lists what was deliberately left alone (suspended
	// installations, removals that could not be proven safe).
	Skipped []string `json:"skipped,omitempty"`
	// Failures lists every installation, organisation or repository whose
	// listing failed; nothing was removed for them.
	Failures []Failure `json:"failures,omitempty"`

	// Deliveries is the sweep's summary (mode redeliver).
	Deliveries *DeliveryReport `json:"deliveries,omitempty"`
}

// Drift counts the corrections of a run.
type Drift struct {
	// New: alerts GitHub has and ghas_findings had not.
	New int `json:"new"`
	// Changed: alerts whose document differs from the stored one.
	Changed int `json:"changed"`
	// Removed: findings a complete pull no longer lists, or of
	// repositories no installation can access any more.
	Removed int `json:"removed"`
	// Stale: alerts that differ but whose stored finding is newer (a
	// webhook got there first); not published, the processor would drop them.
	Stale int `json:"stale"`
}

// DeliveryReport summarises a missed-delivery sweep.
type DeliveryReport struct {
	// Examined is the delivery attempts listed back to the checkpoint.
	Examined int `json:"examined"`
	// Failed is the GUIDs without any successful attempt.
	Failed int `json:"failed"`
	// Redelivered is the failed GUIDs published to ghas.redelivery.<event>.
	Redelivered int `json:"redelivered"`
	// Ignored is the failed GUIDs of events the receiver does not handle.
	Ignored int `json:"ignored"`
	// Checkpoint is the newest delivery id examined.
	Checkpoint int64 `json:"checkpoint"`
}

// Failure is one scope that failed and why.
type Failure struct {
	Scope string `json:"scope"`
	Error string `json:"error"`
}

// attrs are the report's log attributes.
func (rep *Report) attrs() []any {
	a := []any{
		slog.String(logging.KeyMode, rep.Mode),
		slog.Float64(logging.KeyDurationSeconds, rep.DurationSeconds),
		slog.Int(logging.KeyInstallations, rep.Installations),
		slog.Int(logging.KeyRepositories, rep.Repositories),
		slog.Int(logging.KeyAlertsSeen, rep.AlertsSeen),
		slog.Int(logging.KeyDriftNew, rep.Drift.New),
		slog.Int(logging.KeyDriftChanged, rep.Drift.Changed),
		slog.Int(logging.KeyDriftRemoved, rep.Drift.Removed),
		slog.Int(logging.KeyDriftStale, rep.Drift.Stale),
		slog.Int(logging.KeyRemovalsConfirmed, rep.RemovalsConfirmed),
		slog.Int(logging.KeyRemovalsRefuted, rep.RemovalsRefuted),
		slog.Int(logging.KeyPublished, rep.Published),
		slog.Int(logging.KeyRequests, rep.Requests),
		slog.Int(logging.KeyNotModified, rep.NotModified),
		slog.Int(logging.KeyRateLimitSpent, rep.RateLimitSpent),
		slog.Any(logging.KeyRateLimitRemaining, rep.RateLimitRemaining),
		slog.Int(logging.KeyFailures, len(rep.Failures)),
	}
	if len(rep.Failures) > 0 {
		a = append(a, slog.Any(logging.KeyFailed, rep.Failures))
	}
	if len(rep.FeaturesOff) > 0 {
		a = append(a, slog.Any(logging.KeyFeaturesOff, rep.FeaturesOff))
	}
	if len(rep.Skipped) > 0 {
		a = append(a, slog.Any(logging.KeySkipped, rep.Skipped))
	}
	if rep.Deliveries != nil {
		a = append(a, slog.Any(logging.KeyDeliveries, rep.Deliveries))
	}
	return a
}

// RequestCounter is an http.RoundTripper that counts the requests it
// carries and their 304 answers, for the run report. Give it to
// ghclient.Config.Transport (wrapping the real base transport).
type RequestCounter struct {
	next        http.RoundTripper
	requests    atomic.Int64
	notModified atomic.Int64
}

// NewRequestCounter counts the requests sent through next.
func NewRequestCounter(next http.RoundTripper) *RequestCounter {
	return &RequestCounter{next: next}
}

// RoundTrip sends req through the wrapped transport and counts it.
func (c *RequestCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	c.requests.Add(1)
	resp, err := c.next.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusNotModified {
		c.notModified.Add(1)
	}
	return resp, err
}

// Counts returns the requests and 304 answers counted so far.
func (c *RequestCounter) Counts() (requests, notModified int64) {
	if c == nil {
		return 0, 0
	}
	return c.requests.Load(), c.notModified.Load()
}

// runState is one run in progress: its counters and report.
type runState struct {
	r     *Reconciler
	mode  string
	start time.Time
	// receivedAt dates every event of the run (header Ghas-Received-At).
	receivedAt time.Time
	// startRev is the last revision of ghas_findings when a full pull
	// began, before any repository was listed.
	startRev                            uint64
	requestsAtStart, notModifiedAtStart int64

	alertsSeen, pages, pagesNM, published, dups atomic.Int64
	newN, changedN, removedN, staleN            atomic.Int64
	removalsConfirmed, removalsRefuted          atomic.Int64

	mu        sync.Mutex
	rep       Report
	offScopes map[string]bool
	instIDs   []int64
	deliv     *DeliveryReport
}

func (r *Reconciler) newRun(mode string) *runState {
	now := r.cfg.Now()
	rs := &runState{r: r, mode: mode, start: now, receivedAt: now.UTC().Truncate(time.Second)}
	rs.requestsAtStart, rs.notModifiedAtStart = r.counter.Counts()
	rs.rep.Mode = mode
	rs.rep.StartedAt = now.UTC()
	return rs
}

func (rs *runState) fail(scope string, err error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.rep.Failures = append(rs.rep.Failures, Failure{Scope: scope, Error: err.Error()})
}

// featureOff records a scope refused because a feature is off, once per
// scope (every removal check of a scope may meet it).
func (rs *runState) featureOff(scope string, err error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.offScopes[scope] {
		return
	}
	if rs.offScopes == nil {
		rs.offScopes = map[string]bool{}
	}
	rs.offScopes[scope] = true
	rs.rep.FeaturesOff = append(rs.rep.FeaturesOff, scope+": "+err.Error())
}

func (rs *runState) skip(what string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.rep.Skipped = append(rs.rep.Skipped, what)
}

func (rs *runState) update(f func(rep *Report)) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	f(&rs.rep)
}

// drift counts one correction.
func (rs *runState) drift(kind string) {
	switch kind {
	case "new":
		rs.newN.Add(1)
	case "changed":
		rs.changedN.Add(1)
	case "removed":
		rs.removedN.Add(1)
	case "stale":
		rs.staleN.Add(1)
		return
	}
	rs.r.metrics.Drift.Inc(kind)
}

// progress logs the counters every ProgressEvery until the returned stop.
func (rs *runState) progress(ctx context.Context) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(rs.r.cfg.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-done:
				return
			case <-t.C:
				req, nm := rs.r.counter.Counts()
				rs.r.logger.Info("reconcile run in progress",
					slog.String(logging.KeyMode, rs.mode),
					slog.Duration(logging.KeyElapsed, rs.r.cfg.Now().Sub(rs.start).Round(time.Second)),
					slog.Int64(logging.KeyPages, rs.pages.Load()),
					slog.Int64(logging.KeyAlertsSeen, rs.alertsSeen.Load()),
					slog.Int64(logging.KeyDriftNew, rs.newN.Load()),
					slog.Int64(logging.KeyDriftChanged, rs.changedN.Load()),
					slog.Int64(logging.KeyDriftRemoved, rs.removedN.Load()),
					slog.Int64(logging.KeyRequests, req-rs.requestsAtStart),
					slog.Int64(logging.KeyNotModified, nm-rs.notModifiedAtStart))
			}
		}
	}()
	return sync.OnceFunc(func() { close(done); wg.Wait() })
}

// finish fills the report's totals.
func (rs *runState) finish() *Report {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rep := rs.rep
	now := rs.r.cfg.Now()
	rep.FinishedAt = now.UTC()
	rep.DurationSeconds = now.Sub(rs.start).Seconds()
	rep.AlertsSeen = int(rs.alertsSeen.Load())
	rep.Pages = int(rs.pages.Load())
	rep.PagesNotModified = int(rs.pagesNM.Load())
	rep.Published = int(rs.published.Load())
	rep.DuplicatesDropped = int(rs.dups.Load())
	rep.RemovalsConfirmed = int(rs.removalsConfirmed.Load())
	rep.RemovalsRefuted = int(rs.removalsRefuted.Load())
	rep.Drift = Drift{New: int(rs.newN.Load()), Changed: int(rs.changedN.Load()), Removed: int(rs.removedN.Load()), Stale: int(rs.staleN.Load())}
	req, nm := rs.r.counter.Counts()
	rep.Requests, rep.NotModified = int(req-rs.requestsAtStart), int(nm-rs.notModifiedAtStart)
	rep.RateLimitSpent = rep.Requests - rep.NotModified
	rep.Deliveries = rs.deliv
	ids := append([]int64{0}, rs.instIDs...)
	for _, id := range ids {
		if rl, ok := rs.r.gh.RateLimit(id); ok {
			if rep.RateLimitRemaining == nil {
				rep.RateLimitRemaining = map[string]int{}
			}
			name := strconv.FormatInt(id, 10)
			if id == 0 {
				name = "app"
			}
			rep.RateLimitRemaining[name] = rl.Remaining
		}
	}
	slices.SortFunc(rep.Failures, func(a, b Failure) int {
		if a.Scope < b.Scope {
			return -1
		}
		if a.Scope > b.Scope {
			return 1
		}
		return 0
	})
	slices.Sort(rep.FeaturesOff)
	return &rep
}
