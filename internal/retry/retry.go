// Package retry owns how ghas-relay waits before trying again: Restart,
// the one loop that starts a failed consumer or setup again with
// exponential backoff (cenkalti/backoff), and ParseAfter, the one reading
// of an HTTP Retry-After header.
package retry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// ErrExpired is returned by Restart when Policy.MaxElapsed passed.
var ErrExpired = errors.New("retry time expired")

// Policy is a restart schedule: waits from Initial, doubling up to Max,
// without jitter.
type Policy struct {
	Initial time.Duration
	Max     time.Duration
	// MaxElapsed gives up when the next wait would end past it, counted
	// from the start; 0 keeps trying until ctx ends.
	MaxElapsed time.Duration
}

// Permanent marks an error that Restart must not retry.
func Permanent(err error) error { return backoff.Permanent(err) }

// Restart runs op until it returns nil and returns nil then. Before each
// wait it calls notify (may be nil) with op's error and the wait. It stops
// with op's error when op marks it Permanent, with ctx's error joined to
// op's last error when ctx ends, and with ErrExpired wrapping op's last
// error when MaxElapsed passes.
func Restart(ctx context.Context, p Policy, op func(ctx context.Context) error, notify func(err error, wait time.Duration)) error {
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(p.Initial),
		backoff.WithMaxInterval(p.Max),
		backoff.WithMultiplier(2),
		backoff.WithRandomizationFactor(0),
		backoff.WithMaxElapsedTime(p.MaxElapsed),
	)
	var last error
	permanent := false
	err := backoff.RetryNotify(func() error {
		last = op(ctx)
		var pe *backoff.PermanentError
		permanent = errors.As(last, &pe)
		return last
	}, backoff.WithContext(b, ctx), notify)
	switch {
	case err == nil:
		return nil
	case permanent:
		return err // backoff unwraps the permanent error
	case ctx.Err() != nil:
		return errors.Join(ctx.Err(), last)
	}
	return fmt.Errorf("%w after %s: %w", ErrExpired, p.MaxElapsed, last)
}
