package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ghas-relay/ghas-relay/internal/priority"
	"github.com/ghas-relay/ghas-relay/internal/state"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/transform"
)

// alertHead is what the reconciler reads of a listed alert itself.
type alertHead struct {
	Number     int64           `json:"number"`
	UpdatedAt  string          `json:"updated_at"`
	Repository json.RawMessage `json:"repository"`
}

func decodeHeads(items []json.RawMessage) ([]alertHead, error) {
	heads := make([]alertHead, len(items))
	for i, it := range items {
		if err := json.Unmarshal(it, &heads[i]); err != nil {
			return nil, fmt.Errorf("decode alert %d of the page: %w", i, err)
		}
	}
	return heads, nil
}

// pageResult is what processing one page found: its alerts, the short
// content hash of the document each gives (0 where the maps refused it),
// the short asset hash of each repository, and the newest updated_at.
type pageResult struct {
	refs   []alertRef
	hashes []uint64
	assets map[string]uint64
	newest time.Time
}

// processPage compares the alerts of one page with ghas_findings and
// publishes the missing and changed ones, waiting for every ack. snapRev
// is the last revision of ghas_findings before the page was requested.
func (p *puller) processPage(ctx context.Context, sc scope, items []json.RawMessage, heads []alertHead, snapRev uint64) (pageResult, error) {
	refs := make([]alertRef, len(items))
	var newest time.Time
	for i, h := range heads {
		refs[i] = alertRef{Number: h.Number}
		if sc.repo != nil {
			refs[i].Repo = sc.repo.ID
		} else if len(h.Repository) > 0 {
			var id struct {
				ID int64 `json:"id"`
			}
			if err := json.Unmarshal(h.Repository, &id); err != nil || id.ID == 0 {
				return pageResult{}, fmt.Errorf("alert %d without repository.id", h.Number)
			}
			refs[i].Repo = id.ID
		} else {
			return pageResult{}, fmt.Errorf("alert %d without repository", h.Number)
		}
		newest = later(newest, parseTime(h.UpdatedAt))
	}
	p.rs.alertsSeen.Add(int64(len(items)))
	res := pageResult{refs: refs, hashes: make([]uint64, len(items)), assets: map[string]uint64{}, newest: newest}
	idx := make([]int, len(items))
	for i := range idx {
		idx[i] = i
	}
	ds := transform.DatasetOf(eventOf(sc.kind))
	for i := range items {
		if _, ok := res.assets[strconv.FormatInt(refs[i].Repo, 10)]; !ok {
			res.assets[strconv.FormatInt(refs[i].Repo, 10)] = p.assetHash(ds, refs[i].Repo, p.repoRaw(sc, refs[i].Repo, heads[i].Repository))
		}
	}
	err := forEach(ctx, p.rs.r.cfg.PageWorkers, idx, func(ctx context.Context, i int) error {
		h, err := p.alert(ctx, sc, items[i], p.repoRaw(sc, refs[i].Repo, heads[i].Repository), snapRev, false)
		res.hashes[i] = h
		return err
	})
	return res, err
}

// repoRaw is the repository object an alert's document is built with: the
// installation's listing of it (full asset fields), else what the alert
// carries (the short object of an organisation listing).
func (p *puller) repoRaw(sc scope, repo int64, fromAlert json.RawMessage) json.RawMessage {
	if r := sc.inst.repos[repo]; r != nil {
		return r.Raw
	}
	return fromAlert
}

// assetHash is the short hash of the asset the maps build from a
// repository object, for one dataset (0 when the maps refuse it).
func (p *puller) assetHash(ds string, repo int64, raw json.RawMessage) uint64 {
	key := ds + "." + strconv.FormatInt(repo, 10)
	if v, ok := p.assets.Load(key); ok {
		return v.(uint64)
	}
	var h uint64
	if a, err := p.maps.Asset(ds, raw, p.rs.receivedAt); err == nil {
		p.decorateAsset(&a, raw) // scope.go
		a.Findings = nil
		h = shortHash(a.ContentHash())
	}
	p.assets.Store(key, h)
	return h
}

// proofOf returns the check of a scope's page records against this run's
// findings snapshot and assets: every alert of the page is stored with the
// document the page gave, and every repository's asset is unchanged.
func (p *puller) proofOf(sc scope) pageProof {
	ds := transform.DatasetOf(eventOf(sc.kind))
	return func(rec *pageRecord) bool {
		if p.snap == nil {
			return false
		}
		for i, a := range rec.Alerts {
			h, ok := p.snap.hash(ds, a[0], a[1])
			if !ok && rec.Hashes[i] == outOfScopeHash {
				continue // out of scope and not stored (scope.go)
			}
			if !ok || h == 0 || h != rec.Hashes[i] {
				return false
			}
		}
		for id, want := range rec.Assets {
			n, err := strconv.ParseInt(id, 10, 64)
			r := sc.inst.repos[n]
			if err != nil || r == nil || want == 0 || p.assetHash(ds, n, r.Raw) != want {
				return false
			}
		}
		return true
	}
}

