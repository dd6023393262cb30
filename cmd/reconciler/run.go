package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/admin"
	"github.com/ghas-relay/ghas-relay/internal/config"
	"github.com/ghas-relay/ghas-relay/internal/ghclient"
	"github.com/ghas-relay/ghas-relay/internal/group"
	"github.com/ghas-relay/ghas-relay/internal/lease"
	"github.com/ghas-relay/ghas-relay/internal/logging"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/reconcile"
	"github.com/ghas-relay/ghas-relay/internal/scope"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/transform"
)

// drainTimeout bounds nc.Drain at shutdown.
const drainTimeout = 10 * time.Second

// leaseKey is the ghas_state key of the reconciler's lease: the one
// instance that holds it works, the others wait (internal/lease).
const leaseKey = "lease.reconciler"

// minLeaseTTL keeps renewals (every TTL/3) from flooding NATS.
const minLeaseTTL = 100 * time.Millisecond

type reconcilerConfig struct {
	config.Common
	GitHub      ghclient.Settings
	App         ghclient.Config
	Mode        string
	FullAt      time.Duration
	DeltaEvery  time.Duration
	Redeliver   time.Duration
	Strategy    string
	MaxInFlight int64
	LeaseTTL    time.Duration
	Once        bool
	Scope       *scope.Filter
}

