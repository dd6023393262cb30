// Package config owns the configuration surface shared by the binaries
// (docs/contract.md lists every setting): every setting is a flag whose
// default comes from an environment variable of the same meaning (the flag
// wins); secrets come from the environment or a file, never from a flag
// value; invalid configuration is an *Error naming the setting, which the
// binaries turn into exit code 2.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/logging"
)

// Error is invalid or missing configuration. Setting is the environment
// variable (or flag) at fault.
type Error struct {
	Setting string
	Msg     string
}

func (e *Error) Error() string { return fmt.Sprintf("invalid configuration: %s: %s", e.Setting, e.Msg) }

// ExitCode is the process exit code for an error returned by a binary's run:
// 2 for configuration errors, 1 otherwise, 0 for nil.
func ExitCode(err error) int {
	var ce *Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ce):
		return 2
	}
	return 1
}

// Set is a flag set whose defaults come from the environment.
type Set struct {
	fs       *flag.FlagSet
	getenv   func(string) string
	errs     []error
	post     []func() error
	settings []Setting
}

// Setting is one setting of a Set as registered, before the environment
// applies: what docs/contract.md lists for each binary, and what a test
// holds the docs to.
type Setting struct {
	// Env is the environment variable; "" for a flag-only switch (-once).
	Env string
	// Flag is the flag name without its dash; "" for a secret's value,
	// which is never a flag.
	Flag string
	// Default is the default as the flag package prints it ("" for none,
	// "5m0s" for a duration of five minutes).
	Default string
	// Secret marks a secret's value; its file is the setting Env+"_FILE".
	Secret bool
}

// Settings lists the registered settings in the order of registration.
func (s *Set) Settings() []Setting { return append([]Setting(nil), s.settings...) }

// Help is Parse's answer to -h once the usage is printed. It is
// flag.ErrHelp to errors.Is and carries the settings the usage listed, so
// a test can read a binary's settings through its own parseConfig.
type Help struct{ Settings []Setting }

// Error is flag.ErrHelp's message.
func (h *Help) Error() string { return flag.ErrHelp.Error() }

// Unwrap makes errors.Is(err, flag.ErrHelp) hold.
func (h *Help) Unwrap() error { return flag.ErrHelp }

func (s *Set) add(env, flagName, def string, secret bool) {
	s.settings = append(s.settings, Setting{Env: env, Flag: flagName, Default: def, Secret: secret})
}

// New returns a Set for the program name reading the environment through
// getenv and printing usage to out.
func New(name string, getenv func(string) string, out io.Writer) *Set {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	return &Set{fs: fs, getenv: getenv}
}

// FlagName is the flag of an environment variable: NATS_URL → nats-url.
func FlagName(env string) string { return strings.ReplaceAll(strings.ToLower(env), "_", "-") }

func (s *Set) envOr(env, def string) string {
	if v := s.getenv(env); v != "" {
		return v
	}
	return def
}

func help(env, usage string) string { return fmt.Sprintf("%s (env %s)", usage, env) }

// String defines a string setting.
func (s *Set) String(p *string, env, def, usage string) {
	s.fs.StringVar(p, FlagName(env), s.envOr(env, def), help(env, usage))
	s.add(env, FlagName(env), def, false)
}

// Int defines an integer setting.
func (s *Set) Int(p *int64, env string, def int64, usage string) {
	d := def
	if v := s.getenv(env); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			s.errs = append(s.errs, &Error{env, fmt.Sprintf("%q is not an integer", v)})
		} else {
			d = n
		}
	}
	s.fs.Int64Var(p, FlagName(env), d, help(env, usage))
	s.add(env, FlagName(env), strconv.FormatInt(def, 10), false)
}

// Duration defines a duration setting ("10m", "1h").
func (s *Set) Duration(p *time.Duration, env string, def time.Duration, usage string) {
	d := def
	if v := s.getenv(env); v != "" {
		x, err := time.ParseDuration(v)
		if err != nil {
			s.errs = append(s.errs, &Error{env, fmt.Sprintf("%q is not a duration", v)})
		} else {
			d = x
		}
	}
	s.fs.DurationVar(p, FlagName(env), d, help(env, usage))
	s.add(env, FlagName(env), def.String(), false)
}

// Bool defines a flag-only boolean (such as -once).
func (s *Set) Bool(p *bool, name string, def bool, usage string) {
	s.fs.BoolVar(p, name, def, usage)
	s.add("", name, strconv.FormatBool(def), false)
}

