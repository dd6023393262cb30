package lease_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/lease"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

const key = "lease.reconciler"

// ttl is short so the tests are quick, and long enough that a loaded
// two-core machine still renews in time.
const ttl = 900 * time.Millisecond

var errInjected = errors.New("injected: nats: timeout")

// instance is one contender with its own NATS connection, and a switch
// that makes its lease requests fail or hang as a partition or a frozen
// request would.
type instance struct {
	name  string
	nc    *nats.Conn
	kv    jetstream.KeyValue
	store *faultyStore
	held  atomic.Bool
}

func newInstance(t *testing.T, ns *streamtest.Server, name string) *instance {
	t.Helper()
	nc, err := nats.Connect(ns.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), stream.StateBucket)
	if err != nil {
		t.Fatal(err)
	}
	return &instance{name: name, nc: nc, kv: kv, store: &faultyStore{KeyValue: kv}}
}

func (in *instance) lease(t *testing.T, d time.Duration) *lease.Lease {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(tWriter{t}, nil)).With("instance", in.name)
	}
	return lease.New(logger, in.store, lease.Config{Key: key, Holder: in.name, TTL: d, Held: in.held.Store})
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// faultyStore passes everything to the real KV unless told to fail
// (every request answers an error at once) or to hang (Update waits,
// whatever its context says, until unblocked: a renewal frozen in flight).
type faultyStore struct {
	jetstream.KeyValue
	mu    sync.Mutex
	fail  bool
	block chan struct{}
}

func (f *faultyStore) setFail(v bool) { f.mu.Lock(); f.fail = v; f.mu.Unlock() }

func (f *faultyStore) failing() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.fail }

func (f *faultyStore) Get(ctx context.Context, k string) (jetstream.KeyValueEntry, error) {
	if f.failing() {
		return nil, errInjected
	}
	return f.KeyValue.Get(ctx, k)
}

func (f *faultyStore) Create(ctx context.Context, k string, v []byte, o ...jetstream.KVCreateOpt) (uint64, error) {
	if f.failing() {
		return 0, errInjected
	}
	return f.KeyValue.Create(ctx, k, v, o...)
}

func (f *faultyStore) Update(ctx context.Context, k string, v []byte, rev uint64) (uint64, error) {
	f.mu.Lock()
	block := f.block
	f.mu.Unlock()
	if block != nil {
		<-block
	}
	if f.failing() {
		return 0, errInjected
	}
	return f.KeyValue.Update(ctx, k, v, rev)
}

func (f *faultyStore) Delete(ctx context.Context, k string, o ...jetstream.KVDeleteOpt) error {
	if f.failing() {
		return errInjected
	}
	return f.KeyValue.Delete(ctx, k, o...)
}

// timeline records when each instance's work ran.
type timeline struct {
	mu    sync.Mutex
	spans []span
}

type span struct {
	who        string
	start, end time.Time // end zero: still running
}

// work is an instance's work: it runs until its context ends.
func (tl *timeline) work(who string) func(context.Context) error {
	return func(ctx context.Context) error {
		tl.mu.Lock()
		i := len(tl.spans)
		tl.spans = append(tl.spans, span{who: who, start: time.Now()})
		tl.mu.Unlock()
		<-ctx.Done()
		tl.mu.Lock()
		tl.spans[i].end = time.Now()
		tl.mu.Unlock()
		return nil
	}
}

func (tl *timeline) get() []span {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return append([]span(nil), tl.spans...)
}

// first is the start of who's first span after from, or zero.
func (tl *timeline) first(who string, from time.Time) span {
	for _, s := range tl.get() {
		if s.who == who && !s.start.Before(from) {
			return s
		}
	}
	return span{}
}

// checkNoOverlap fails when two spans ran at once.
func (tl *timeline) checkNoOverlap(t *testing.T) {
	t.Helper()
	ss := tl.get()
	for i := range ss {
		for j := i + 1; j < len(ss); j++ {
			a, b := ss[i], ss[j]
			aEnd, bEnd := a.end, b.end
			if aEnd.IsZero() {
				aEnd = time.Now()
			}
			if bEnd.IsZero() {
				bEnd = time.Now()
			}
			if a.start.Before(bEnd) && b.start.Before(aEnd) {
				t.Errorf("%s worked %s–%s and %s worked %s–%s at once", a.who, a.start.Format("15:04:05.000"), aEnd.Format("15:04:05.000"),
					b.who, b.start.Format("15:04:05.000"), bEnd.Format("15:04:05.000"))
			}
		}
	}
}

// run starts l.Run with who's work until the returned stop is called or
// the test ends.
func run(t *testing.T, l *lease.Lease, tl *timeline, who string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := l.Run(ctx, tl.work(who)); err != nil {
			t.Errorf("%s: Run: %v", who, err)
		}
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	streamtest.WaitFor(t, within, what, cond)
}

