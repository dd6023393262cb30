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
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/admin"
	"github.com/ghas-relay/ghas-relay/internal/config"
	"github.com/ghas-relay/ghas-relay/internal/ghclient"
	"github.com/ghas-relay/ghas-relay/internal/group"
	"github.com/ghas-relay/ghas-relay/internal/logging"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/processor"
	"github.com/ghas-relay/ghas-relay/internal/scope"
	"github.com/ghas-relay/ghas-relay/internal/sink"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/transform"
)

const drainTimeout = 10 * time.Second

type processorConfig struct {
	config.Common
	GitHub     ghclient.Settings
	App        ghclient.Config // valid when Enrich is not never or App credentials are given
	Enrich     string
	SinkURL    string
	SinkToken  string
	SinkFormat string
	Workers    int64
	MaxDeliver int64
	Scope      *scope.Filter
	Setup      bool // -setup: create or update the NATS layout and exit (setup.go)
	// WriteBack: decisions update GitHub's alerts (WRITE_BACK), at most
	// one update per WriteInterval (WRITE_BACK_INTERVAL).
	WriteBack     bool
	WriteInterval time.Duration
}

func parseConfig(args []string, getenv func(string) string, out io.Writer) (processorConfig, error) {
	var c processorConfig
	s := config.New("processor", getenv, out)
	c.RegisterCommon(s, ":9091")
	c.GitHub.Register(s)
	s.String(&c.Enrich, "ENRICH", "", "re-fetch code scanning alerts from REST: auto, always or never (default auto with App credentials, else never)")
	s.String(&c.SinkURL, "SINK_URL", "", "optional HTTP sink that receives every finding change; empty disables forwarding")
	s.Secret(&c.SinkToken, "SINK_TOKEN", "SINK_TOKEN_FILE", "the sink's bearer token")
	s.String(&c.SinkFormat, "SINK_FORMAT", sink.FormatDocument, "what the sink receives: document (the finding document) or ocsf (an OCSF 1.6.0 event per finding revision)")
	s.Int(&c.Workers, "PROCESSOR_WORKERS", 32, "events processed at once by this instance")
	s.Int(&c.MaxDeliver, "PROCESSOR_MAX_DELIVER", 10, "attempts before an event that keeps failing goes to GHAS_DLQ")
	writeBack := ""
	s.String(&writeBack, "WRITE_BACK", "false", "true: decisions (POST /decisions) update GitHub's alerts, with the App's write permissions; false: they fail on GitHub's alerts and change imported findings only")
	s.Duration(&c.WriteInterval, "WRITE_BACK_INTERVAL", processor.DefaultWriteInterval, "least time between two alert updates of this processor (GitHub's secondary rate limits: about 80 content-changing requests a minute); 0: no pace")
	scopeFilter := scope.Flags(s)
	s.Bool(&c.Setup, "setup", false, "create or update the NATS streams and buckets (as the setup identity, NATS user setup of deploy/nats), print what changed and exit; reads only the NATS and stream settings")
	if len(args) > 0 {
		args = args[1:]
	}
	if err := s.Parse(args); err != nil {
		return c, err
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	if c.Setup {
		return c, nil // the GitHub and sink settings are not used
	}
	var err error
	if c.Scope, err = scopeFilter(); err != nil {
		return c, err
	}
	if c.WriteBack, err = strconv.ParseBool(writeBack); err != nil {
		return c, &config.Error{Setting: "WRITE_BACK", Msg: fmt.Sprintf("%q is neither true nor false", writeBack)}
	}
	if c.WriteInterval < 0 {
		return c, &config.Error{Setting: "WRITE_BACK_INTERVAL", Msg: "must not be negative"}
	}
	if c.Enrich == "" {
		c.Enrich = processor.EnrichNever
		if c.GitHub.Given() {
			c.Enrich = processor.EnrichAuto
		}
	}
	if err := config.OneOf("ENRICH", c.Enrich, processor.EnrichAuto, processor.EnrichAlways, processor.EnrichNever); err != nil {
		return c, err
	}
	if c.Enrich != processor.EnrichNever || c.GitHub.Given() || c.WriteBack {
		why := "when ENRICH is " + c.Enrich
		switch {
		case c.WriteBack:
			why = "when WRITE_BACK is true"
		case c.Enrich == processor.EnrichNever:
			why = "when App credentials are given (they resolve the repositories of imports)"
		}
		app, err := c.GitHub.Config(why)
		if err != nil {
			return c, err
		}
		c.App = app
	}
	if err := sink.CheckToken(c.SinkToken); err != nil {
		setting := "SINK_TOKEN_FILE"
		if getenv("SINK_TOKEN") != "" {
			setting = "SINK_TOKEN"
		}
		return c, &config.Error{Setting: setting, Msg: err.Error()}
	}
	if err := sink.CheckFormat(c.SinkFormat); err != nil {
		return c, &config.Error{Setting: "SINK_FORMAT", Msg: err.Error()}
	}
	if c.Workers < 1 || c.Workers > 1024 {
		return c, &config.Error{Setting: "PROCESSOR_WORKERS", Msg: fmt.Sprintf("%d is not between 1 and 1024", c.Workers)}
	}
	if c.MaxDeliver < 1 {
		return c, &config.Error{Setting: "PROCESSOR_MAX_DELIVER", Msg: fmt.Sprintf("%d is not positive", c.MaxDeliver)}
	}
	return c, nil
}

// run is the processor: args[0] is the program name. It returns when ctx
// ends or SIGINT/SIGTERM arrives, after every component stopped.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	defer func() {
		if err != nil {
			printError(stderr, "processor", err)
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
	logger, err := cfg.Logger(stderr, "processor")
	if err != nil {
		return err
	}
	if cfg.Setup {
		return setup(ctx, logger, cfg.Common, stdout)
	}

	reg := metrics.NewRegistry()
	var fetcher processor.AlertFetcher
	var repositories processor.RepositoryLister // import lookups, whatever ENRICH is
	var requests *metrics.CounterVec
	if cfg.Enrich != processor.EnrichNever || cfg.GitHub.Given() {
		appCfg := cfg.App
		// Enrichment must never hold an event for long: the reconciler corrects what it misses.
		appCfg.MaxRateLimitWait = 10 * time.Second
		appCfg.MaxRetryElapsed = 10 * time.Second
		requests = reg.NewCounterVec("ghas_processor_github_requests_total", "GitHub REST requests made for enrichment, import repository lookups and write-back, by endpoint and status.", "endpoint", "status")
		appCfg.Requests = requests
		app, err := ghclient.New(logger, appCfg)
		if err != nil {
			return err // a *config.Error naming the setting that is wrong
		}
		repositories = app
		if cfg.Enrich != processor.EnrichNever {
			fetcher = app
		}
	}
	var writer processor.AlertWriter
	if cfg.WriteBack {
		// Write-back keeps GitHub's retry bounds (GITHUB_MAX_ATTEMPTS,
		// GITHUB_RETRY_MAX_ELAPSED) and waits out rate limits: a decision
		// has its own consumer, and nothing waits behind it.
		wcfg := cfg.App
		wcfg.Requests = requests
		app, err := ghclient.New(logger, wcfg)
		if err != nil {
			return err
		}
		writer = app
	}

	nc, err := stream.Connect(logger, cfg.NATS("processor"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	// The finding state gets a connection of its own: the server reads each
	// connection in one goroutine, and one connection carrying every round
	// trip of the processor caps it at about one core.
	stateCfg := cfg.NATS("processor")
	stateCfg.Name += "-state"
	stateConn, err := stream.Connect(logger, stateCfg)
	if err != nil {
		return err
	}
	defer stateConn.Close()
	stateJS, err := jetstream.New(stateConn)
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

	pm := processor.NewMetrics(reg)
	var forwarder *sink.Forwarder
	if cfg.SinkURL != "" {
		forwarder, err = sink.New(logger, js, &http.Client{Timeout: 30 * time.Second}, reg, sink.Config{URL: cfg.SinkURL, Token: cfg.SinkToken, Format: cfg.SinkFormat})
		if err != nil {
			return &config.Error{Setting: "SINK_URL", Msg: err.Error()}
		}
	}

	work := func(ctx context.Context) error {
		if err := stream.WaitEnsure(ctx, logger, js, cfg.Layout()); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		kvFindings, err := stateJS.KeyValue(ctx, stream.FindingsBucket)
		if err != nil {
			return fmt.Errorf("bucket %s: %w", stream.FindingsBucket, err)
		}
		kvState, err := js.KeyValue(ctx, stream.StateBucket)
		if err != nil {
			return fmt.Errorf("bucket %s: %w", stream.StateBucket, err)
		}
		kvMaps, err := js.KeyValue(ctx, stream.MapsBucket)
		if err != nil {
			return fmt.Errorf("bucket %s: %w", stream.MapsBucket, err)
		}
		if err := transform.Seed(ctx, kvMaps); err != nil {
			return err
		}
		watcher := transform.NewWatcher(logger, kvMaps)
		watcher.Register(reg) // ghas_maps_rejected_total
		watcher.RewatchOn(nc.StatusChanged(nats.CONNECTED))
		var enricher processor.Enricher
		if fetcher != nil {
			enricher = processor.NewRESTEnricher(kvState, fetcher, cfg.Enrich, 10*time.Second)
		}
		proc := processor.New(logger, js, stateJS, kvFindings, watcher, enricher, pm, processor.Config{
			Workers:       int(cfg.Workers),
			MaxDeliver:    int(cfg.MaxDeliver),
			Scope:         cfg.Scope,
			Repositories:  repositories,
			WriteBack:     writer,
			WriteInterval: cfg.WriteInterval,
		})
		fns := []group.Func{
			watcher.Run,
			func(ctx context.Context) error {
				if err := watcher.WaitReady(ctx); err != nil {
					return nil // stopping before the maps loaded
				}
				close(ready)
				logger.Info("processor ready", slog.String(logging.KeyEnrich, cfg.Enrich), slog.Bool(logging.KeySink, forwarder != nil))
				return proc.Run(ctx)
			},
		}
		if forwarder != nil {
			fns = append(fns, forwarder.Run)
		}
		return group.Run(ctx, fns...)
	}
	err = group.Run(ctx, adm.Serve, work)

	stream.Drain(logger, stateConn, drainTimeout)
	stream.Drain(logger, nc, drainTimeout)
	logger.Info("processor stopped")
	return err
}
