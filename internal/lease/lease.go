// Package lease owns a run lease held in one key of a JetStream KV bucket
// (the reconciler's: ghas_state lease.reconciler): any number of
// instances may run, one holds the lease and works, the others wait, and
// work is never done by two at once.
//
// The key's value names the holder and its TTL (JSON). Every write is a
// compare-and-set on the key's revision: Create when the key is absent,
// Update at the revision read otherwise. Expiry is never judged by
// comparing clocks of two machines. A waiting instance that reads
// revision R at its own time t takes the lease over only if R is still
// the key's revision at t+TTL (the Update at R fails otherwise); the
// holder renews every TTL/3 and stops its work at once when it loses a
// renewal to another instance, or when TTL·2/3 passed since it sent the
// last renewal that succeeded. Since a waiter's t comes after that
// renewal was written, which came after it was sent, the holder has
// stopped at least TTL/3 before anyone can take over: only the two
// clocks' rates must agree, not their readings.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/logging"
)

// ErrHeld is returned by Once when another instance kept the lease for
// the whole wait.
var ErrHeld = errors.New("lease held by another instance")

// errLost is the cause of the work context's end when the lease is lost.
var errLost = errors.New("lease lost")

// releaseTimeout bounds the Delete that gives the lease up at the end.
const releaseTimeout = 5 * time.Second

// Store is the part of jetstream.KeyValue the lease uses.
type Store interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
	Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error)
	Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error)
	Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error
}

// Config names the lease and this instance.
type Config struct {
	// Key is the KV key of the lease.
	Key string
	// Holder names this instance in the value (Holder gives one).
	Holder string
	// TTL is how long a lease without a renewal stays held.
	TTL time.Duration
	// Held, when set, is told each time this instance starts (true) or
	// stops (false) holding the lease (a gauge).
	Held func(bool)
}

// Value is what the key holds. Only Holder and TTL are read: Since and
// Renewed, in the holder's clock, are for people reading the key.
type Value struct {
	Holder  string    `json:"holder"`
	TTL     string    `json:"ttl"`
	Since   time.Time `json:"since"`
	Renewed time.Time `json:"renewed"`
}

// Lease is one instance's side of the lease.
type Lease struct {
	logger *slog.Logger
	kv     Store
	cfg    Config
	since  time.Time // when this instance last acquired it
}

// New returns this instance's side of the lease cfg.Key in kv.
func New(logger *slog.Logger, kv Store, cfg Config) *Lease {
	if cfg.Held == nil {
		cfg.Held = func(bool) {}
	}
	return &Lease{logger: logger.With(slog.String(logging.KeyHolder, cfg.Holder)), kv: kv, cfg: cfg}
}

