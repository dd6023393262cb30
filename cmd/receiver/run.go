package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/admin"
	"github.com/ghas-relay/ghas-relay/internal/config"
	"github.com/ghas-relay/ghas-relay/internal/decisions"
	"github.com/ghas-relay/ghas-relay/internal/group"
	"github.com/ghas-relay/ghas-relay/internal/imports"
	"github.com/ghas-relay/ghas-relay/internal/logging"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/tokens"
	"github.com/ghas-relay/ghas-relay/internal/webhook"
)

// drainTimeout bounds nc.Drain at shutdown.
const drainTimeout = 10 * time.Second

type receiverConfig struct {
	config.Common
	ListenAddr   string
	Secret       string
	ImportTokens string
	// Tokens are ImportTokens read: named, each with its repositories.
	Tokens       tokens.Set
	MaxBodyBytes int64
	MaxInFlight  int64

	// DecisionTokens are DECISION_TOKENS read, like Tokens.
	DecisionTokens tokens.Set
}

func parseConfig(args []string, getenv func(string) string, out io.Writer) (receiverConfig, error) {
	var c receiverConfig
	s := config.New("receiver", getenv, out)
	c.RegisterCommon(s, ":9090")
	s.String(&c.ListenAddr, "LISTEN_ADDR", ":8080", "public webhook listener (POST /webhook)")
	s.Secret(&c.Secret, "GITHUB_WEBHOOK_SECRET", "GITHUB_WEBHOOK_SECRET_FILE", "the webhook secret(s), comma-separated during a rotation")
	s.Secret(&c.ImportTokens, "IMPORT_TOKENS", "IMPORT_TOKENS_FILE", "bearer tokens of POST /imports and GET /imports/{id}: comma-separated, or in the file one a line as <name> <token> [<repository glob> ...]; none: /imports answers 404")
	var decisionTokens string
	s.Secret(&decisionTokens, "DECISION_TOKENS", "DECISION_TOKENS_FILE", "bearer tokens of POST /decisions and GET /decisions/{id}, in the form of IMPORT_TOKENS; none: /decisions answers 404")
	s.Int(&c.MaxBodyBytes, "MAX_BODY_BYTES", 26214400, "largest accepted delivery body in bytes")
	s.Int(&c.MaxInFlight, "MAX_IN_FLIGHT", webhook.DefaultMaxInFlight, "webhook requests handled at once, counted from their body's first byte; more are answered 503 at once")
	if len(args) > 0 {
		args = args[1:]
	}
	if err := s.Parse(args); err != nil {
		return c, err
	}
	if err := c.Validate(); err != nil {
		return c, err
	}
	if err := config.Required("LISTEN_ADDR", c.ListenAddr); err != nil {
		return c, err
	}
	if len(webhook.ParseSecrets(c.Secret)) == 0 {
		return c, &config.Error{Setting: "GITHUB_WEBHOOK_SECRET", Msg: "required (or GITHUB_WEBHOOK_SECRET_FILE); the receiver refuses to start without a secret"}
	}
	// The environment holds the comma form; a file may hold either.
	var err error
	if c.Tokens, err = tokens.Parse(c.ImportTokens, getenv("IMPORT_TOKENS") == ""); err != nil {
		return c, &config.Error{Setting: "IMPORT_TOKENS_FILE", Msg: err.Error()}
	}
	if c.DecisionTokens, err = tokens.Parse(decisionTokens, getenv("DECISION_TOKENS") == ""); err != nil {
		return c, &config.Error{Setting: "DECISION_TOKENS_FILE", Msg: err.Error()}
	}
	if c.MaxBodyBytes <= 0 {
		return c, &config.Error{Setting: "MAX_BODY_BYTES", Msg: fmt.Sprintf("%d is not positive", c.MaxBodyBytes)}
	}
	if c.MaxInFlight < 1 || c.MaxInFlight > 1<<20 {
		return c, &config.Error{Setting: "MAX_IN_FLIGHT", Msg: fmt.Sprintf("%d is not between 1 and 1048576", c.MaxInFlight)}
	}
	return c, nil
}

// run is the receiver: args[0] is the program name. It returns when ctx
// ends or SIGINT/SIGTERM arrives, after every component stopped.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	defer func() {
		if err != nil {
			printError(stderr, "receiver", err)
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
	logger, err := cfg.Logger(stderr, "receiver")
	if err != nil {
		return err
	}

	nc, err := stream.Connect(logger, cfg.NATS("receiver"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	reg := metrics.NewRegistry()
	wm := webhook.NewMetrics(reg)
	handler := webhook.NewHandler(logger, js, wm, webhook.Options{
		Secrets:      webhook.ParseSecrets(cfg.Secret),
		MaxBodyBytes: cfg.MaxBodyBytes,
		MaxInFlight:  int(cfg.MaxInFlight),
	})
	public, err := webhook.Listen(logger, cfg.ListenAddr, decisions.Routes(imports.Routes(webhook.Routes(handler),
		imports.NewHandler(logger, js, imports.Options{Tokens: cfg.Tokens, MaxBodyBytes: cfg.MaxBodyBytes})),
		decisions.NewHandler(logger, js, decisions.Options{Tokens: cfg.DecisionTokens})), wm)
	if err != nil {
		return err
	}
	adm, err := admin.Listen(logger, cfg.AdminAddr, admin.Handler(reg, func(ctx context.Context) error {
		return stream.Check(ctx, nc, js)
	}))
	if err != nil {
		_ = public.Close()
		return err
	}

	// The layout is ensured beside the listeners (deliveries get 503 until
	// it is ready); it then waits with them, so that the first component
	// to fail, or the end of ctx, stops all three.
	ensure := func(ctx context.Context) error {
		layout := cfg.Layout()
		layout.CreateOnly = true // the setup step (without authorization: the processor) changes the layout
		if err := stream.WaitEnsure(ctx, logger, js, layout); err != nil {
			return err
		}
		logger.Info("nats layout ready")
		if mp := nc.MaxPayload(); mp < cfg.MaxBodyBytes {
			logger.Warn("nats max_payload is below MAX_BODY_BYTES: larger deliveries get 503",
				slog.Int64(logging.KeyMaxPayload, mp), slog.Int64(logging.KeyMaxBodyBytes, cfg.MaxBodyBytes))
		}
		<-ctx.Done()
		return nil
	}
	firstErr := group.Run(ctx, named("ensure layout", ensure), named("webhook", public.Serve), named("admin", adm.Serve))

	// Every request finished (Serve returns after Shutdown); flush what the
	// connection still holds and close it.
	stream.Drain(logger, nc, drainTimeout)
	logger.Info("receiver stopped")
	return firstErr
}

// named prefixes a component's error with its name; an error after the
// group was stopped is the stop's, not a failure.
func named(name string, f group.Func) group.Func {
	return func(ctx context.Context) error {
		if err := f(ctx); err != nil && ctx.Err() == nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
}
