package index

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/group"
	"github.com/ghas-relay/ghas-relay/internal/logging"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// Reader fills an Index from NATS and keeps it current: a watch of KV
// ghas_findings (the current document of every finding: loaded at start,
// then each change), an ordered consumer of GHAS_FINDINGS from 30 days
// back (the revisions changes are told from), and a check of how far the
// index trails the bucket. It only reads: every consumer is an ordered
// (ephemeral) one.
type Reader struct {
	logger *slog.Logger
	ix     *Index
	js     jetstream.JetStream
	// CheckEvery is the period of the lag check and of Maintain.
	CheckEvery time.Duration

	skipped atomic.Int64
	pending atomic.Int64 // history messages not yet read, at the last one read
	lag     atomic.Int64 // nanoseconds, see Lag
}

// NewReader returns a Reader of js into ix.
func NewReader(logger *slog.Logger, ix *Index, js jetstream.JetStream) *Reader {
	return &Reader{logger: logger, ix: ix, js: js, CheckEvery: 5 * time.Second}
}

// Skipped counts KV values and stream messages that are not finding
// documents the index can hold.
func (r *Reader) Skipped() int64 { return r.skipped.Load() }

// HistoryPending is how many GHAS_FINDINGS messages were still to read
// when the last one was read.
func (r *Reader) HistoryPending() int64 { return r.pending.Load() }

// Lag is how long the index has been behind KV ghas_findings: since when
// the check first saw a bucket revision the index had not applied yet (0
// when it had applied all).
func (r *Reader) Lag() time.Duration { return time.Duration(r.lag.Load()) }

// Run reads until ctx ends; it returns an error when the bucket or the
// stream cannot be read.
func (r *Reader) Run(ctx context.Context) error {
	kv, err := r.js.KeyValue(ctx, stream.FindingsBucket)
	if err != nil {
		return fmt.Errorf("bucket %s: %w", stream.FindingsBucket, err)
	}
	return group.Run(ctx,
		// Both at once: the history keeps its own view of each finding
		// (the entry is made by whichever reads the key first), so it need
		// not wait for the bucket, and at a million findings the two take
		// about as long.
		func(ctx context.Context) error { return r.watch(ctx, kv) },
		r.history,
		r.check,
	)
}

// watch applies every value of the bucket, decoding on every core while
// the initial values load (a million documents); a revision older than the
// one held is ignored, so the decoders may finish out of order.
func (r *Reader) watch(ctx context.Context, kv jetstream.KeyValue) error {
	start := time.Now()
	if s, err := r.js.Stream(ctx, stream.FindingsKVStream); err == nil {
		r.ix.reserve(int(s.CachedInfo().State.NumSubjects), 0)
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch %s: %w", stream.FindingsBucket, err)
	}
	defer func() { _ = w.Stop() }()
	jobs := make(chan jetstream.KeyValueEntry, 1024)
	var inFlight sync.WaitGroup
	var workers sync.WaitGroup
	for range max(runtime.GOMAXPROCS(0), 1) {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for e := range jobs {
				r.apply(e)
				inFlight.Done()
			}
		}()
	}
	defer func() {
		close(jobs)
		workers.Wait()
	}()
	loaded := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("watch " + stream.FindingsBucket + ": stopped")
			}
			if e == nil {
				if !loaded {
					inFlight.Wait()
					r.ix.finishLoad()
					loaded = true
					st := r.ix.Stats()
					r.logger.Info("findings loaded", slog.Int(logging.KeyFindings, st.Findings),
						slog.Int(logging.KeyRepositories, st.Repositories), slog.Duration(logging.KeyElapsed, time.Since(start)))
				}
				continue
			}
			inFlight.Add(1)
			jobs <- e
		}
	}
}

