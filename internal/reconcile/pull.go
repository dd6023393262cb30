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
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ghclient"
	"github.com/ghas-relay/ghas-relay/internal/logging"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/transform"
)

// eventOf is the webhook event name of an alert kind.
func eventOf(k ghclient.Kind) string {
	switch k {
	case ghclient.CodeScanning:
		return transform.EventCodeScanning
	case ghclient.Dependabot:
		return transform.EventDependabot
	}
	return transform.EventSecretScanning
}

// instState is one installation being pulled.
type instState struct {
	in    ghclient.Installation
	list  []ghclient.Repository
	repos map[int64]*ghclient.Repository
}

// scope is one listing: an alert kind of an organisation (repo nil) or of
// one repository.
type scope struct {
	inst *instState
	kind ghclient.Kind
	repo *ghclient.Repository
}

func (sc scope) String() string {
	if sc.repo == nil {
		return fmt.Sprintf("org %s %s", sc.inst.in.Account, sc.kind)
	}
	return fmt.Sprintf("repo %s %s", sc.repo.FullName, sc.kind)
}

func (sc scope) request() ghclient.ListRequest {
	if sc.repo == nil {
		return ghclient.ListRequest{Kind: sc.kind, Org: sc.inst.in.Account}
	}
	return ghclient.ListRequest{Kind: sc.kind, Owner: sc.repo.Owner.Login, Repo: sc.repo.Name}
}

// watermarkKey is the ghas_state key of the scope's delta watermark.
func (sc scope) watermarkKey() string {
	k := fmt.Sprintf("watermark.%d.%s", sc.inst.in.ID, sc.kind)
	if sc.repo != nil {
		k += "." + strconv.FormatInt(sc.repo.ID, 10)
	}
	return k
}

// snapshot is the keys of ghas_findings when a full pull began: by
// repository, by dataset, the alert numbers. Findings stored later are
// never candidates for removal in this run.
type snapshot struct {
	byRepo map[int64]map[string][]int64
}

func (r *Reconciler) loadSnapshot(ctx context.Context) (*snapshot, error) {
	s := &snapshot{byRepo: map[int64]map[string][]int64{}}
	lister, err := r.findings.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", stream.FindingsBucket, err)
	}
	for k := range lister.Keys() {
		ds, repo, num, err := finding.ParseKey(k)
		if err != nil {
			continue
		}
		m := s.byRepo[repo]
		if m == nil {
			m = map[string][]int64{}
			s.byRepo[repo] = m
		}
		m[ds] = append(m[ds], num)
	}
	_ = lister.Stop()
	// The lister also ends early when ctx ends; that is no complete list.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", stream.FindingsBucket, err)
	}
	return s, nil
}

// pull runs a full (drift repair and removals) or delta pull of every
// installation.
func (rs *runState) pull(ctx context.Context, full bool) {
	r := rs.r
	insts, err := r.gh.Installations(ctx)
	if err != nil {
		rs.fail("installations", err)
		return
	}
	rs.update(func(rep *Report) { rep.Installations = len(insts) })
	var snap *snapshot
	if full {
		if snap, err = r.loadSnapshot(ctx); err != nil {
			rs.fail("snapshot of "+stream.FindingsBucket, err)
		}
	}
	maps := r.maps.Current()
	p := &puller{rs: rs, full: full, snap: snap, maps: maps, fp: mapsFingerprint(maps)}

	var mu sync.Mutex
	accessible := map[int64]bool{}
	accessKnown := true
	_ = forEach(ctx, r.cfg.Installations, insts, func(ctx context.Context, in ghclient.Installation) error {
		log := r.logger.With(slog.Int64(logging.KeyInstallationID, in.ID), slog.String("account", in.Account))
		if in.Suspended {
			rs.skip(fmt.Sprintf("installation %d (%s): suspended", in.ID, in.Account))
			mu.Lock()
			accessKnown = false
			mu.Unlock()
			return nil
		}
		rs.mu.Lock()
		rs.instIDs = append(rs.instIDs, in.ID)
		rs.mu.Unlock()
		repos, err := r.gh.Repositories(ctx, in.ID)
		if err != nil {
			rs.fail(fmt.Sprintf("installation %d (%s)", in.ID, in.Account), err)
			mu.Lock()
			accessKnown = false
			mu.Unlock()
			return nil
		}
		st := &instState{in: in, list: repos, repos: make(map[int64]*ghclient.Repository, len(repos))}
		mu.Lock()
		for i := range repos {
			st.repos[repos[i].ID] = &repos[i]
			accessible[repos[i].ID] = true
		}
		mu.Unlock()
		rs.update(func(rep *Report) { rep.Repositories += len(repos) })
		log.Info("pulling installation", slog.String("mode", rs.mode), slog.Int("repositories", len(repos)))
		p.installation(ctx, st)
		return nil
	})
	if !full || snap == nil {
		return
	}
	switch {
	case ctx.Err() != nil:
		rs.skip("repositories no longer accessible: not checked, the run was cut short")
	case !accessKnown:
		rs.skip("repositories no longer accessible: not checked, an installation's repositories are unknown")
	default:
		if err := p.removeInaccessible(ctx, accessible); err != nil {
			rs.fail("repositories no longer accessible", err)
		}
	}
}