// Secret defines a secret read from env, or else from the file named by
// fileEnv (or its flag). The secret's value is never a flag. Trailing
// newlines of a file are dropped.
func (s *Set) Secret(p *string, env, fileEnv, usage string) {
	var file string
	s.fs.StringVar(&file, FlagName(fileEnv), s.getenv(fileEnv), help(fileEnv, "file holding "+usage+"; or set env "+env))
	s.add(env, "", "", true)
	s.add(fileEnv, FlagName(fileEnv), "", false)
	s.post = append(s.post, func() error {
		if v := s.getenv(env); v != "" {
			*p = v
			return nil
		}
		if file == "" {
			return nil
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return &Error{fileEnv, fmt.Sprintf("read %s: %v", file, errors.Unwrap(err))}
		}
		*p = strings.TrimRight(string(b), "\r\n")
		return nil
	})
}

// Parse parses args (without the program name). It returns a *Help
// (flag.ErrHelp) after printing usage for -h, and an *Error for invalid
// settings.
func (s *Set) Parse(args []string) error {
	if err := s.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return &Help{Settings: s.Settings()}
		}
		return &Error{"flags", err.Error()}
	}
	if s.fs.NArg() > 0 {
		return &Error{"flags", fmt.Sprintf("unexpected argument %q", s.fs.Arg(0))}
	}
	if len(s.errs) > 0 {
		return s.errs[0]
	}
	for _, f := range s.post {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// Required returns an *Error naming env when v is empty.
func Required(env, v string) error {
	if strings.TrimSpace(v) == "" {
		return &Error{env, "required"}
	}
	return nil
}

// OneOf returns an *Error naming env when v is not one of allowed.
func OneOf(env, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return &Error{env, fmt.Sprintf("%q is not one of %s", v, strings.Join(allowed, ", "))}
}

// Common is the configuration every binary shares.
type Common struct {
	NATSURL        string
	AdminAddr      string
	LogLevel       string
	LogFormat      string
	StreamReplicas int64
	// NATSStartTimeout bounds the wait for NATS and its layout at start.
	NATSStartTimeout time.Duration
	NATSAuth
	StreamLimits
}

// RegisterCommon defines the shared settings on s; adminDefault is the
// binary's own admin address.
func (c *Common) RegisterCommon(s *Set, adminDefault string) {
	s.String(&c.NATSURL, "NATS_URL", "nats://127.0.0.1:4222", "NATS server URL(s), comma-separated")
	c.registerNATS(s)
	s.Duration(&c.NATSStartTimeout, "NATS_START_TIMEOUT", 5*time.Minute, "how long a binary waits at start for NATS and its streams before it gives up and exits non-zero (0: forever); once started, it reconnects forever")
	s.String(&c.AdminAddr, "ADMIN_ADDR", adminDefault, "admin listener for /healthz, /readyz, /metrics")
	s.String(&c.LogLevel, "LOG_LEVEL", "info", "log level: debug, info, warn, error")
	s.String(&c.LogFormat, "LOG_FORMAT", "json", "log format: json or text")
	s.Int(&c.StreamReplicas, "STREAM_REPLICAS", 1, "replicas of the streams and buckets this binary creates (3 in a production cluster)")
	c.registerLimits(s)
}

// Validate checks the shared settings.
func (c *Common) Validate() error {
	if err := Required("NATS_URL", c.NATSURL); err != nil {
		return err
	}
	if err := Required("ADMIN_ADDR", c.AdminAddr); err != nil {
		return err
	}
	if c.NATSStartTimeout < 0 {
		return &Error{"NATS_START_TIMEOUT", "must not be negative"}
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		return &Error{"STREAM_REPLICAS", fmt.Sprintf("%d is not between 1 and 5", c.StreamReplicas)}
	}
	if err := c.StreamLimits.validate(); err != nil {
		return err
	}
	if err := c.NATSAuth.validate(); err != nil {
		return err
	}
	if err := OneOf("LOG_LEVEL", strings.ToLower(c.LogLevel), "debug", "info", "warn", "error"); err != nil {
		return err
	}
	return OneOf("LOG_FORMAT", strings.ToLower(c.LogFormat), "json", "text")
}

// Logger returns the binary's logger on w (its stderr), tagged with the
// component name, as LOG_LEVEL and LOG_FORMAT say.
func (c Common) Logger(w io.Writer, component string) (*slog.Logger, error) {
	logger, err := logging.New(w, c.LogLevel, c.LogFormat)
	if err != nil {
		return nil, &Error{"LOG_LEVEL", err.Error()}
	}
	return logger.With(slog.String(logging.KeyComponent, component)), nil
}
