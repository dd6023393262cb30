package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

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
		// Read before any repository listing: a finding stored up to
		// this revision and held by a repository no installation lists
		// any more is gone from GitHub.
		if rs.startRev, err = r.store.LastRevision(ctx); err != nil {
			rs.fail("snapshot of "+stream.FindingsBucket, err)
		} else if snap, err = r.loadSnapshot(ctx); err != nil {
			rs.fail("snapshot of "+stream.FindingsBucket, err)
		}
	}
	maps := r.maps.Current()
	p := &puller{rs: rs, full: full, snap: snap, maps: maps, fp: mapsFingerprint(maps) + r.cfg.Scope.Fingerprint()}

	var mu sync.Mutex
	accessible := map[int64]bool{}
	accessKnown := true
	_ = forEach(ctx, r.cfg.Installations, insts, func(ctx context.Context, in ghclient.Installation) error {
		log := r.logger.With(slog.Int64(logging.KeyInstallationID, in.ID), slog.String(logging.KeyAccount, in.Account))
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
		listed := p.scopeRepositories(ctx, in, repos) // scope.go
		st := &instState{in: in, list: listed, repos: make(map[int64]*ghclient.Repository, len(repos))}
		mu.Lock()
		for i := range repos {
			st.repos[repos[i].ID] = &repos[i]
			accessible[repos[i].ID] = true
		}
		mu.Unlock()
		rs.update(func(rep *Report) { rep.Repositories += len(repos) })
		log.Info("pulling installation", slog.String(logging.KeyMode, rs.mode), slog.Int(logging.KeyRepositories, len(repos)))
		p.removeOutOfScope(ctx, st, repos) // scope.go
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
	// assets caches the short hash of each repository's asset by
	// dataset and repository id ("<ds>.<id>").
	assets sync.Map
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
		_ = forEach(ctx, len(p.kinds()), p.kinds(), func(ctx context.Context, k ghclient.Kind) error {
			if p.preferRepositories(st, k) || p.listing(ctx, scope{inst: st, kind: k}) { // scope.go
				perRepo(k)
			}
			return nil
		})
	} else {
		for _, k := range p.kinds() {
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
	log := rs.r.logger.With(slog.Int64(logging.KeyInstallationID, sc.inst.in.ID), slog.String(logging.KeyScope, sc.String()))
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
	case errors.Is(err, ghclient.ErrFeatureOff), archivedRefusal(sc, err): // scope.go
		rs.featureOff(sc.String(), err)
	default:
		log.Warn("listing failed", logging.Err(err))
		rs.fail(sc.String(), err)
	}
	return false
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