// puller holds what every listing of one pull shares.
type puller struct {
	rs   *runState
	full bool
	snap *snapshot
	maps *transform.Maps
	fp   string
	// off holds the repository scopes (scope.String) whose removal check
	// found the feature turned off: their other checks are skipped, so a
	// repository that turned code scanning off costs one request a run,
	// not one per stored finding. probes gates the first check of each
	// repository scope (a channel closed when it is done): the others
	// wait for it, then run in parallel.
	off    sync.Map
	probes sync.Map
}

// installation pulls every alert kind of one installation.
func (p *puller) installation(ctx context.Context, st *instState) {
	cfg := p.rs.r.cfg
	var mu sync.Mutex
	var repoScopes []scope
	perRepo := func(k ghclient.Kind) {
		mu.Lock()
		defer mu.Unlock()
		for i := range st.list {
			repoScopes = append(repoScopes, scope{inst: st, kind: k, repo: &st.list[i]})
		}
	}
	if st.in.IsOrganization() && cfg.Strategy == StrategyAuto {
		_ = forEach(ctx, len(ghclient.Kinds()), ghclient.Kinds(), func(ctx context.Context, k ghclient.Kind) error {
			if p.listing(ctx, scope{inst: st, kind: k}) {
				perRepo(k)
			}
			return nil
		})
	} else {
		for _, k := range ghclient.Kinds() {
			perRepo(k)
		}
	}
	_ = forEach(ctx, cfg.Listings, repoScopes, func(ctx context.Context, sc scope) error {
		p.listing(ctx, sc)
		return nil
	})
}

// listing pulls one scope and records its outcome. It reports whether an
// organisation listing was refused and must be replaced by the repository
// listings.
func (p *puller) listing(ctx context.Context, sc scope) (fallback bool) {
	rs := p.rs
	var err error
	if p.full {
		err = p.fullListing(ctx, sc)
	} else {
		err = p.deltaListing(ctx, sc)
	}
	log := rs.r.logger.With(slog.Int64(logging.KeyInstallationID, sc.inst.in.ID), slog.String("scope", sc.String()))
	switch {
	case err == nil:
		rs.update(func(rep *Report) { rep.ListingsComplete++ })
	case errors.Is(err, errRemovalUnconfirmed):
		// Listed to the end, but some findings it no longer holds could
		// not be checked at GitHub: a failure of the scope (nothing was
		// removed for them; the next full pull checks again).
		log.Warn("removals not confirmed", logging.Err(err))
		rs.update(func(rep *Report) { rep.ListingsComplete++ })
		rs.fail(sc.String(), err)
	case sc.repo == nil && ctx.Err() == nil && (errors.Is(err, ghclient.ErrForbidden) || errors.Is(err, ghclient.ErrNotFound) || errors.Is(err, ghclient.ErrFeatureOff)):
		log.Info("organisation endpoint refused; listing each repository", logging.Err(err))
		rs.update(func(rep *Report) { rep.ListingsFallback++ })
		return true
	case errors.Is(err, ghclient.ErrFeatureOff):
		rs.featureOff(sc.String(), err)
	default:
		log.Warn("listing failed", logging.Err(err))
		rs.fail(sc.String(), err)
	}
	return false
}

