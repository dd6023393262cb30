// Package reconcile owns the reconciler: the full pull with drift
// repair, the delta pull, the missed-delivery sweep, their schedule, and the
// run report. It reads GitHub through ghclient as the App and each of its
// installations, compares every pulled alert with the finding stored in KV
// ghas_findings, and publishes only corrections — to ghas.reconcile.<event>
// (alerts that are missing or changed, and alerts a complete pull no longer
// lists, as action reconcile_removed) and to ghas.redelivery.<event>
// (webhook deliveries GitHub failed to deliver) — so the processor decides
// every finding on one code path.
//
// What it keeps in KV ghas_state:
//
//	etag.<sha256 of page URL>          ETag, next link, alert keys and newest updated_at of a listing page
//	watermark.<inst>.<kind>[.<repo>]   newest updated_at a complete pull or delta saw (RFC 3339)
//	redeliver.checkpoint               newest hook delivery examined by a complete sweep
//	report.<mode>.latest               the last run report of each mode (JSON)
//	report.<mode>.ok                   the last run report of each mode without failures
//
// Every publish waits for JetStream's ack before the page's ETag, a
// watermark or the checkpoint is stored, so a crash never loses data: the
// next run fetches again what was not acknowledged. A scope (an organisation
// and alert kind, or a repository and alert kind) whose listing failed,
// was cut short or was refused never has findings marked REMOVED, and a
// finding a complete listing no longer holds is marked REMOVED only after
// GitHub answered 404 to a GET of that one alert (pages shift when alerts
// are deleted during a walk, so a listing can skip one that still exists).
package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/ghclient"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	inscope "github.com/ghas-relay/ghas-relay/internal/scope"
	findingsState "github.com/ghas-relay/ghas-relay/internal/state"
	"github.com/ghas-relay/ghas-relay/internal/transform"
)

// Modes of a run (RECONCILE_MODE).
const (
	ModeFull      = "full"
	ModeDelta     = "delta"
	ModeRedeliver = "redeliver"
	// ModeDaemon schedules the three others; with -once it is one pass of
	// each: redeliver, delta, full.
	ModeDaemon = "daemon"
)

// Modes returns every valid RECONCILE_MODE.
func Modes() []string { return []string{ModeFull, ModeDelta, ModeRedeliver, ModeDaemon} }

// Strategies of the full and delta pulls.
const (
	// StrategyAuto lists organisation installations through the
	// organisation endpoints (about alerts/100 requests) and falls back to
	// the repository endpoints where GitHub refuses them.
	StrategyAuto = "auto"
	// StrategyPerRepo lists every repository on its own, as a naive full
	// pull does: at least one request per repository and kind.
	StrategyPerRepo = "per-repo"
)

// ErrRunFailed is wrapped by the error of a run in which an installation,
// repository or organisation listing failed; the report names them.
var ErrRunFailed = errors.New("reconcile run had failures")

// GitHub is the part of *ghclient.App the reconciler uses.
type GitHub interface {
	Installations(ctx context.Context) ([]ghclient.Installation, error)
	Repositories(ctx context.Context, installationID int64) ([]ghclient.Repository, error)
	ListAlerts(ctx context.Context, installationID int64, r ghclient.ListRequest, visit func(ghclient.Page) (bool, error)) error
	GetAlert(ctx context.Context, installationID int64, kind ghclient.Kind, owner, repo string, number int64) (json.RawMessage, error)
	ListHookDeliveries(ctx context.Context, visit func([]ghclient.HookDelivery) (bool, error)) error
	GetHookDelivery(ctx context.Context, id int64) (ghclient.HookDeliveryDetail, error)
	RateLimit(installationID int64) (ghclient.RateLimit, bool)
}

// MapSource gives the transformation maps in use; transform.Watcher is one.
type MapSource interface {
	Current() *transform.Maps
}

