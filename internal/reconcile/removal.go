package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ghclient"
	"github.com/ghas-relay/ghas-relay/internal/logging"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/transform"
)

// errRemovalUnconfirmed is wrapped by the error of a scope whose
// removals could not all be confirmed with a single-alert GET; those
// findings were left as they are.
var errRemovalUnconfirmed = errors.New("removal not confirmed")

// removeAbsent marks REMOVED the stored findings of a completely listed
// scope that the listing did not hold, each after GitHub confirmed it
// with a 404 to a single-alert GET: a listing paginated while alerts are
// deleted shifts its pages and can skip an alert that still exists. An
// alert GitHub still returns is compared like a listed one; one whose GET
// failed otherwise is left alone, and the returned error wraps
// errRemovalUnconfirmed (never GitHub's sentinels: an organisation scope
// must not fall back to per-repository listings for it).
func (p *puller) removeAbsent(ctx context.Context, sc scope, seen map[alertRef]struct{}) error {
	ds := transform.DatasetOf(eventOf(sc.kind))
	repos := sc.inst.list
	if sc.repo != nil {
		repos = []ghclient.Repository{*sc.repo}
	}
	var gone []removal
	for i := range repos {
		for _, n := range p.snap.numbers(ds, repos[i].ID) {
			if _, ok := seen[alertRef{repos[i].ID, n}]; !ok {
				gone = append(gone, removal{
					event: eventOf(sc.kind), key: finding.Key(ds, repos[i].ID, n), number: n, repo: repos[i].Raw, inst: sc.inst.in.ID,
					reason:  finding.RemovedAbsent,
					confirm: &scope{inst: sc.inst, kind: sc.kind, repo: &repos[i]},
				})
			}
		}
	}
	var (
		mu     sync.Mutex
		failed []error
	)
	err := forEach(ctx, p.rs.r.cfg.PageWorkers, gone, func(ctx context.Context, rm removal) error {
		err := p.remove(ctx, rm)
		if errors.Is(err, errRemovalUnconfirmed) {
			mu.Lock()
			failed = append(failed, err)
			mu.Unlock()
			return nil // the other removals go on
		}
		return err
	})
	if err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d removals left undone, first: %w", len(failed), len(gone), failed[0])
	}
	return nil
}

// removeInaccessible marks REMOVED the stored findings of repositories no
// installation lists any more (deleted, or taken out of the installation).
func (p *puller) removeInaccessible(ctx context.Context, accessible map[int64]bool) error {
	var gone []removal
	for repo, byDS := range p.snap.byRepo {
		if accessible[repo] {
			continue
		}
		for ds, nums := range byDS {
			event := ""
			for _, k := range ghclient.Kinds() {
				if transform.DatasetOf(eventOf(k)) == ds {
					event = eventOf(k)
				}
			}
			if event == "" {
				continue
			}
			for _, e := range nums {
				gone = append(gone, removal{event: event, key: finding.Key(ds, repo, e.number), number: e.number,
					reason: finding.RemovedRepositoryRemoved, snapRev: p.rs.startRev})
			}
		}
	}
	return forEach(ctx, p.rs.r.cfg.PageWorkers, gone, p.remove)
}

// removal is one finding to mark REMOVED.
type removal struct {
	event  string
	key    string
	number int64
	repo   json.RawMessage // nil: built from the stored document
	inst   int64
	// confirm is the repository scope whose single-alert GET must answer
	// 404 before the removal is published; nil for a repository no
	// installation can access (the repository listings prove it).
	confirm *scope
	// reason is the finding's removedReason.
	reason string
	// snapRev is the last revision of ghas_findings before GitHub proved
	// the alert gone (read before the confirming GET when there is one).
	snapRev uint64
}

