package transform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/logging"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/retry"
)

// Seed writes the embedded default map of every dataset, the import map
// and the priority table into the maps bucket (ghas_maps, keys sast, sca,
// secret, imports, priority) where the key does not exist, so an
// operator's edits survive restarts and upgrades.
func Seed(ctx context.Context, kv jetstream.KeyValue) error {
	for _, ds := range Datasets() {
		_, err := kv.Create(ctx, ds, DefaultJSON(ds))
		if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("seed map %s: %w", ds, err)
		}
	}
	for _, m := range []struct {
		key string
		def []byte
	}{{ImportsKey, DefaultImportJSON()}, {PriorityKey, DefaultPriorityJSON()}} {
		if _, err := kv.Create(ctx, m.key, m.def); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("seed map %s: %w", m.key, err)
		}
	}
	return nil
}

// Watcher holds the maps in use: the embedded defaults until the bucket
// is read, then each dataset's map from KV, replaced whenever its key
// changes. An update that fails validation is logged (and counted, see
// Register) and ignored: the last good map stays. Deleting a key returns
// the dataset to its default.
type Watcher struct {
	logger   *slog.Logger
	kv       jetstream.KeyValue
	cur      atomic.Pointer[Maps]
	rejected *metrics.CounterVec // nil until Register

	reconnected <-chan nats.Status // nil: no rewatch on reconnection (RewatchOn)

	mu      sync.Mutex
	rev     uint64        // highest revision processed (applied or rejected)
	changed chan struct{} // closed and replaced when rev moves or ready
	ready   bool
}

// NewWatcher returns a watcher of the maps bucket kv. Current returns the
// defaults until Run has read the bucket.
func NewWatcher(logger *slog.Logger, kv jetstream.KeyValue) *Watcher {
	w := &Watcher{logger: logger, kv: kv, changed: make(chan struct{})}
	w.cur.Store(Defaults())
	return w
}

// Current returns the maps in use. It is safe for concurrent use.
func (w *Watcher) Current() *Maps { return w.cur.Load() }

// Register registers the watcher's metric on reg:
// ghas_maps_rejected_total{map}, the updates refused by validation. Call
// it before Run.
func (w *Watcher) Register(reg *metrics.Registry) {
	w.rejected = reg.NewCounterVec("ghas_maps_rejected_total", "Updates of KV ghas_maps refused by validation (the last good map stays), by map key.", "map")
}

// initialWithin bounds the wait for a new watch's initial values. The
// bucket holds five small keys: a watch that has not delivered them in
// this time was created while JetStream was not itself (a server just
// back, a leader being elected) and will not; it is started again.
const initialWithin = 15 * time.Second

// RewatchOn makes Run start its watch again whenever ch delivers: the
// connection's reconnections (nc.StatusChanged(nats.CONNECTED)). The
// watch's ordered consumer notices a restarted server only after missed
// heartbeats, about 20 s during which a changed map is not applied; a new
// watch after the reconnection reads the bucket at once. Call it before Run.
func (w *Watcher) RewatchOn(ch <-chan nats.Status) { w.reconnected = ch }

// Changed returns a channel closed at the next update of the bucket the
// watcher processed (applied or rejected), or when it has read the
// bucket: a caller compares Current before and after.
func (w *Watcher) Changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

// reject logs and counts a refused update of key.
func (w *Watcher) reject(key string, err error, log *slog.Logger) {
	log.Error("map rejected; keeping the last good map", slog.Any(logging.KeyError, err))
	if w.rejected != nil {
		w.rejected.Inc(key)
	}
}

// Run reads the bucket and follows its changes until ctx ends. A watch
// that cannot start or that breaks (JetStream unavailable: the server
// away, a leader being elected) is started again with backoff, so a
// binary never stops for it; until the first watch has delivered the
// bucket, WaitReady waits, and the maps in use stay the last loaded.
func (w *Watcher) Run(ctx context.Context) error {
	restart := retry.Policy{Initial: 200 * time.Millisecond, Max: 5 * time.Second}
	err := retry.Restart(ctx, restart, w.watch, func(err error, wait time.Duration) {
		if errors.Is(err, errReconnected) {
			w.logger.Info("reconnected to NATS; watching the maps again", slog.Duration(logging.KeyRetryIn, wait))
			return
		}
		w.logger.Warn("watching the maps failed; watching again", slog.Any(logging.KeyError, err), slog.Duration(logging.KeyRetryIn, wait))
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// errReconnected ends a watch after the connection came back (RewatchOn).
var errReconnected = errors.New("watch maps: reconnected to NATS; watching again")

// watch follows the bucket until ctx ends (nil) or the watch fails.
func (w *Watcher) watch(ctx context.Context) error {
	kw, err := w.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch maps: %w", err)
	}
	defer func() { _ = kw.Stop() }()
	initial := time.NewTimer(initialWithin)
	defer initial.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-initial.C:
			return fmt.Errorf("watch maps: the bucket's values did not arrive within %s", initialWithin)
		case <-w.reconnected:
			return errReconnected
		case e, ok := <-kw.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("watch maps: watcher stopped")
			}
			if e == nil { // initial values delivered
				initial.Stop()
				w.mu.Lock()
				w.ready = true
				w.notify()
				w.mu.Unlock()
				continue
			}
			w.mu.Lock()
			seen := e.Revision() <= w.rev
			w.mu.Unlock()
			if seen { // a watch started again delivers what was applied
				continue
			}
			w.apply(e)
		}
	}
}

func (w *Watcher) apply(e jetstream.KeyValueEntry) {
	ds := e.Key()
	log := w.logger.With(slog.String(logging.KeyMap, ds), slog.Uint64(logging.KeyRevision, e.Revision()))
	switch {
	case ds == ImportsKey:
		w.applyImports(e, log)
	case ds == PriorityKey:
		w.applyPriority(e, log)
	case alertRoot(ds) == "":
		log.Warn("ignoring unknown key in maps bucket")
	case e.Operation() != jetstream.KeyValuePut:
		def, _ := ParseMap(ds, DefaultJSON(ds))
		w.cur.Store(w.cur.Load().With(ds, def))
		log.Warn("map deleted; using the embedded default")
	default:
		mp, err := ParseMap(ds, e.Value())
		if err != nil {
			w.reject(ds, err, log)
			break
		}
		w.cur.Store(w.cur.Load().With(ds, mp))
		log.Info("map loaded")
	}
	w.mu.Lock()
	if e.Revision() > w.rev {
		w.rev = e.Revision()
	}
	w.notify()
	w.mu.Unlock()
}

// notify wakes waiters; w.mu is held.
func (w *Watcher) notify() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// WaitReady waits until Run has read the bucket's current content.
func (w *Watcher) WaitReady(ctx context.Context) error {
	return w.wait(ctx, func() bool { return w.ready })
}

// WaitRevision waits until the update with the given bucket revision (or
// a later one) has been processed, whether it was applied or rejected.
func (w *Watcher) WaitRevision(ctx context.Context, rev uint64) error {
	return w.wait(ctx, func() bool { return w.rev >= rev })
}

func (w *Watcher) wait(ctx context.Context, done func() bool) error {
	for {
		w.mu.Lock()
		ok, ch := done(), w.changed
		w.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for maps: %w", ctx.Err())
		case <-ch:
		}
	}
}
