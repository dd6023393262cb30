package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// keyLocks serialises the work on one finding key, within this instance (a
// mutex) and across instances (a lease in KV ghas_state). Holding the lock
// from the compare-and-set write through the publish ack makes the order of
// a finding's messages on GHAS_FINDINGS the order of its states in KV: a
// subscriber's last message for a finding is always the current state.
type keyLocks struct {
	kv     jetstream.KeyValue // ghas_state
	holder string
	lease  time.Duration
	wait   time.Duration
	now    func() time.Time

	mu    sync.Mutex
	local map[string]*localLock
	free  *recentRevs // revision of the free lease this instance last wrote, per key
}

// recentRevs is a bounded map of key → revision, a hint for compare-and-set.
type recentRevs struct {
	mu  sync.Mutex
	max int
	m   map[string]uint64
}

func (r *recentRevs) take(key string) (uint64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rev, ok := r.m[key]
	delete(r.m, key)
	return rev, ok
}

func (r *recentRevs) put(key string, rev uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.m) >= r.max {
		for k := range r.m {
			delete(r.m, k)
			break
		}
	}
	r.m[key] = rev
}

type localLock struct {
	mu   sync.Mutex
	refs int
}

type leaseValue struct {
	Holder  string    `json:"holder"`
	Expires time.Time `json:"expires"`
}

// errLockBusy is returned when another instance holds a key for longer than
// the lock wait; the event is retried later.
var errLockBusy = errors.New("finding is being updated by another processor")

func newKeyLocks(kv jetstream.KeyValue, holder string, lease, wait time.Duration, now func() time.Time) *keyLocks {
	return &keyLocks{kv: kv, holder: holder, lease: lease, wait: wait, now: now, local: map[string]*localLock{},
		free: &recentRevs{max: 16384, m: map[string]uint64{}}}
}

func lockKey(findingKey string) string { return "lock." + findingKey }

// lock takes the lock of key and returns its release.
func (l *keyLocks) lock(ctx context.Context, key string) (release func(), err error) {
	l.mu.Lock()
	ll := l.local[key]
	if ll == nil {
		ll = &localLock{}
		l.local[key] = ll
	}
	ll.refs++
	l.mu.Unlock()
	ll.mu.Lock()
	unlockLocal := func() {
		ll.mu.Unlock()
		l.mu.Lock()
		if ll.refs--; ll.refs == 0 {
			delete(l.local, key)
		}
		l.mu.Unlock()
	}
	rev, err := l.acquire(ctx, key)
	if err != nil {
		unlockLocal()
		return nil, err
	}
	return func() {
		// Best effort: a lease we fail to free expires by itself.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		free, _ := json.Marshal(leaseValue{})
		if newRev, err := l.kv.Update(dctx, lockKey(key), free, rev); err == nil {
			l.free.put(key, newRev)
		}
		cancel()
		unlockLocal()
	}, nil
}

// acquire takes the KV lease of key, waiting up to l.wait for another
// holder. A free lease is an entry whose expiry has passed (release writes
// one), so the common path is one Get and one compare-and-set Update.
func (l *keyLocks) acquire(ctx context.Context, key string) (uint64, error) {
	k := lockKey(key)
	deadline := l.now().Add(l.wait)
	delay := time.Millisecond
	// Fast path, one round trip: update the free lease this instance wrote
	// last, or create the lease of a key never locked before.
	val, _ := json.Marshal(leaseValue{Holder: l.holder, Expires: l.now().Add(l.lease)})
	var rev uint64
	var err error
	if r, ok := l.free.take(key); ok {
		rev, err = l.kv.Update(ctx, k, val, r)
	} else {
		rev, err = l.kv.Create(ctx, k, val)
	}
	if err == nil {
		return rev, nil
	}
	for {
		val, _ := json.Marshal(leaseValue{Holder: l.holder, Expires: l.now().Add(l.lease)})
		entry, err := l.kv.Get(ctx, k)
		var rev uint64
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			rev, err = l.kv.Create(ctx, k, val)
		case err != nil:
			return 0, fmt.Errorf("lock %s: %w", key, err)
		default:
			var cur leaseValue
			if json.Unmarshal(entry.Value(), &cur) != nil || !l.now().Before(cur.Expires) {
				rev, err = l.kv.Update(ctx, k, val, entry.Revision())
			} else {
				err = errLockBusy
			}
		}
		if err == nil {
			return rev, nil
		}
		if !errors.Is(err, errLockBusy) && !isConflict(err) {
			return 0, fmt.Errorf("lock %s: %w", key, err)
		}
		if l.now().After(deadline) {
			return 0, fmt.Errorf("lock %s: %w", key, errLockBusy)
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("lock %s: %w", key, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, 50*time.Millisecond)
	}
}