// Two instances: one works, the other waits for as long as the first
// renews.
func TestOneOfTwoWorks(t *testing.T) {
	ns := streamtest.Run(t)
	ns.Connect()
	a, b := newInstance(t, ns, "a"), newInstance(t, ns, "b")
	var tl timeline
	run(t, a.lease(t, ttl), &tl, "a")
	run(t, b.lease(t, ttl), &tl, "b")
	time.Sleep(4 * ttl)
	ss := tl.get()
	if len(ss) != 1 {
		t.Fatalf("%d spans of work in 4 TTLs, want 1: %+v", len(ss), ss)
	}
	if !ss[0].end.IsZero() {
		t.Errorf("%s stopped working while it renewed", ss[0].who)
	}
	if a.held.Load() == b.held.Load() {
		t.Errorf("held: a %v, b %v; want exactly one", a.held.Load(), b.held.Load())
	}
	tl.checkNoOverlap(t)
}

// A holder that dies (its connection gone: no renewal, no release) is
// replaced within two TTLs, and its work had stopped before.
func TestDeadHolderReplacedWithinTwoTTLs(t *testing.T) {
	ns := streamtest.Run(t)
	ns.Connect()
	a, b := newInstance(t, ns, "a"), newInstance(t, ns, "b")
	var tl timeline
	run(t, a.lease(t, ttl), &tl, "a")
	waitFor(t, 10*time.Second, "a working", func() bool { return a.held.Load() })
	run(t, b.lease(t, ttl), &tl, "b")
	time.Sleep(ttl) // b has read a's lease

	died := time.Now()
	a.nc.Close()
	waitFor(t, 10*time.Second, "b working", func() bool { return !tl.first("b", died).start.IsZero() })
	took := tl.first("b", died).start.Sub(died)
	if took > 2*ttl {
		t.Errorf("b took over %s after a died; want within two TTLs (%s)", took, 2*ttl)
	}
	tl.checkNoOverlap(t)
	t.Logf("takeover %s after the holder died (TTL %s)", took, ttl)
}

// A holder cut off from NATS stops working before another starts, and
// does not start again while the other holds the lease after it is
// back.
func TestPartitionedHolderStopsBeforeTakeover(t *testing.T) {
	ns := streamtest.Run(t)
	ns.Connect()
	a, b := newInstance(t, ns, "a"), newInstance(t, ns, "b")
	var tl timeline
	run(t, a.lease(t, ttl), &tl, "a")
	waitFor(t, 10*time.Second, "a working", func() bool { return a.held.Load() })
	run(t, b.lease(t, ttl), &tl, "b")

	cut := time.Now()
	a.store.setFail(true)
	waitFor(t, 10*time.Second, "b working", func() bool { return b.held.Load() })
	aSpan := tl.get()[0]
	if aSpan.end.IsZero() || aSpan.end.Sub(cut) > ttl {
		t.Errorf("a's work ended %v after its renewals began failing; want within one TTL", aSpan.end.Sub(cut))
	}
	a.store.setFail(false)
	time.Sleep(3 * ttl)
	if a.held.Load() {
		t.Error("a holds the lease again while b renews it")
	}
	tl.checkNoOverlap(t)
}

// A renewal frozen in flight (it neither succeeds nor fails) does not
// keep the work running: the deadline has a timer of its own. When the
// frozen renewal finally arrives, it finds the lease taken and the
// holder waits.
func TestFrozenRenewalNeverOverlaps(t *testing.T) {
	ns := streamtest.Run(t)
	ns.Connect()
	a, b := newInstance(t, ns, "a"), newInstance(t, ns, "b")
	var tl timeline
	run(t, a.lease(t, ttl), &tl, "a")
	waitFor(t, 10*time.Second, "a working", func() bool { return a.held.Load() })
	run(t, b.lease(t, ttl), &tl, "b")

	block := make(chan struct{})
	var unblock sync.Once
	t.Cleanup(func() { unblock.Do(func() { close(block) }) }) // before run's stop
	a.store.mu.Lock()
	a.store.block = block
	a.store.mu.Unlock()
	frozen := time.Now()
	waitFor(t, 10*time.Second, "a's work to stop", func() bool { return !tl.get()[0].end.IsZero() })
	if d := tl.get()[0].end.Sub(frozen); d > ttl {
		t.Errorf("a's work ran %s after its renewal froze; want under one TTL", d)
	}
	waitFor(t, 10*time.Second, "b working", func() bool { return b.held.Load() })
	a.store.mu.Lock()
	a.store.block = nil
	a.store.mu.Unlock()
	unblock.Do(func() { close(block) })
	time.Sleep(3 * ttl)
	if a.held.Load() {
		t.Error("a holds the lease again while b renews it")
	}
	tl.checkNoOverlap(t)
}