// alert publishes one alert if ghas_findings lacks it or holds another
// document for it, and returns the short content hash of the document the
// alert gives (0 when the maps refuse it).
//
// A stored revision up to snapRev was written before GitHub's answer was
// read, so the answer replaces it whatever their dates (state.Authoritative);
// a later one may be a change made during the pull and is ordered by
// state.Newer. With onlyNewer (an alert fetched on its own, whose response
// carries fields a listing lacks, such as a code scanning rule's full
// description and help), a stored document is replaced only by a newer
// one: at the same updated_at nothing changed at GitHub, and the next
// listing would only turn the document back; such an event carries no
// snapshot revision.
func (p *puller) alert(ctx context.Context, sc scope, raw, repoRaw json.RawMessage, snapRev uint64, onlyNewer bool) (uint64, error) {
	rs := p.rs
	event := eventOf(sc.kind)
	body := envelope(transform.ActionReconcile, raw, repoRaw, sc.inst.in.ID)
	doc, err := p.maps.Alert(transform.Event{Name: event, Payload: body, Origin: stream.OriginReconcile, ReceivedAt: rs.receivedAt}, rs.receivedAt)
	if err != nil {
		// The processor would dead-letter it; say so in the report
		// without holding up the rest of the scope.
		rs.fail(sc.String()+" alert", err)
		return 0, nil
	}
	stored, rev, err := rs.r.store.Get(ctx, doc.FindingKey)
	if err != nil {
		return 0, err
	}
	if h, skip := p.scoped(&doc, body, stored); skip { // scope.go
		return h, nil
	}
	// The processor writes every document with its priority: the one it
	// would write is compared, its corroboration carried over as the
	// processor does.
	priority.Carry(&doc, stored)
	p.maps.Priority().Apply(&doc)
	hash := doc.ContentHash()
	kind := "new"
	if stored != nil {
		if stored.ContentHash() == hash {
			return shortHash(hash), nil
		}
		switch {
		case onlyNewer:
			snapRev = 0
			if !state.EventTime(&doc).After(state.EventTime(stored)) {
				return shortHash(hash), nil
			}
		case state.Authoritative(rev, snapRev):
		case !state.Newer(&doc, stored):
			rs.drift("stale")
			return shortHash(hash), nil
		}
		kind = "changed"
	}
	extra := nats.Header{}
	if snapRev > 0 {
		extra.Set(stream.HeaderSnapshotRevision, strconv.FormatUint(snapRev, 10))
	}
	// The id is a function of GitHub's data, of the stored revision it
	// corrects and of the snapshot it was read after: a retried publish is
	// dropped as a duplicate, but a correction the processor could not
	// apply (the stored revision came after this page's snapshot and is
	// dated later) is sent again by the next pull, whose snapshot is later.
	msgID := "reconcile:" + doc.FindingKey + ":" + sha(body) + ":" + strconv.FormatUint(rev, 10) + ":" + strconv.FormatUint(snapRev, 10)
	if err := rs.publish(ctx, stream.ReconcileSubject(event), event, msgID, body, stream.OriginReconcile, extra); err != nil {
		return 0, err
	}
	rs.drift(kind)
	return shortHash(hash), nil
}

// envelope is the body of a reconciler event (transform.ActionReconcile or
// ActionReconcileRemoved). inst 0 leaves the installation out.
func envelope(action string, alert, repo json.RawMessage, inst int64) []byte {
	b := make([]byte, 0, len(alert)+len(repo)+96)
	b = append(b, `{"action":`...)
	b = strconv.AppendQuote(b, action)
	b = append(b, `,"alert":`...)
	b = append(b, alert...)
	b = append(b, `,"repository":`...)
	b = append(b, repo...)
	if inst != 0 {
		b = append(b, `,"installation":{"id":`...)
		b = strconv.AppendInt(b, inst, 10)
		b = append(b, '}')
	}
	return append(b, '}')
}

// publish stores one event on GHAS_EVENTS and waits for the ack. extra
// headers are set after the standard ones.
func (rs *runState) publish(ctx context.Context, subject, event, msgID string, body []byte, origin string, extra nats.Header) error {
	msg := &nats.Msg{Subject: subject, Header: nats.Header{}, Data: body}
	msg.Header.Set(stream.HeaderMsgID, msgID)
	msg.Header.Set(stream.HeaderEvent, event)
	msg.Header.Set(stream.HeaderOrigin, origin)
	msg.Header.Set(stream.HeaderReceivedAt, rs.r.cfg.Now().UTC().Format(time.RFC3339))
	for k, v := range extra {
		msg.Header[k] = v
	}
	pctx, cancel := context.WithTimeout(ctx, rs.r.cfg.PublishTimeout)
	defer cancel()
	ack, err := rs.r.js.PublishMsg(pctx, msg)
	if err != nil {
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	if ack.Duplicate {
		rs.dups.Add(1)
		return nil
	}
	rs.published.Add(1)
	rs.r.metrics.Published.Inc(origin)
	return nil
}
