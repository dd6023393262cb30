package reconcile

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/ghclient"
)

// fullListing walks every page of a scope with conditional requests,
// publishes the alerts that drifted, and, when the walk is complete, marks
// REMOVED the stored findings of the scope it no longer lists.
func (p *puller) fullListing(ctx context.Context, sc scope) error {
	rs := p.rs
	store := newPageStore(rs.r.state, p.fp, p.proofOf(sc))
	req := sc.request()
	req.ETags = store
	seen := map[alertRef]struct{}{}
	var newest time.Time
	// snapRev is read before each page's request: what ghas_findings held
	// up to it was stored before GitHub answered (see state.Authoritative).
	snapRev, err := rs.r.store.LastRevision(ctx)
	if err != nil {
		return err
	}
	err = rs.r.gh.ListAlerts(ctx, sc.inst.in.ID, req, func(pg ghclient.Page) (bool, error) {
		rs.pages.Add(1)
		key := ghclient.ETagKey(pg.URL)
		if pg.NotModified {
			rs.pagesNM.Add(1)
			rec, ok := store.taken(key)
			if !ok {
				return false, fmt.Errorf("page %d: 304 without a stored record", pg.Number)
			}
			for _, a := range rec.Alerts {
				seen[alertRef{a[0], a[1]}] = struct{}{}
			}
			newest = later(newest, parseTime(rec.MaxUpdated))
			rs.alertsSeen.Add(int64(len(rec.Alerts)))
			snapRev, err = rs.r.store.LastRevision(ctx)
			return err == nil, err
		}
		heads, err := decodeHeads(pg.Items)
		if err != nil {
			return false, fmt.Errorf("page %d: %w", pg.Number, err)
		}
		res, err := p.processPage(ctx, sc, pg.Items, heads, snapRev)
		if err != nil {
			return false, fmt.Errorf("page %d: %w", pg.Number, err)
		}
		rec := pageRecord{Alerts: make([][2]int64, len(res.refs)), Hashes: res.hashes, Assets: res.assets}
		for i, a := range res.refs {
			rec.Alerts[i] = [2]int64{a.Repo, a.Number}
			seen[a] = struct{}{}
		}
		if !res.newest.IsZero() {
			rec.MaxUpdated = res.newest.UTC().Format(time.RFC3339Nano)
		}
		newest = later(newest, res.newest)
		store.stash(key, rec)
		snapRev, err = rs.r.store.LastRevision(ctx)
		return err == nil, err
	})
	if err != nil {
		return err
	}
	var unconfirmed error
	if p.snap != nil {
		if err := p.removeAbsent(ctx, sc, seen); errors.Is(err, errRemovalUnconfirmed) {
			unconfirmed = err // every listed alert is acknowledged: the watermark may advance
		} else if err != nil {
			return err
		}
	}
	if err := p.advanceWatermark(ctx, sc, newest); err != nil {
		return err
	}
	return unconfirmed
}

// deltaListing walks a scope newest update first down to its watermark.
// Without a watermark it walks everything (and sets one).
func (p *puller) deltaListing(ctx context.Context, sc scope) error {
	rs := p.rs
	wm, err := p.watermark(ctx, sc)
	if err != nil {
		return err
	}
	req := sc.request()
	req.Sort, req.Direction = "updated", "desc"
	var etags *deferredETags
	if !wm.IsZero() {
		// A 304 for the first page means nothing was updated since the
		// last complete delta. Page states are kept only once the whole
		// walk succeeded, so a page 1 stored by a failed walk never
		// hides the pages it did not reach.
		etags = &deferredETags{kv: ghclient.NewKVETags(rs.r.state), pending: map[string]ghclient.PageState{}}
		req.ETags = etags
	}
	newest := wm
	snapRev, err := rs.r.store.LastRevision(ctx)
	if err != nil {
		return err
	}
	err = rs.r.gh.ListAlerts(ctx, sc.inst.in.ID, req, func(pg ghclient.Page) (bool, error) {
		rs.pages.Add(1)
		if pg.NotModified {
			rs.pagesNM.Add(1)
			return false, nil
		}
		heads, err := decodeHeads(pg.Items)
		if err != nil {
			return false, fmt.Errorf("page %d: %w", pg.Number, err)
		}
		cut := len(heads)
		for i, h := range heads {
			if t := parseTime(h.UpdatedAt); !wm.IsZero() && !t.IsZero() && t.Before(wm) {
				cut = i
				break
			}
		}
		res, err := p.processPage(ctx, sc, pg.Items[:cut], heads[:cut], snapRev)
		if err != nil {
			return false, fmt.Errorf("page %d: %w", pg.Number, err)
		}
		newest = later(newest, res.newest)
		if cut < len(heads) {
			return false, nil
		}
		snapRev, err = rs.r.store.LastRevision(ctx)
		return err == nil, err
	})
	if err != nil {
		return err
	}
	if etags != nil {
		if err := etags.commit(ctx); err != nil {
			return err
		}
	}
	return p.advanceWatermark(ctx, sc, newest)
}

// deferredETags keeps the validators of a walk in memory until commit.
type deferredETags struct {
	kv      ghclient.ETagStore
	mu      sync.Mutex
	pending map[string]ghclient.PageState
}

func (d *deferredETags) Get(ctx context.Context, key string) (ghclient.PageState, bool, error) {
	return d.kv.Get(ctx, key)
}

func (d *deferredETags) Put(_ context.Context, key string, v ghclient.PageState) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pending[key] = v
	return nil
}

func (d *deferredETags) commit(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, v := range d.pending {
		if err := d.kv.Put(ctx, k, v); err != nil {
			return err
		}
	}
	clear(d.pending)
	return nil
}

func (p *puller) watermark(ctx context.Context, sc scope) (time.Time, error) {
	e, err := p.rs.r.state.Get(ctx, sc.watermarkKey())
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read %s: %w", sc.watermarkKey(), err)
	}
	return parseTime(string(e.Value())), nil
}

// advanceWatermark stores newest as the scope's watermark if it is later
// than the stored one. Callers have every alert up to newest acknowledged.
func (p *puller) advanceWatermark(ctx context.Context, sc scope, newest time.Time) error {
	if newest.IsZero() {
		return nil
	}
	old, err := p.watermark(ctx, sc)
	if err != nil {
		return err
	}
	if !newest.After(old) {
		return nil
	}
	if _, err := p.rs.r.state.Put(ctx, sc.watermarkKey(), []byte(newest.UTC().Format(time.RFC3339Nano))); err != nil {
		return fmt.Errorf("store %s: %w", sc.watermarkKey(), err)
	}
	return nil
}
