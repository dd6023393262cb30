package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/logging"
	"github.com/ghas-relay/ghas-relay/internal/retry"
)

// ErrRefused is a layout change the NATS server refused the connection's
// user (a permissions violation): with the users of deploy/nats only the
// setup identity (processor -setup) may create or update the layout.
var ErrRefused = errors.New("refused by the nats server (permissions violation)")

// ErrLayoutNotReady is a layout that is missing a stream or bucket, or has
// a stream that lacks what this version needs (a subject, a source), and
// that this binary's user may not fix.
var ErrLayoutNotReady = errors.New("nats layout not ready")

// waitLogEvery is how often a binary that keeps waiting says so again.
const waitLogEvery = 30 * time.Second

// WaitEnsure makes the layout ready at a binary's start and returns once it
// is, retrying until ctx ends or l.StartTimeout passes (then the error
// names NATS_START_TIMEOUT and the cause). Where the binary's NATS user may
// (a server without authorization), it creates what is missing and, unless
// CreateOnly, updates what differs, as Apply does. Where the server refuses
// it that (the users of deploy/nats), it waits for the setup step: a
// missing stream or bucket, or a stream that lacks a subject or source this
// version needs, keeps it waiting; other differences (limits such as max
// bytes or replicas) are logged as a warning and it works with what exists.
// The first wait is logged, and again every 30 s while it lasts.
func WaitEnsure(ctx context.Context, logger *slog.Logger, js jetstream.JetStream, l Layout) error {
	o := applyOpts{create: !l.LookOnly, update: !l.CreateOnly && !l.LookOnly}
	changes, err := retryLayout(ctx, logger, js, l, func(ctx context.Context) ([]Change, error) { return readyOnce(ctx, js, l, &o) })
	if err != nil {
		return err
	}
	if differs := describe(changes, ActionDiffers); differs != "" && !l.CreateOnly {
		// The processor may not apply its version's limits: what exists
		// carries every message, so it works with it.
		logger.Warn("nats layout differs from this version's and this user may not update it: run processor -setup to apply it",
			slog.String(logging.KeyReason, differs))
	}
	return nil
}

// WaitApply is Apply, retried while NATS is not reachable, until ctx ends
// or l.StartTimeout passes: the setup step (processor -setup), started
// beside a NATS server that may not be up yet. A refusal (the user is not
// the setup identity) fails at once.
func WaitApply(ctx context.Context, logger *slog.Logger, js jetstream.JetStream, l Layout) ([]Change, error) {
	return retryLayout(ctx, logger, js, l, func(ctx context.Context) ([]Change, error) {
		changes, err := Apply(ctx, js, l)
		if errors.Is(err, ErrRefused) {
			return changes, retry.Permanent(fmt.Errorf("%w: this nats user may not create or update the layout", err))
		}
		return changes, err
	})
}

// retryLayout runs op until it succeeds, retrying with backoff for at most
// l.StartTimeout; the first failure is logged, and again every 30 s.
func retryLayout(ctx context.Context, logger *slog.Logger, js jetstream.JetStream, l Layout, op func(ctx context.Context) ([]Change, error)) ([]Change, error) {
	var last error
	var changes []Change
	var logged time.Time
	err := retry.Restart(ctx, retry.Policy{Initial: 200 * time.Millisecond, Max: 5 * time.Second, MaxElapsed: l.StartTimeout},
		func(ctx context.Context) error {
			tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			var err error
			changes, err = op(tctx)
			last = err
			if nc := js.Conn(); err != nil && nc != nil && nc.IsClosed() {
				// Closed for good (the server refused the credentials).
				return retry.Permanent(fmt.Errorf("ensure nats layout: connection closed: %w", errors.Join(nc.LastError(), err)))
			}
			return err
		},
		func(err error, wait time.Duration) {
			if now := time.Now(); now.Sub(logged) >= waitLogEvery {
				logged = now
				msg := "nats layout not ready, retrying"
				if errors.Is(err, ErrLayoutNotReady) {
					msg = "waiting for the nats layout: run processor -setup"
				}
				logger.Warn(msg, logging.Err(err), slog.Duration(logging.KeyRetryIn, wait))
			}
		})
	switch {
	case err == nil:
		return changes, nil
	case ctx.Err() == nil && !errors.Is(err, retry.ErrExpired):
		return changes, err // permanent: the connection closed for good, a refusal
	case ctx.Err() != nil:
		return changes, fmt.Errorf("ensure nats layout: %w", err)
	}
	return changes, fmt.Errorf("nats not ready within %s (NATS_START_TIMEOUT): %w", l.StartTimeout, last)
}

// readyOnce applies the layout once with what o still allows: after a
// refusal it stops asking (each refused request would wait out its
// timeout, and the server logs every refusal) and looks only. It returns
// ErrLayoutNotReady while a stream or bucket is missing or a stream lacks
// what this version needs.
func readyOnce(ctx context.Context, js jetstream.JetStream, l Layout, o *applyOpts) ([]Change, error) {
	changes, err := apply(ctx, js, l, *o)
	var r *refusal
	for errors.As(err, &r) {
		if r.create {
			o.create = false
		} else {
			o.update = false
		}
		changes, err = apply(ctx, js, l, *o)
	}
	if err != nil {
		return changes, err
	}
	var why []string
	for _, c := range changes {
		switch {
		case c.Action == ActionMissing:
			why = append(why, c.Kind+" "+c.Name+" missing")
		case c.Action == ActionDiffers && len(c.Lacks) > 0:
			why = append(why, c.Kind+" "+c.Name+" lacks "+strings.Join(c.Lacks, ", "))
		}
	}
	if len(why) == 0 {
		return changes, nil
	}
	who := "this binary does not update the layout"
	switch {
	case l.LookOnly:
		who = "this binary only reads the layout"
	case !o.create || !l.CreateOnly && !o.update:
		who = "this nats user may not create or update it"
	}
	return changes, fmt.Errorf("%w: %s (%s): run processor -setup", ErrLayoutNotReady, strings.Join(why, "; "), who)
}

// describe lists the changes with action, e.g. "stream GHAS_EVENTS (max
// bytes)".
func describe(changes []Change, action string) string {
	var s []string
	for _, c := range changes {
		if c.Action == action {
			s = append(s, strings.TrimPrefix(c.String(), action+" "))
		}
	}
	return strings.Join(s, "; ")
}

// refusal is ErrRefused for one request.
type refusal struct {
	create  bool // a create (else an update)
	subject string
}

func (r *refusal) Error() string { return fmt.Sprintf("%s: %s", r.subject, ErrRefused) }
func (r *refusal) Unwrap() error { return ErrRefused }

// guarded runs call, a JetStream API request on subject, and returns a
// *refusal as soon as the server refuses the connection's publish to
// subject: a refused request gets no answer, so call would otherwise wait
// out its timeout.
func guarded(ctx context.Context, nc *nats.Conn, subject string, create bool, call func(ctx context.Context) error) error {
	if nc == nil {
		return call(ctx)
	}
	before := nc.LastError()
	refused := func() error {
		if err := nc.LastError(); err != nil && err != before && errors.Is(err, nats.ErrPermissionViolation) &&
			strings.Contains(err.Error(), `"`+subject+`"`) {
			return &refusal{create: create, subject: subject}
		}
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- call(ctx) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if r := refused(); err != nil && r != nil {
				return r
			}
			return err
		case <-tick.C:
			if r := refused(); r != nil {
				cancel()
				<-done
				return r
			}
		}
	}
}
