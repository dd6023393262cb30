package webhook

import (
	"context"
	"sync"
)

// memBudget bounds the bytes of large bodies held at once, so that many
// concurrent 25 MB deliveries cannot exhaust memory: a large body reserves
// its size before its buffer is allocated, and releases it once answered.
type memBudget struct {
	mu      sync.Mutex
	free    int64
	changed chan struct{} // closed and replaced on every release
}

func newMemBudget(n int64) *memBudget {
	return &memBudget{free: n, changed: make(chan struct{})}
}

// acquire reserves n bytes, waiting until they are free or ctx ends.
func (b *memBudget) acquire(ctx context.Context, n int64) error {
	for {
		b.mu.Lock()
		if b.free >= n {
			b.free -= n
			b.mu.Unlock()
			return nil
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *memBudget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.free += n
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
}