// fullListing walks every page of a scope with conditional requests,
// publishes the alerts that drifted, and, when the walk is complete, marks
// REMOVED the stored findings of the scope it no longer lists.
func (p *puller) fullListing(ctx context.Context, sc scope) error {
	rs := p.rs
	store := newPageStore(rs.r.state, p.fp)
	req := sc.request()
	req.ETags = store
	seen := map[alertRef]struct{}{}
	var newest time.Time
	err := rs.r.gh.ListAlerts(ctx, sc.inst.in.ID, req, func(pg ghclient.Page) (bool, error) {
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
			return true, nil
		}
		heads, err := decodeHeads(pg.Items)
		if err != nil {
			return false, fmt.Errorf("page %d: %w", pg.Number, err)
		}
		refs, pageNewest, err := p.processPage(ctx, sc, pg.Items, heads)
		if err != nil {
			return false, fmt.Errorf("page %d: %w", pg.Number, err)
		}
		rec := pageRecord{Alerts: make([][2]int64, len(refs))}
		for i, a := range refs {
			rec.Alerts[i] = [2]int64{a.Repo, a.Number}
			seen[a] = struct{}{}
		}
		if !pageNewest.IsZero() {
			rec.MaxUpdated = pageNewest.UTC().Format(time.RFC3339Nano)
		}
		newest = later(newest, pageNewest)
		store.stash(key, rec)
		return true, nil
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
		// last complete delta. Validators are kept only once the whole
		// walk succeeded, so a page 1 stored by a failed walk never
		// hides the pages it did not reach.
		etags = &deferredETags{kv: ghclient.NewKVETags(rs.r.state), pending: map[string]ghclient.Validator{}}
		req.ETags = etags
	}
	newest := wm
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
		_, pageNewest, err := p.processPage(ctx, sc, pg.Items[:cut], heads[:cut])
		if err != nil {
			return false, fmt.Errorf("page %d: %w", pg.Number, err)
		}
		newest = later(newest, pageNewest)
		return cut == len(heads), nil
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
	pending map[string]ghclient.Validator
}

func (d *deferredETags) Get(ctx context.Context, key string) (ghclient.Validator, bool, error) {
	return d.kv.Get(ctx, key)
}

func (d *deferredETags) Put(_ context.Context, key string, v ghclient.Validator) error {
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

// processPage compares the alerts of one page with ghas_findings and
// publishes the missing and changed ones, waiting for every ack. It
// returns the page's alerts and its newest updated_at.
func (p *puller) processPage(ctx context.Context, sc scope, items []json.RawMessage, heads []alertHead) ([]alertRef, time.Time, error) {
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
				return nil, time.Time{}, fmt.Errorf("alert %d without repository.id", h.Number)
			}
			refs[i].Repo = id.ID
		} else {
			return nil, time.Time{}, fmt.Errorf("alert %d without repository", h.Number)
		}
		newest = later(newest, parseTime(h.UpdatedAt))
	}
	p.rs.alertsSeen.Add(int64(len(items)))
	idx := make([]int, len(items))
	for i := range idx {
		idx[i] = i
	}
	err := forEach(ctx, p.rs.r.cfg.PageWorkers, idx, func(ctx context.Context, i int) error {
		repoRaw := heads[i].Repository
		if r := sc.inst.repos[refs[i].Repo]; r != nil {
			repoRaw = r.Raw
		}
		return p.alert(ctx, sc, items[i], repoRaw, false)
	})
	return refs, newest, err
}

// alert publishes one alert if ghas_findings lacks it or holds another
// document for it. With onlyNewer (an alert fetched on its own, whose
// response carries fields a listing lacks, such as a code scanning rule's
// full description and help), a stored document is replaced only by a
// newer one: at the same updated_at nothing changed at GitHub, and the
// next listing would only turn the document back.
func (p *puller) alert(ctx context.Context, sc scope, raw, repoRaw json.RawMessage, onlyNewer bool) error {
	rs := p.rs
	event := eventOf(sc.kind)
	body := envelope(transform.ActionReconcile, raw, repoRaw, sc.inst.in.ID)
	doc, err := p.maps.Alert(transform.Event{Name: event, Payload: body, Origin: stream.OriginReconcile, ReceivedAt: rs.receivedAt}, rs.receivedAt)
	if err != nil {
		// The processor would dead-letter it; say so in the report
		// without holding up the rest of the scope.
		rs.fail(sc.String()+" alert", err)
		return nil
	}
	stored, err := rs.r.storedDoc(ctx, doc.FindingKey)
	if err != nil {
		return err
	}
	kind := "new"
	if stored != nil {
		if stored.ContentHash() == doc.ContentHash() {
			return nil
		}
		if eventTime(stored).After(eventTime(&doc)) {
			rs.drift("stale")
			return nil
		}
		if onlyNewer && !eventTime(&doc).After(eventTime(stored)) {
			return nil
		}
		kind = "changed"
	}
	msgID := "reconcile:" + doc.FindingKey + ":" + sha(body)
	if err := rs.publish(ctx, stream.ReconcileSubject(event), event, msgID, body, stream.OriginReconcile, nil); err != nil {
		return err
	}
	rs.drift(kind)
	return nil
}

