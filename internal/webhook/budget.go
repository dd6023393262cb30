package webhook

import (
	"context"
	"sync"
)

// memBudget bounds the bytes of body buffers held at once, so that many
// concurrent deliveries cannot exhaust memory: a body reserves every
// growth of its buffer before allocating it, and releases the whole
// reservation once answered.
type memBudget struct {
	mu      sync.Mutex
	size    int64
	free    int64
	waiting int           // acquires waiting for a release
	changed chan struct{} // closed and replaced by a release while some wait
}

func newMemBudget(n int64) *memBudget {
	return &memBudget{size: n, free: n, changed: make(chan struct{})}
}

// held is the number of bytes reserved now.
func (b *memBudget) held() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.size - b.free
}

// tryAcquire reserves n bytes if they are free now.
func (b *memBudget) tryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.free >= n {
		b.free -= n
		return true
	}
	return false
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
		b.waiting++
		b.mu.Unlock()
		var err error
		select {
		case <-ch:
		case <-ctx.Done():
			err = ctx.Err()
		}
		b.mu.Lock()
		b.waiting--
		b.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

func (b *memBudget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.free += n
	if b.waiting > 0 {
		close(b.changed)
		b.changed = make(chan struct{})
	}
	b.mu.Unlock()
}