// Holder is an instance name unique across restarts and machines:
// host name, process id and a random suffix.
func Holder() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "unknown"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Run runs work whenever this instance holds the lease, until ctx ends:
// it waits for the lease, runs work with a context that ends when the
// lease is lost, and waits again after a loss. When work returns by
// itself, Run gives the lease up and returns work's error. It returns
// nil when ctx ends, after work returned and the lease was given up.
func (l *Lease) Run(ctx context.Context, work func(context.Context) error) error {
	for {
		rev, sent, err := l.acquire(ctx, time.Time{})
		if err != nil {
			return nil // ctx ended while waiting
		}
		lost, err := l.hold(ctx, rev, sent, work)
		if !lost {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// Once waits at most wait for the lease, runs work once while holding
// it and gives it up. It returns ErrHeld (naming the holder) when the
// lease stayed with another instance for the whole wait, and an error
// wrapping errLost when the lease was lost before work returned.
func (l *Lease) Once(ctx context.Context, wait time.Duration, work func(context.Context) error) error {
	rev, sent, err := l.acquire(ctx, time.Now().Add(wait))
	if err != nil {
		return err
	}
	lost, err := l.hold(ctx, rev, sent, work)
	if lost && ctx.Err() == nil {
		return fmt.Errorf("%w before the run ended", errLost)
	}
	return err
}

// acquire waits until this instance holds the lease and returns the
// key's revision and when the write that took it was sent. With a
// non-zero until it gives up then with ErrHeld; it returns ctx's error
// when ctx ends first.
func (l *Lease) acquire(ctx context.Context, until time.Time) (uint64, time.Time, error) {
	ttl := l.cfg.TTL
	poll := ttl / 4
	var (
		seenRev    uint64
		seenAt     time.Time // this instance's clock when it first read seenRev
		seenHolder string
		lastLog    time.Time
	)
	for {
		sent := time.Now()
		e, err := l.kv.Get(ctx, l.cfg.Key)
		now := time.Now()
		wait := poll
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			// Absent or given up: whoever creates it first holds it.
			rev, err := l.kv.Create(ctx, l.cfg.Key, l.value(sent, sent))
			if err == nil {
				l.logger.Info("lease acquired", slog.String(logging.KeyLease, l.cfg.Key), slog.Uint64(logging.KeyRevision, rev))
				l.since = sent
				return rev, sent, nil
			}
			if conflict(err) {
				continue // another instance was first: read who
			}
			l.logRateLimited(&lastLog, "cannot create the lease", err)
		case err != nil:
			if ctx.Err() != nil {
				return 0, time.Time{}, ctx.Err()
			}
			l.logRateLimited(&lastLog, "cannot read the lease", err)
		default:
			v := decode(e.Value())
			if v.Holder == l.cfg.Holder {
				// Still ours (a renewal that failed only in its answer, or
				// work stopped for lack of renewals while nobody took over):
				// nobody else wrote since, so the compare-and-set decides.
				sent := time.Now()
				rev, err := l.kv.Update(ctx, l.cfg.Key, l.value(sent, sent), e.Revision())
				if err == nil {
					l.logger.Info("lease acquired again", slog.String(logging.KeyLease, l.cfg.Key), slog.Uint64(logging.KeyRevision, rev))
					l.since = sent
					return rev, sent, nil
				}
				if conflict(err) {
					continue
				}
				l.logRateLimited(&lastLog, "cannot take the lease back", err)
				break
			}
			if e.Revision() != seenRev {
				// A new write: the holder is alive at least until now+TTL.
				seenRev, seenAt = e.Revision(), now
				if v.Holder != seenHolder {
					l.logger.Info("lease held by another instance; waiting",
						slog.String(logging.KeyLease, l.cfg.Key), slog.String(logging.KeyHeldBy, v.Holder), slog.Duration(logging.KeyTTL, l.ttlOf(v)))
					seenHolder = v.Holder
				}
			}
			expires := seenAt.Add(l.ttlOf(v))
			if !now.Before(expires) {
				sent := time.Now()
				rev, err := l.kv.Update(ctx, l.cfg.Key, l.value(sent, sent), seenRev)
				if err == nil {
					l.logger.Warn("lease taken over: its holder did not renew it within its TTL",
						slog.String(logging.KeyLease, l.cfg.Key), slog.String(logging.KeyHeldBy, v.Holder), slog.Uint64(logging.KeyRevision, rev))
					l.since = sent
					return rev, sent, nil
				}
				if conflict(err) {
					continue // renewed (or taken) meanwhile
				}
				l.logRateLimited(&lastLog, "cannot take the lease over", err)
				break
			}
			wait = min(poll, expires.Sub(now))
		}
		if !until.IsZero() {
			if !now.Before(until) {
				if seenHolder != "" {
					return 0, time.Time{}, fmt.Errorf("%w (%s)", ErrHeld, seenHolder)
				}
				return 0, time.Time{}, ErrHeld
			}
			wait = min(wait, until.Sub(now))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, time.Time{}, ctx.Err()
		case <-t.C:
		}
	}
}

// hold runs work while renewing the lease taken at rev by a write sent
// at sent. It returns lost=true when the lease was lost (work's context
// was cancelled and work has returned); otherwise work returned by
// itself or ctx ended, the lease was given up, and err is work's error.
//
// The deadline is kept by a timer of its own, not by the renewing loop:
// a renewal stuck in a request (or a loop that is not scheduled) cannot
// keep the work running past it.
func (l *Lease) hold(ctx context.Context, rev uint64, sent time.Time, work func(context.Context) error) (lost bool, err error) {
	ttl := l.cfg.TTL
	workCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan error, 1)
	l.cfg.Held(true)
	go func() { done <- work(workCtx) }()

	// expire ends the work at once; the first call wins.
	var once sync.Once
	expired := make(chan struct{})
	expire := func(why string) {
		once.Do(func() {
			l.cfg.Held(false)
			cancel(errLost)
			close(expired)
			l.logger.Warn(why+"; work stopped", slog.String(logging.KeyLease, l.cfg.Key), slog.Duration(logging.KeyTTL, ttl))
		})
	}
	lastOK := sent
	watchdog := time.AfterFunc(time.Until(lastOK.Add(2*ttl/3)), func() { expire("lease not renewed in time") })
	defer watchdog.Stop()
	renew := time.NewTimer(ttl / 3)
	defer renew.Stop()
	var lastLog time.Time
	for {
		select {
		case err := <-done:
			select {
			case <-expired:
				return true, nil
			default:
			}
			watchdog.Stop()
			l.cfg.Held(false)
			l.release(rev)
			return false, err
		case <-expired:
			<-done
			return true, nil
		case <-renew.C:
		}
		deadline := lastOK.Add(2 * ttl / 3)
		s := time.Now()
		rctx, rcancel := context.WithDeadline(ctx, deadline)
		newRev, err := l.kv.Update(rctx, l.cfg.Key, l.value(l.since, s), rev)
		rcancel()
		switch {
		case err == nil:
			rev, lastOK = newRev, s
			if !watchdog.Stop() {
				continue // expired meanwhile: the work is stopping
			}
			watchdog.Reset(time.Until(lastOK.Add(2 * ttl / 3)))
			renew.Reset(max(0, ttl/3-time.Since(s)))
		case ctx.Err() != nil:
			// Stopping: the done case gives the lease up once work returned.
			renew.Reset(time.Hour)
		case conflict(err):
			expire("lease lost to another instance")
		default:
			// Again soon; the watchdog ends the work at the deadline.
			l.logRateLimited(&lastLog, "cannot renew the lease", err)
			renew.Reset(ttl / 12)
		}
	}
}

// release gives the lease up (deletes the key at this instance's
// revision) so that a waiting instance takes it at its next read rather
// than after a TTL. Failing is harmless: the lease then runs out.
func (l *Lease) release(rev uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
	defer cancel()
	if err := l.kv.Delete(ctx, l.cfg.Key, jetstream.LastRevision(rev)); err != nil {
		l.logger.Info("lease not given up; it runs out after its TTL", slog.String(logging.KeyLease, l.cfg.Key), logging.Err(err))
		return
	}
	l.logger.Info("lease given up", slog.String(logging.KeyLease, l.cfg.Key))
}

// value is the key's value written by this instance at now.
func (l *Lease) value(since, now time.Time) []byte {
	b, _ := json.Marshal(Value{Holder: l.cfg.Holder, TTL: l.cfg.TTL.String(), Since: since.UTC(), Renewed: now.UTC()})
	return b
}

// ttlOf is how long a waiter waits on a revision written by v's holder:
// the longer of the holder's TTL and its own, so that instances with
// different settings (during a rollout) still never overlap.
func (l *Lease) ttlOf(v Value) time.Duration {
	d, err := time.ParseDuration(v.TTL)
	if err != nil || d < l.cfg.TTL {
		return l.cfg.TTL
	}
	return d
}

// decode reads a lease value; an unreadable one has no holder, and is
// taken over like any other after a TTL without change.
func decode(b []byte) Value {
	var v Value
	_ = json.Unmarshal(b, &v)
	return v
}

// conflict reports whether err is a compare-and-set conflict: another
// instance wrote the key first.
func conflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// logRateLimited logs a failure to reach the lease at most every 10 s.
func (l *Lease) logRateLimited(last *time.Time, msg string, err error) {
	if time.Since(*last) < 10*time.Second {
		return
	}
	*last = time.Now()
	l.logger.Warn(msg, slog.String(logging.KeyLease, l.cfg.Key), logging.Err(err))
}
