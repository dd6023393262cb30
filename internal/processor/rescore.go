package processor

import (
	"context"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/logging"
	"github.com/ghas-relay/ghas-relay/internal/priority"
	"github.com/ghas-relay/ghas-relay/internal/state"
)

// A change of the priority table re-scores every stored finding at once
// (GitHub's and imported ones), rather than waiting for the next full pull
// (which only sees GitHub's): each processor instance lists the bucket's
// keys (headers only) and passes every finding through its finisher; only
// those whose score changed are written and published. Instances that see
// the same change repeat the pass, finding nothing left to write.

// rescoreWorkers bounds the findings re-scored at once: the pass shares
// the processor with the event stream.
const rescoreWorkers = 4

// changeNotifier is a map source that says when its maps may have
// changed; transform.Watcher is one.
type changeNotifier interface {
	Changed() <-chan struct{}
}

// watchPriority re-scores the stored findings whenever the priority table
// in use changes, until ctx ends. The table in use when it starts is the
// baseline: starting a processor re-scores nothing.
func (p *Processor) watchPriority(ctx context.Context) {
	src, ok := p.maps.(changeNotifier)
	if !ok || p.cfg.NoPriority {
		return
	}
	last := p.maps.Current().Priority()
	for {
		changed := src.Changed()
		if cur := p.maps.Current().Priority(); cur != nil && !reflect.DeepEqual(cur, last) {
			last = cur
			p.rescore(ctx, cur)
			continue // the table may have changed again meanwhile
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

// rescore passes every stored finding through the finisher once. Errors
// are logged: the next full pull (GitHub's findings) or import scores
// what failed here.
func (p *Processor) rescore(ctx context.Context, table *priority.Table) {
	start := time.Now()
	var keys []string
	if err := p.store.Scan(ctx, func(e state.Entry) {
		if !e.Deleted {
			keys = append(keys, e.Key)
		}
	}); err != nil {
		if ctx.Err() == nil {
			p.logger.Error("priority table changed; listing the findings to re-score failed", logging.Err(err))
		}
		return
	}
	slices.Sort(keys)
	var (
		written, failed atomic.Int64
		wg              sync.WaitGroup
		work            = make(chan string)
	)
	for range rescoreWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range work {
				if p.maps.Current().Priority() != table {
					continue // superseded: the next pass does it
				}
				o, err := p.store.Apply(ctx, key, func(stored *finding.Document, _ uint64) (*finding.Document, error) {
					if stored == nil || stored.Finding() == nil {
						return nil, nil
					}
					d := *stored
					d.ObservedAt = p.cfg.Now().UTC().Format(time.RFC3339)
					return &d, nil // the finisher sets the new priority
				})
				switch {
				case err != nil:
					failed.Add(1)
				case o == state.Written:
					written.Add(1)
					ds, _, _, _ := finding.ParseKey(key)
					p.metrics.Published.Inc(ds)
				}
			}
		}()
	}
	for _, k := range keys {
		select {
		case work <- k:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
	p.logger.Info("priority table changed; findings re-scored", slog.Int(logging.KeyFindings, len(keys)),
		slog.Int64(logging.KeyPublished, written.Load()), slog.Int64(logging.KeyFailed, failed.Load()),
		slog.Duration(logging.KeyElapsed, time.Since(start)))
}
