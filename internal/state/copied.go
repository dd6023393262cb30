package state

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// ErrNotCopied is a write held back because GHAS_FINDINGS has not yet
// copied the revision it would replace; the caller retries later (a
// processor's message is delivered again).
var ErrNotCopied = errors.New("the revision to replace is not yet on " + stream.FindingsStream)

// copyWait bounds how long a write waits for GHAS_FINDINGS to copy the
// revision it replaces.
const copyWait = 20 * time.Second

// copied keeps how far GHAS_FINDINGS has copied the bucket's stream.
//
// The bucket keeps 8 revisions of a key, and GHAS_FINDINGS copies them
// from it: while its source is behind (its leader being elected, a node
// frozen: the random-fault test saw it behind by 300 writes), a key
// written 8 more times lost a revision before it was copied, and no
// subscriber or sink ever saw it. So a write never replaces a revision
// that was not copied yet: each key has at most one revision not yet on
// GHAS_FINDINGS, which the history keeps. The mark is read again only
// when a write would replace a revision beyond it (the same key written
// twice in quick succession), so the common write costs nothing more.
type copied struct {
	js jetstream.JetStream

	mu sync.Mutex
	fs jetstream.Stream // nil until first needed
	up uint64           // every revision up to it is on GHAS_FINDINGS
}

// wait returns once revision rev is on GHAS_FINDINGS, or ErrNotCopied
// after copyWait. When GHAS_FINDINGS holds no finding message at all
// (a new system, or an operator purged it) there is nothing to wait for.
func (c *copied) wait(ctx context.Context, rev uint64) error {
	if rev == 0 || c == nil {
		return nil
	}
	c.mu.Lock()
	up := c.up
	c.mu.Unlock()
	if up >= rev {
		return nil
	}
	deadline := time.Now().Add(copyWait)
	for pause := 5 * time.Millisecond; ; pause = min(2*pause, 500*time.Millisecond) {
		n, found, err := c.read(ctx)
		if err != nil {
			return err
		}
		if !found || n >= rev {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: revision %d (copied up to %d after %s)", ErrNotCopied, rev, n, copyWait)
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// read reads the mark from GHAS_FINDINGS and raises it.
func (c *copied) read(ctx context.Context) (uint64, bool, error) {
	c.mu.Lock()
	fs := c.fs
	c.mu.Unlock()
	if fs == nil {
		var err error
		if fs, err = c.js.Stream(ctx, stream.FindingsStream); err != nil {
			return 0, false, fmt.Errorf("stream %s: %w", stream.FindingsStream, err)
		}
	}
	n, found, err := stream.CopiedUpTo(ctx, fs)
	if err != nil {
		return 0, false, err
	}
	c.mu.Lock()
	c.fs = fs
	c.up = max(c.up, n)
	c.mu.Unlock()
	return n, found, nil
}