// Config tunes a Reconciler. The zero value is the production default.
type Config struct {
	// Strategy is StrategyAuto (default) or StrategyPerRepo.
	Strategy string
	// Listings is how many alert listings of one installation run at once;
	// default 8 (ghclient's default in-flight cap per installation).
	Listings int
	// Installations is how many installations are pulled at once; default 4.
	Installations int
	// PageWorkers is how many alerts of one page are compared and published
	// at once; default 8.
	PageWorkers int
	// ProgressEvery is the interval of progress logs during a run; default 30s.
	ProgressEvery time.Duration
	// DeliveryWindow is how far back the sweep looks when it has no
	// checkpoint, and never further: GitHub keeps deliveries for 3 days.
	DeliveryWindow time.Duration
	// PublishTimeout bounds the wait for one JetStream ack; default 10s.
	PublishTimeout time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Scope decides which findings are kept and gives assets their
	// ownership and tags (scope.go); nil keeps everything.
	Scope *inscope.Filter
}

func (c Config) withDefaults() Config {
	if c.Strategy == "" {
		c.Strategy = StrategyAuto
	}
	if c.Listings <= 0 {
		c.Listings = 8
	}
	if c.Installations <= 0 {
		c.Installations = 4
	}
	if c.PageWorkers <= 0 {
		c.PageWorkers = 8
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = 30 * time.Second
	}
	if c.DeliveryWindow <= 0 {
		c.DeliveryWindow = 72 * time.Hour
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Metrics are the reconciler's metrics (docs/contract.md lists them).
type Metrics struct {
	// Requests is ghas_reconciler_requests_total{endpoint,status}; pass it
	// as ghclient.Config.Requests.
	Requests *metrics.CounterVec
	// Drift is ghas_reconciler_drift_total{kind}: new, changed, removed.
	Drift *metrics.CounterVec
	// Runs is ghas_reconciler_runs_total{mode,result}: ok or failed.
	Runs *metrics.CounterVec
	// Published counts events published, by subject kind (reconcile, redelivery).
	Published *metrics.CounterVec
}

// NewMetrics registers the reconciler's metrics on reg.
func NewMetrics(reg *metrics.Registry) *Metrics {
	return &Metrics{
		Requests:  reg.NewCounterVec("ghas_reconciler_requests_total", "GitHub REST requests of the reconciler, by endpoint template and status.", "endpoint", "status"),
		Drift:     reg.NewCounterVec("ghas_reconciler_drift_total", "Findings the reconciler corrected, by kind of drift (new, changed, removed).", "kind"),
		Runs:      reg.NewCounterVec("ghas_reconciler_runs_total", "Reconciler runs, by mode and result (ok, failed).", "mode", "result"),
		Published: reg.NewCounterVec("ghas_reconciler_published_total", "Events the reconciler published on GHAS_EVENTS, by origin (reconcile, redelivery).", "origin"),
	}
}

// Reconciler runs full pulls, delta pulls and missed-delivery sweeps. A
// pull waits for the pull in progress and a sweep for the sweep in
// progress; a sweep runs while a pull does.
type Reconciler struct {
	logger  *slog.Logger
	gh      GitHub
	js      jetstream.JetStream
	store   *findingsState.Store
	state   jetstream.KeyValue
	maps    MapSource
	counter *RequestCounter
	metrics *Metrics
	cfg     Config

	// pullMu serialises full and delta pulls, sweepMu the sweeps: a
	// sweep never waits behind a pull.
	pullMu, sweepMu sync.Mutex
}

// New returns a Reconciler reading GitHub through gh, the stored findings
// from findings (ghas_findings) and keeping its own state in state
// (ghas_state). counter may be nil (the report then shows no request counts).
func New(logger *slog.Logger, gh GitHub, js jetstream.JetStream, findings, state jetstream.KeyValue, maps MapSource, counter *RequestCounter, m *Metrics, cfg Config) *Reconciler {
	return &Reconciler{
		logger:  logger,
		gh:      gh,
		js:      js,
		store:   findingsState.New(js, findings, 0),
		state:   state,
		maps:    maps,
		counter: counter,
		metrics: m,
		cfg:     cfg.withDefaults(),
	}
}

// Run runs one mode (full, delta or redeliver) to the end and returns its
// report, which is also logged and stored in ghas_state. The error wraps
// ErrRunFailed when something failed (the report says what), or is the
// reason the run could not be recorded.
func (r *Reconciler) Run(ctx context.Context, mode string) (*Report, error) {
	mu := &r.pullMu
	if mode == ModeRedeliver {
		mu = &r.sweepMu
	}
	mu.Lock()
	defer mu.Unlock()
	rs := r.newRun(mode)
	stopProgress := rs.progress(ctx)
	switch mode {
	case ModeFull:
		rs.pull(ctx, true)
	case ModeDelta:
		rs.pull(ctx, false)
	case ModeRedeliver:
		rs.redeliver(ctx)
	default:
		stopProgress()
		return nil, fmt.Errorf("reconcile: unknown mode %q", mode)
	}
	stopProgress()
	rep := rs.finish()
	level := slog.LevelInfo
	result := "ok"
	if len(rep.Failures) > 0 {
		level, result = slog.LevelWarn, "failed"
	}
	r.metrics.Runs.Inc(mode, result)
	r.logger.Log(ctx, level, "reconcile run finished", rep.attrs()...)
	var err error
	if serr := r.storeReport(context.WithoutCancel(ctx), ReportKey(mode), rep); serr != nil {
		err = serr
	} else if len(rep.Failures) == 0 && ctx.Err() == nil {
		// A run cut short by ctx may list no failure; it is no success.
		if serr := r.storeReport(context.WithoutCancel(ctx), SuccessKey(mode), rep); serr != nil {
			err = serr
		}
	}
	if len(rep.Failures) > 0 {
		err = errors.Join(fmt.Errorf("%s: %w (%d failures, first: %s: %s)", mode, ErrRunFailed, len(rep.Failures), rep.Failures[0].Scope, rep.Failures[0].Error), err)
	}
	return rep, err
}

// Once runs mode once; ModeDaemon means one pass of each: redeliver, delta,
// full. It returns the reports and the joined errors of the runs.
func (r *Reconciler) Once(ctx context.Context, mode string) ([]*Report, error) {
	modes := []string{mode}
	if mode == ModeDaemon {
		modes = []string{ModeRedeliver, ModeDelta, ModeFull}
	}
	var reports []*Report
	var errs []error
	for _, m := range modes {
		if ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m, ctx.Err()))
			break
		}
		rep, err := r.Run(ctx, m)
		if rep != nil {
			reports = append(reports, rep)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return reports, errors.Join(errs...)
}

// storeReport writes the report under key.
func (r *Reconciler) storeReport(ctx context.Context, key string, rep *Report) error {
	b, err := json.Marshal(rep)
	if err != nil {
		return fmt.Errorf("store report: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
	defer cancel()
	if _, err := r.state.Put(ctx, key, b); err != nil {
		return fmt.Errorf("store report %s: %w", key, err)
	}
	return nil
}

// ReportKey is the ghas_state key of the latest report of a mode.
func ReportKey(mode string) string { return "report." + mode + ".latest" }

// SuccessKey is the ghas_state key of the report of the latest run of a
// mode that ended without failures and was not cut short.
func SuccessKey(mode string) string { return "report." + mode + ".ok" }

// NeedsFullPull reports whether ghas_state holds no report of a
// successful full pull: a fresh deployment, or NATS data lost. The
// daemon then runs one at start instead of waiting for RECONCILE_FULL_AT.
// A latest full report without failures counts too (written before
// SuccessKey existed).
func (r *Reconciler) NeedsFullPull(ctx context.Context) (bool, error) {
	for _, key := range []string{SuccessKey(ModeFull), ReportKey(ModeFull)} {
		e, err := r.state.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return true, fmt.Errorf("read %s: %w", key, err)
		}
		var rep Report
		if err := json.Unmarshal(e.Value(), &rep); err != nil {
			continue // unreadable: as good as none
		}
		if len(rep.Failures) == 0 {
			return false, nil
		}
	}
	return true, nil
}

// LatestReport reads the latest stored report of a mode.
func LatestReport(ctx context.Context, state jetstream.KeyValue, mode string) (*Report, error) {
	e, err := state.Get(ctx, ReportKey(mode))
	if err != nil {
		return nil, fmt.Errorf("read report %s: %w", mode, err)
	}
	var rep Report
	if err := json.Unmarshal(e.Value(), &rep); err != nil {
		return nil, fmt.Errorf("read report %s: %w", mode, err)
	}
	return &rep, nil
}