// storedDoc reads a finding from ghas_findings; nil when there is none or
// it is unreadable (the processor replaces an unreadable one).
func (r *Reconciler) storedDoc(ctx context.Context, key string) (*finding.Document, error) {
	e, err := r.findings.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get finding %s: %w", key, err)
	}
	d, err := finding.Decode(e.Value())
	if err != nil {
		return nil, nil
	}
	return &d, nil
}

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
		for _, n := range p.snap.byRepo[repos[i].ID][ds] {
			if _, ok := seen[alertRef{repos[i].ID, n}]; !ok {
				gone = append(gone, removal{
					event: eventOf(sc.kind), key: finding.Key(ds, repos[i].ID, n), number: n, repo: repos[i].Raw, inst: sc.inst.in.ID,
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
			for _, n := range nums {
				gone = append(gone, removal{event: event, key: finding.Key(ds, repo, n), number: n})
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
}

// remove publishes a reconcile_removed event for a stored finding that is
// not REMOVED already, once GitHub confirmed the alert is gone (see
// removal.confirm). Findings already REMOVED cost no request.
func (p *puller) remove(ctx context.Context, rm removal) error {
	rs := p.rs
	stored, err := rs.r.storedDoc(ctx, rm.key)
	if err != nil || stored == nil {
		return err
	}
	if f := stored.Finding(); f != nil && f.FindingStatus == finding.StatusRemoved {
		return nil
	}
	if rm.confirm != nil {
		if gone, err := p.confirmRemoval(ctx, rm); err != nil || !gone {
			return err
		}
	}
	repo := rm.repo
	if repo == nil {
		repo = repoOfDocument(stored)
	}
	body := envelope(transform.ActionReconcileRemoved, fmt.Appendf(nil, `{"number":%d}`, rm.number), repo, rm.inst)
	msgID := "reconcile-removed:" + rm.key + ":" + stored.ContentHash()
	if err := rs.publish(ctx, stream.ReconcileSubject(rm.event), rm.event, msgID, body, stream.OriginReconcile, nil); err != nil {
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
	var ae *ghclient.APIError
	switch {
	case err == nil:
		rs.removalsRefuted.Add(1)
		rs.r.logger.Info("a complete listing skipped an alert GitHub still has; not removed",
			slog.Int64(logging.KeyInstallationID, sc.inst.in.ID), slog.String(logging.KeyFindingKey, rm.key), slog.String("scope", sc.String()))
		return false, p.alert(ctx, sc, raw, sc.repo.Raw, true)
	case errors.Is(err, ghclient.ErrNotFound) && errors.As(err, &ae) && ae.Method == http.MethodGet:
		// The alert's own 404 (not, say, an installation token's).
		rs.removalsConfirmed.Add(1)
		return true, nil
	case ctx.Err() != nil:
		return false, ctx.Err()
	case errors.Is(err, ghclient.ErrFeatureOff):
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

// eventTime is a document's lastFoundOn, the processor's ordering.
func eventTime(d *finding.Document) time.Time {
	if f := d.Finding(); f != nil && f.LastFoundOn != nil {
		return parseTime(*f.LastFoundOn)
	}
	return time.Time{}
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// forEach calls fn for every item with at most workers at once. The first
// error cancels the rest and is returned.
func forEach[T any](ctx context.Context, workers int, items []T, fn func(context.Context, T) error) error {
	if len(items) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	ch := make(chan T)
	for range min(max(workers, 1), len(items)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range ch {
				if ctx.Err() != nil {
					continue
				}
				if err := fn(ctx, it); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
send:
	for _, it := range items {
		select {
		case ch <- it:
		case <-ctx.Done():
			break send
		}
	}
	close(ch)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}