// remove publishes a reconcile_removed event for a stored finding that is
// not REMOVED already, once GitHub confirmed the alert is gone (see
// removal.confirm). Findings already REMOVED cost no request.
func (p *puller) remove(ctx context.Context, rm removal) error {
	rs := p.rs
	stored, rev, err := rs.r.store.Get(ctx, rm.key)
	if err != nil || stored == nil {
		return err
	}
	if f := stored.Finding(); f != nil && f.FindingStatus == finding.StatusRemoved && f.RemovedReason == rm.reason {
		return nil
	}
	if rm.confirm != nil {
		if rm.snapRev, err = rs.r.store.LastRevision(ctx); err != nil {
			return err
		}
		if gone, err := p.confirmRemoval(ctx, rm); err != nil || !gone {
			return err
		}
	}
	repo := rm.repo
	if repo == nil {
		repo = repoOfDocument(stored)
	}
	body := envelope(transform.ActionReconcileRemoved, fmt.Appendf(nil, `{"number":%d}`, rm.number), repo, rm.inst)
	msgID := "reconcile-removed:" + rm.key + ":" + stored.ContentHash() + ":" + strconv.FormatUint(rev, 10) + ":" + strconv.FormatUint(rm.snapRev, 10)
	extra := nats.Header{}
	extra.Set(stream.HeaderRemovedReason, rm.reason)
	if rm.snapRev > 0 {
		extra.Set(stream.HeaderSnapshotRevision, strconv.FormatUint(rm.snapRev, 10))
	}
	if err := rs.publish(ctx, stream.ReconcileSubject(rm.event), rm.event, msgID, body, stream.OriginReconcile, extra); err != nil {
		return err
	}
	rs.drift("removed")
	return nil
}

// confirmRemoval asks GitHub for the one alert a complete listing did not
// hold. gone is true only for a 404 to that GET. An alert GitHub returns
// was skipped by the listing: it is compared with the stored finding and
// published if GitHub updated it since. A feature turned off meanwhile is recorded as such (nothing is
// removed, as for a refused listing); any other error wraps
// errRemovalUnconfirmed.
func (p *puller) confirmRemoval(ctx context.Context, rm removal) (gone bool, err error) {
	rs := p.rs
	sc := *rm.confirm
	gate := make(chan struct{})
	if first, loaded := p.probes.LoadOrStore(sc.String(), gate); loaded {
		select {
		case <-first.(chan struct{}):
		case <-ctx.Done():
			return false, ctx.Err()
		}
	} else {
		defer close(gate)
	}
	if _, off := p.off.Load(sc.String()); off {
		return false, nil
	}
	raw, err := rs.r.gh.GetAlert(ctx, sc.inst.in.ID, sc.kind, sc.repo.Owner.Login, sc.repo.Name, rm.number)
	switch {
	case err == nil:
		rs.removalsRefuted.Add(1)
		rs.r.logger.Info("a complete listing skipped an alert GitHub still has; not removed",
			slog.Int64(logging.KeyInstallationID, sc.inst.in.ID), slog.String(logging.KeyFindingKey, rm.key), slog.String(logging.KeyScope, sc.String()))
		_, err := p.alert(ctx, sc, raw, sc.repo.Raw, 0, true)
		return false, err
	case errors.Is(err, ghclient.ErrNotFound) && ghclient.StatusCode(err) == http.StatusNotFound:
		// The alert's own 404 (not, say, an installation token's).
		rs.removalsConfirmed.Add(1)
		return true, nil
	case ctx.Err() != nil:
		return false, ctx.Err()
	case errors.Is(err, ghclient.ErrFeatureOff), archivedRefusal(sc, err): // scope.go
		p.off.Store(sc.String(), true)
		rs.featureOff(sc.String(), err)
		return false, nil
	}
	return false, fmt.Errorf("%w: %s: %v", errRemovalUnconfirmed, rm.key, err)
}

// repoOfDocument is the repository object of a stored finding, enough to
// route a removal: id, name, full_name, owner.login, html_url.
func repoOfDocument(d *finding.Document) json.RawMessage {
	id, _ := strconv.ParseInt(d.VendorAssetID, 10, 64)
	b, _ := json.Marshal(map[string]any{
		"id":        id,
		"name":      d.AssetDetail.Name,
		"full_name": d.AssetDetail.FullName,
		"owner":     map[string]string{"login": d.AssetDetail.RepositoryAssetClass.Owner},
		"html_url":  d.ExternalAssetID,
	})
	return b
}