func parseConfig(args []string, getenv func(string) string, out io.Writer) (reconcilerConfig, error) {
	var c reconcilerConfig
	var fullAt string
	s := config.New("reconciler", getenv, out)
	c.RegisterCommon(s, ":9092")
	c.GitHub.Register(s)
	s.String(&c.Mode, "RECONCILE_MODE", reconcile.ModeDaemon, "full, delta, redeliver, or daemon (schedules all three; with -once one pass of each)")
	s.String(&fullAt, "RECONCILE_FULL_AT", "02:00", "daily time (UTC, HH:MM) of the full pull in daemon mode")
	s.Duration(&c.DeltaEvery, "RECONCILE_DELTA_EVERY", time.Hour, "delta pull interval in daemon mode")
	s.Duration(&c.Redeliver, "REDELIVER_EVERY", 10*time.Minute, "missed-delivery sweep interval in daemon mode")
	s.String(&c.Strategy, "RECONCILE_STRATEGY", reconcile.StrategyAuto, "auto (organisation endpoints where allowed) or per-repo (one listing per repository, as a naive pull)")
	s.Int(&c.MaxInFlight, "GITHUB_MAX_IN_FLIGHT", 8, "GitHub requests in flight per installation")
	s.Duration(&c.LeaseTTL, "RECONCILE_LEASE_TTL", 30*time.Second, "the reconciler lease's time to live: one instance holds it and works, renewing it every third of it; another takes over a dead holder within two (-once waits two for it)")
	scopeFilter := scope.Flags(s)
	s.Bool(&c.Once, "once", false, "run RECONCILE_MODE once and exit: 0 on success, 1 if an installation or repository failed")
	if len(args) > 0 {
		args = args[1:]
	}
	if err := s.Parse(args); err != nil {
		return c, err
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	app, err := c.GitHub.Config("(the reconciler reads GitHub as the App)")
	if err != nil {
		return c, err
	}
	if c.Scope, err = scopeFilter(); err != nil {
		return c, err
	}
	c.App = app
	if err := config.OneOf("RECONCILE_MODE", c.Mode, reconcile.Modes()...); err != nil {
		return c, err
	}
	if c.FullAt, err = reconcile.ParseTimeOfDay(fullAt); err != nil {
		return c, &config.Error{Setting: "RECONCILE_FULL_AT", Msg: err.Error()}
	}
	if c.DeltaEvery <= 0 {
		return c, &config.Error{Setting: "RECONCILE_DELTA_EVERY", Msg: "must be positive"}
	}
	if c.Redeliver <= 0 {
		return c, &config.Error{Setting: "REDELIVER_EVERY", Msg: "must be positive"}
	}
	if err := config.OneOf("RECONCILE_STRATEGY", c.Strategy, reconcile.StrategyAuto, reconcile.StrategyPerRepo); err != nil {
		return c, err
	}
	if c.LeaseTTL < minLeaseTTL {
		return c, &config.Error{Setting: "RECONCILE_LEASE_TTL", Msg: fmt.Sprintf("%s is below %s", c.LeaseTTL, minLeaseTTL)}
	}
	if c.MaxInFlight < 1 || c.MaxInFlight > 100 {
		return c, &config.Error{Setting: "GITHUB_MAX_IN_FLIGHT", Msg: fmt.Sprintf("%d is not between 1 and 100", c.MaxInFlight)}
	}
	return c, nil
}

// run is the reconciler: args[0] is the program name. It returns when the
// -once run ends, or when ctx ends or SIGINT/SIGTERM arrives, after every
// component stopped.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	defer func() {
		if err != nil {
			printError(stderr, "reconciler", err)
		}
	}()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	cfg, err := parseConfig(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	logger, err := cfg.Logger(stderr, "reconciler")
	if err != nil {
		return err
	}

	reg := metrics.NewRegistry()
	rm := reconcile.NewMetrics(reg)
	leaseHeld := reg.NewGauge("ghas_reconciler_lease_held", "1 while this instance holds the reconciler lease and works, else 0")
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.ResponseHeaderTimeout = time.Minute
	base.MaxIdleConnsPerHost = 64
	counter := reconcile.NewRequestCounter(base)
	appCfg := cfg.App
	appCfg.Transport = counter
	appCfg.MaxInFlight = int(cfg.MaxInFlight)
	appCfg.Requests = rm.Requests
	app, err := ghclient.New(logger, appCfg)
	if err != nil {
		return err // a *config.Error naming the setting that is wrong
	}

	nc, err := stream.Connect(logger, cfg.NATS("reconciler"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	ready := make(chan struct{})
	adm, err := admin.Listen(logger, cfg.AdminAddr, admin.Handler(reg, func(ctx context.Context) error {
		select {
		case <-ready:
		default:
			return errors.New("starting: nats layout or maps not loaded")
		}
		return stream.Check(ctx, nc, js)
	}))
	if err != nil {
		return err
	}

	work := func(ctx context.Context) error {
		layout := cfg.Layout()
		layout.CreateOnly = true // the setup step (without authorization: the processor) changes the layout
		if err := stream.WaitEnsure(ctx, logger, js, layout); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		buckets := map[string]jetstream.KeyValue{}
		for _, name := range []string{stream.FindingsBucket, stream.StateBucket, stream.MapsBucket} {
			kv, err := js.KeyValue(ctx, name)
			if err != nil {
				return fmt.Errorf("bucket %s: %w", name, err)
			}
			buckets[name] = kv
		}
		// Drift is decided with the maps the processors use. The processor
		// owns and seeds them (the reconciler's NATS user may not write
		// ghas_maps); until it has, the watcher holds the embedded defaults,
		// which are what it seeds.
		watcher := transform.NewWatcher(logger, buckets[stream.MapsBucket])
		watcher.Register(reg) // ghas_maps_rejected_total
		watcher.RewatchOn(nc.StatusChanged(nats.CONNECTED))
		rec := reconcile.New(logger, app, js, buckets[stream.FindingsBucket], buckets[stream.StateBucket], watcher, counter, rm, reconcile.Config{Strategy: cfg.Strategy, Scope: cfg.Scope})
		lse := lease.New(logger, buckets[stream.StateBucket], lease.Config{Key: leaseKey, Holder: lease.Holder(), TTL: cfg.LeaseTTL,
			Held: func(held bool) {
				v := 0.0
				if held {
					v = 1
				}
				leaseHeld.Set(v)
			}})
		return group.Run(ctx, watcher.Run, func(ctx context.Context) error {
			if err := watcher.WaitReady(ctx); err != nil {
				return nil // stopping before the maps loaded
			}
			close(ready)
			logger.Info("reconciler ready", slog.String(logging.KeyMode, cfg.Mode), slog.Bool(logging.KeyOnce, cfg.Once))
			if !cfg.Once {
				// Only the lease's holder works; a lost lease ends the
				// run's context at once and the instance waits again.
				return lse.Run(ctx, func(ctx context.Context) error {
					if cfg.Mode == reconcile.ModeDaemon {
						return rec.Daemon(ctx, reconcile.Schedule{FullAt: cfg.FullAt, DeltaEvery: cfg.DeltaEvery, RedeliverEvery: cfg.Redeliver})
					}
					return repeat(ctx, logger, rec, cfg)
				})
			}
			// -once waits two TTLs for the lease: long enough to take it
			// over from a holder that died, so a holder still there after
			// that is alive (a daemon, or another -once run) and this run
			// fails naming it rather than waiting for as long as it works.
			err := lse.Once(ctx, 2*cfg.LeaseTTL, func(ctx context.Context) error {
				_, err := rec.Once(ctx, cfg.Mode)
				return err
			})
			if err == nil {
				return errOnceDone
			}
			return err
		})
	}
	err = group.Run(ctx, adm.Serve, work)
	if errors.Is(err, errOnceDone) {
		err = nil
	}

	stream.Drain(logger, nc, drainTimeout)
	logger.Info("reconciler stopped")
	return err
}

// errOnceDone ends the components after a successful -once run.
var errOnceDone = errors.New("once: done")

// repeat runs a single mode (full, delta or redeliver) without -once on
// its own schedule: a full pull daily at RECONCILE_FULL_AT (and at start
// when ghas_state holds no successful one, as the daemon does), a delta
// pull every RECONCILE_DELTA_EVERY, a sweep every REDELIVER_EVERY.
func repeat(ctx context.Context, logger *slog.Logger, rec *reconcile.Reconciler, cfg reconcilerConfig) error {
	if cfg.Mode == reconcile.ModeFull {
		need, err := rec.NeedsFullPull(ctx)
		if err != nil {
			logger.Warn("cannot tell whether a full pull succeeded before; pulling in full at start", logging.Err(err))
		}
		if need {
			logger.Info("no successful full pull recorded in " + stream.StateBucket + "; full pull at start")
			if _, err := rec.Run(ctx, cfg.Mode); err != nil && ctx.Err() == nil {
				logger.Warn("reconcile run failed; the schedule goes on", logging.Err(err))
			}
		}
	}
	for {
		var next time.Time
		switch cfg.Mode {
		case reconcile.ModeFull:
			next = reconcile.NextDaily(time.Now(), cfg.FullAt)
		default:
			if _, err := rec.Run(ctx, cfg.Mode); err != nil && ctx.Err() == nil {
				logger.Warn("reconcile run failed; the schedule goes on", logging.Err(err))
			}
			every := cfg.DeltaEvery
			if cfg.Mode == reconcile.ModeRedeliver {
				every = cfg.Redeliver
			}
			next = time.Now().Add(every)
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		if cfg.Mode == reconcile.ModeFull {
			if _, err := rec.Run(ctx, cfg.Mode); err != nil && ctx.Err() == nil {
				logger.Warn("reconcile run failed; the schedule goes on", logging.Err(err))
			}
		}
	}
}
