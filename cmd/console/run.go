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
	"runtime/debug"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/admin"
	"github.com/ghas-relay/ghas-relay/internal/config"
	"github.com/ghas-relay/ghas-relay/internal/console"
	"github.com/ghas-relay/ghas-relay/internal/console/index"
	"github.com/ghas-relay/ghas-relay/internal/console/posture"
	"github.com/ghas-relay/ghas-relay/internal/group"
	"github.com/ghas-relay/ghas-relay/internal/logging"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/tokens"
)

// drainTimeout bounds nc.Drain at shutdown.
const drainTimeout = 10 * time.Second

// defaultGCPercent is the console's GOGC unless the environment sets one.
const defaultGCPercent = 50

type consoleConfig struct {
	config.Common
	Addr       string
	TokensText string
	// Tokens are TokensText read: named tokens, any of which opens the
	// console.
	Tokens tokens.Set
}

func parseConfig(args []string, getenv func(string) string, out io.Writer) (consoleConfig, error) {
	var c consoleConfig
	s := config.New("console", getenv, out)
	c.RegisterCommon(s, ":9093")
	s.String(&c.Addr, "CONSOLE_ADDR", "127.0.0.1:8090", "listener of the console's pages and /api; without tokens only a loopback address is accepted")
	s.Secret(&c.TokensText, "CONSOLE_TOKENS", "CONSOLE_TOKENS_FILE", "console tokens (a bearer token or the password of HTTP Basic authentication): comma-separated, or in the file one a line as <name> <token>; none: the console is open and listens on a loopback address only")
	if len(args) > 0 {
		args = args[1:]
	}
	if err := s.Parse(args); err != nil {
		return c, err
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	if err := config.Required("CONSOLE_ADDR", c.Addr); err != nil {
		return c, err
	}
	var err error
	// The environment holds the comma form; a file may hold either.
	if c.Tokens, err = tokens.Parse(c.TokensText, getenv("CONSOLE_TOKENS") == ""); err != nil {
		return c, &config.Error{Setting: "CONSOLE_TOKENS_FILE", Msg: err.Error()}
	}
	if c.Tokens.Len() == 0 {
		if err := console.ListenAllowed(c.Addr); err != nil {
			return c, &config.Error{Setting: "CONSOLE_ADDR", Msg: err.Error()}
		}
	}
	return c, nil
}

// run is the console: args[0] is the program name. It returns when ctx
// ends or SIGINT/SIGTERM arrives, after every component stopped.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	defer func() {
		if err != nil {
			printError(stderr, "console", err)
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
	logger, err := cfg.Logger(stderr, "console")
	if err != nil {
		return err
	}
	if getenv("GOGC") == "" {
		// Most of the heap is the index, which lives as long as the
		// process; what comes and goes are the messages it reads. Half the
		// default growth keeps the heap near 1.5 times the index (a
		// million findings: under 512 MiB) for a little more GC work.
		debug.SetGCPercent(defaultGCPercent)
	}

	nc, err := stream.Connect(logger, cfg.NATS("console"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	ix := index.New()
	reader := index.NewReader(logger, ix, js)
	reg := metrics.NewRegistry()
	cm := console.NewMetrics(reg, ix, reader)
	posture.Register(reg, ix)
	h, err := console.Handler(logger, ix, console.NewStore(js), cfg.Tokens, cm, time.Now)
	if err != nil {
		return err
	}
	srv, err := group.Listen(logger, "console", cfg.Addr, &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		// A long list of changes takes a while to write.
		WriteTimeout: 60 * time.Second,
		IdleTimeout:  60 * time.Second,
	}, 5*time.Second)
	if err != nil {
		return err
	}
	adm, err := admin.Listen(logger, cfg.AdminAddr, admin.Handler(reg, func(ctx context.Context) error {
		if !ix.Ready() {
			return errors.New("starting: loading the findings and their history")
		}
		return stream.Check(ctx, nc, js)
	}))
	if err != nil {
		srv.Close()
		return err
	}

	work := func(ctx context.Context) error {
		layout := cfg.Layout()
		// The console reads; the setup step (processor -setup) makes the
		// layout, even where this user could.
		layout.CreateOnly, layout.LookOnly = true, true
		if err := stream.WaitEnsure(ctx, logger, js, layout); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		logger.Info("console reading findings", slog.String(logging.KeyAddr, srv.Addr().String()), slog.String(logging.KeyAuth, authMode(cfg.Tokens)))
		return reader.Run(ctx)
	}
	err = group.Run(ctx, adm.Serve, srv.Serve, work)

	stream.Drain(logger, nc, drainTimeout)
	logger.Info("console stopped")
	return err
}

// authMode says how the console is opened, for its start line.
func authMode(set tokens.Set) string {
	if set.Len() == 0 {
		return "none (loopback only)"
	}
	return fmt.Sprintf("%d token(s)", set.Len())
}