func (r *Reader) apply(e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		r.ix.mu.Lock()
		r.ix.del(e.Key(), e.Revision())
		r.ix.mu.Unlock()
		return
	}
	f, err := decode(e.Value())
	if err != nil || string(f.key) != e.Key() {
		r.skipped.Add(1)
		r.logger.Debug("not a finding document", slog.String(logging.KeyFindingKey, e.Key()), slog.Uint64(logging.KeyRevision, e.Revision()))
		r.ix.mu.Lock()
		if e.Revision() > r.ix.lastRev {
			r.ix.lastRev = e.Revision()
		}
		r.ix.mu.Unlock()
		return
	}
	r.ix.mu.Lock()
	ok := r.ix.put(f, e.Revision())
	if !ok && e.Revision() > r.ix.lastRev {
		r.ix.lastRev = e.Revision()
	}
	r.ix.mu.Unlock()
	if !ok {
		r.skipped.Add(1)
	}
}

// history reads GHAS_FINDINGS' finding revisions of the last 30 days,
// then each new one.
func (r *Reader) history(ctx context.Context) error {
	start := time.Now()
	// GHAS_FINDINGS copies the bucket's revisions a moment after they are
	// written: wait (a little) until it holds those just loaded, so that
	// "caught up" includes them.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if ok, err := stream.FindingsCaughtUp(ctx, r.js); ok || err != nil && ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(20 * time.Millisecond):
		}
	}
	if s, err := r.js.Stream(ctx, stream.FindingsStream); err == nil {
		r.ix.reserve(0, int(min(s.CachedInfo().State.Msgs, 1<<26)))
	}
	from := r.ix.now().Add(-HistoryWindow)
	cons, err := r.js.OrderedConsumer(ctx, stream.FindingsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{stream.FindingsPrefix + ">"},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &from,
	})
	if err != nil {
		return fmt.Errorf("read %s: %w", stream.FindingsStream, err)
	}
	caught := false
	caughtUp := func() {
		caught = true
		r.ix.historyCaughtUp()
		r.logger.Info("finding history read", slog.Int(logging.KeyFindings, r.ix.Stats().Revisions), slog.Duration(logging.KeyElapsed, time.Since(start)))
	}
	if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
		caughtUp()
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(512))
	if err != nil {
		return fmt.Errorf("read %s: %w", stream.FindingsStream, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("read %s: %w", stream.FindingsStream, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			continue
		}
		r.pending.Store(int64(meta.NumPending))
		r.revision(msg, meta)
		if !caught && meta.NumPending == 0 {
			caughtUp()
		}
	}
}

func (r *Reader) revision(msg jetstream.Msg, meta *jetstream.MsgMetadata) {
	h := msg.Headers()
	if op := h.Get("KV-Operation"); op != "" {
		return // a deletion marker copied from the bucket
	}
	f, err := decode(msg.Data())
	if err != nil {
		r.skipped.Add(1)
		return
	}
	status, ok1 := lookupBytes(Statuses, f.status)
	sev, ok2 := lookupBytes(Severities, f.severity)
	if !ok1 || !ok2 {
		r.skipped.Add(1)
		return
	}
	score := int8(-1)
	if f.hasPriority {
		score = int8(min(max(f.score, 0), 100))
	}
	r.ix.addRevision(histFields{key: f.key, status: status, sev: sev, score: score,
		prevRev: h.Get(stream.HeaderPreviousRevision), prevStat: h.Get(stream.HeaderPreviousStatus)}, meta.Sequence.Stream, meta.Timestamp)
}

// check measures the lag every CheckEvery and runs Maintain every minute.
func (r *Reader) check(ctx context.Context) error {
	t := time.NewTicker(r.CheckEvery)
	defer t.Stop()
	var behindSince time.Time
	var target uint64
	lastMaintain := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		s, err := r.js.Stream(ctx, stream.FindingsKVStream)
		if err != nil {
			continue // NATS away: the lag shows it once back
		}
		last := s.CachedInfo().State.LastSeq
		applied := r.ix.Stats().LastRevision
		now := time.Now()
		switch {
		case applied >= last:
			behindSince = time.Time{}
		case behindSince.IsZero() || applied >= target:
			// Behind a revision it had not seen: from now on it counts.
			if behindSince.IsZero() {
				behindSince = now
			} else {
				behindSince = now.Add(-r.CheckEvery)
			}
			target = last
		}
		if behindSince.IsZero() {
			r.lag.Store(0)
		} else {
			r.lag.Store(int64(now.Sub(behindSince)))
		}
		if now.Sub(lastMaintain) >= time.Minute {
			lastMaintain = now
			r.ix.Maintain()
		}
	}
}