// A holder that stops gives the lease up: the next takes it at its next
// read, not after a TTL.
func TestStoppedHolderReleases(t *testing.T) {
	ns := streamtest.Run(t)
	ns.Connect()
	a, b := newInstance(t, ns, "a"), newInstance(t, ns, "b")
	var tl timeline
	stopA := run(t, a.lease(t, ttl), &tl, "a")
	waitFor(t, 10*time.Second, "a working", func() bool { return a.held.Load() })
	run(t, b.lease(t, ttl), &tl, "b")
	time.Sleep(ttl / 2)
	stopped := time.Now()
	stopA()
	waitFor(t, 10*time.Second, "b working", func() bool { return b.held.Load() })
	if d := tl.first("b", stopped).start.Sub(stopped); d > ttl/2 {
		t.Errorf("b took the released lease after %s; want within a poll (TTL/4 = %s)", d, ttl/4)
	}
	tl.checkNoOverlap(t)
}

// A holder whose renewals failed while nobody waited takes its own lease
// back as soon as NATS answers again, without waiting a TTL.
func TestHolderTakesItsOwnLeaseBack(t *testing.T) {
	ns := streamtest.Run(t)
	ns.Connect()
	a := newInstance(t, ns, "a")
	var tl timeline
	run(t, a.lease(t, ttl), &tl, "a")
	waitFor(t, 10*time.Second, "a working", func() bool { return a.held.Load() })
	a.store.setFail(true)
	waitFor(t, 10*time.Second, "a's work to stop", func() bool { return !a.held.Load() })
	back := time.Now()
	a.store.setFail(false)
	waitFor(t, 10*time.Second, "a working again", func() bool { return a.held.Load() })
	if d := time.Since(back); d > ttl/2 {
		t.Errorf("a took its own lease back after %s; want within a poll (TTL/4)", d)
	}
}

// A waiter waits the holder's TTL when it is longer than its own (a
// rollout that changes RECONCILE_LEASE_TTL).
func TestWaiterHonoursTheHoldersLongerTTL(t *testing.T) {
	ns := streamtest.Run(t)
	ns.Connect()
	a, b := newInstance(t, ns, "a"), newInstance(t, ns, "b")
	var tl timeline
	long := 4 * ttl
	run(t, a.lease(t, long), &tl, "a")
	waitFor(t, 10*time.Second, "a working", func() bool { return a.held.Load() })
	run(t, b.lease(t, ttl/3), &tl, "b")
	time.Sleep(ttl)
	died := time.Now()
	a.nc.Close()
	waitFor(t, 20*time.Second, "b working", func() bool { return b.held.Load() })
	aSpan := tl.get()[0]
	if took := tl.first("b", died).start.Sub(died); took < long*2/3 {
		t.Errorf("b took over %s after a died; a's TTL is %s", took, long)
	}
	if aSpan.end.IsZero() {
		t.Error("a still works")
	}
	tl.checkNoOverlap(t)
}

// Once waits a bounded time, names the holder when it gives up, and runs
// the work once when the lease is free, giving it up after.
func TestOnce(t *testing.T) {
	ns := streamtest.Run(t)
	ns.Connect()
	a, b := newInstance(t, ns, "a"), newInstance(t, ns, "b")
	var tl timeline
	stopA := run(t, a.lease(t, ttl), &tl, "a")
	waitFor(t, 10*time.Second, "a working", func() bool { return a.held.Load() })

	start := time.Now()
	ran := false
	err := b.lease(t, ttl).Once(t.Context(), 2*ttl, func(context.Context) error { ran = true; return nil })
	if !errors.Is(err, lease.ErrHeld) || ran {
		t.Fatalf("Once while a holds: %v (ran %v); want ErrHeld", err, ran)
	}
	if d := time.Since(start); d < 2*ttl || d > 4*ttl {
		t.Errorf("Once gave up after %s; want two TTLs (%s)", d, 2*ttl)
	}
	if got := err.Error(); !strings.Contains(got, "(a)") {
		t.Errorf("ErrHeld does not name the holder: %q", got)
	}

	stopA()
	want := errors.New("run failed")
	err = b.lease(t, ttl).Once(t.Context(), 2*ttl, func(context.Context) error { ran = true; return want })
	if !errors.Is(err, want) || !ran {
		t.Fatalf("Once with the lease free: %v (ran %v); want the work's error", err, ran)
	}
	if _, err := b.kv.Get(t.Context(), key); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("the lease after Once: %v; want given up", err)
	}
}
