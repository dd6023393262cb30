package processor

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ghclient"
	"github.com/ghas-relay/ghas-relay/internal/scope"
	"github.com/ghas-relay/ghas-relay/internal/state"
	"github.com/ghas-relay/ghas-relay/internal/transform"
)

// The repository an import names: resolved once (then recorded in
// ghas_imports under repo.<name>), its asset taken from a stored GitHub
// finding when there is one (so repository events keep it current), and
// its scope facts — name, archived flag, topics and custom properties from
// that asset, whether it is a fork from the REST repository object — so
// that imports are decided by the same filters as GitHub's findings.

// RepositoryLister is the REST access that resolves a repository the
// system has not seen; ghclient.App is one. A lister that also lists an
// organisation's custom property values (ghclient.App does) gives the
// resolved asset its ownership, tags and custom properties.
type RepositoryLister interface {
	Installations(ctx context.Context) ([]ghclient.Installation, error)
	Repositories(ctx context.Context, installationID int64) ([]ghclient.Repository, error)
}

// propertyValuesLister is the custom property endpoint of *ghclient.App.
type propertyValuesLister interface {
	ListPropertyValues(ctx context.Context, installationID int64, org string, etags ghclient.ETagStore, visit func(ghclient.PropertiesPage) (bool, error)) error
}

// repoRecord is a repository an import named, as resolved. Every import
// of the repository writes it again, so an active repository's record
// never expires.
type repoRecord struct {
	ID    int64            `json:"id"`
	Asset finding.Document `json:"asset"`
	// Key is a stored GitHub finding of the repository, read first for a
	// current asset (repository events keep it up to date).
	Key string `json:"key,omitempty"`
	// Fork is the repository's fork flag, known (ForkKnown) when it was
	// read from the REST repository object.
	Fork      bool `json:"fork,omitempty"`
	ForkKnown bool `json:"forkKnown,omitempty"`
}

// resolvedRepository is an import's repository: its id, its asset and the
// facts the scope decides on.
type resolvedRepository struct {
	ID    int64
	Asset finding.Document
	Facts scope.Repository
}

// repositoryLister is the App client imports resolve repositories with:
// Config.Repositories, else the enricher's client.
func (p *Processor) repositoryLister() RepositoryLister {
	if p.cfg.Repositories != nil {
		return p.cfg.Repositories
	}
	if e, ok := p.enricher.(*RESTEnricher); ok {
		l, _ := e.fetcher.(RepositoryLister)
		return l
	}
	return nil
}

// resolveRepository finds the repository an import names: the record of
// an earlier import, else the findings already stored, else the REST API
// with the App. The asset comes from a stored GitHub finding when there
// is one, so repository events keep it current.
func (p *Processor) resolveRepository(ctx context.Context, kv jetstream.KeyValue, name string) (resolvedRepository, error) {
	key := repoKeyPrefix + base64.RawURLEncoding.EncodeToString([]byte(strings.ToLower(name)))
	rec, rev, err := getJSON[repoRecord](ctx, kv, key)
	if err != nil {
		return resolvedRepository{}, err
	}
	var res resolvedRepository
	switch {
	case rec != nil:
		res.ID, res.Asset = rec.ID, rec.Asset
		if rec.Key != "" {
			if d, _, err := p.store.Get(ctx, rec.Key); err == nil && d != nil && d.ExternalAssetID != "" {
				res.Asset = assetOf(d)
				break
			}
		}
		if d, err := p.storedAsset(ctx, rec.ID); err != nil {
			return resolvedRepository{}, err
		} else if d != nil {
			res.Asset = *d
		}
	default:
		rec = &repoRecord{}
		id, asset, foundKey, err := p.findStoredRepository(ctx, name)
		if err != nil {
			return resolvedRepository{}, err
		}
		rec.Key = foundKey
		if id == 0 {
			fetched, err := p.fetchRepository(ctx, name)
			if err != nil {
				return resolvedRepository{}, err
			}
			id, asset = fetched.ID, fetched.Asset
			rec.Fork, rec.ForkKnown = fetched.Facts.Fork, true
		}
		res.ID, res.Asset = id, asset
	}
	if p.cfg.Scope.ExcludesForks() && !rec.ForkKnown && p.repositoryLister() != nil {
		// Whether it is a fork is in no stored document: asked once.
		fetched, err := p.fetchRepository(ctx, name)
		switch {
		case err == nil:
			rec.Fork, rec.ForkKnown = fetched.Facts.Fork, true
		case errors.Is(err, errUnresolved):
			rec.ForkKnown = true // the App cannot see it: not asked again, counted as not a fork
		default:
			return resolvedRepository{}, err
		}
	}
	res.Asset = stripAsset(res.Asset)
	rec.ID, rec.Asset = res.ID, res.Asset
	// Written on every import (compare-and-set; another import of the
	// repository writing it first is as good).
	if err := putJSON(ctx, kv, key, rec, rev); err != nil && !isCASConflict(err) {
		return resolvedRepository{}, err
	}
	res.Facts = scope.RepositoryOfDocument(&res.Asset)
	res.Facts.Fork = rec.Fork
	return res, nil
}

// storedAsset is the asset of a stored finding of the repository,
// preferring GitHub's own (nil: none stored).
func (p *Processor) storedAsset(ctx context.Context, repoID int64) (*finding.Document, error) {
	keys, err := p.store.KeysOfRepository(ctx, repoID)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(keys, func(a, b string) int { return strings.Count(a, ".") - strings.Count(b, ".") })
	for _, k := range keys {
		d, _, err := p.store.Get(ctx, k)
		if err != nil {
			return nil, err
		}
		if d != nil && d.ExternalAssetID != "" {
			a := assetOf(d)
			return &a, nil
		}
	}
	return nil, nil
}

// assetOf is the asset part of a stored document.
func assetOf(d *finding.Document) finding.Document { return stripAsset(*d) }

// stripAsset leaves only the asset part of a document.
func stripAsset(a finding.Document) finding.Document {
	a.Findings = nil
	a.FindingKey, a.Origin, a.ObservedAt = "", "", ""
	a.AssetDetail.Sources = nil
	return a
}

// findStoredRepository looks for the repository among the stored findings
// (once per repository: the result is recorded), and the key it was
// found on. 0: not found.
func (p *Processor) findStoredRepository(ctx context.Context, name string) (int64, finding.Document, string, error) {
	firstKey := map[int64]string{}
	err := p.store.Scan(ctx, func(e state.Entry) {
		if e.Deleted {
			return
		}
		_, repo, _, err := finding.ParseKey(e.Key)
		if err != nil && !errors.Is(err, finding.ErrImportKey) {
			return
		}
		if _, ok := firstKey[repo]; !ok {
			firstKey[repo] = e.Key
		}
	})
	if err != nil {
		return 0, finding.Document{}, "", err
	}
	for repo, k := range firstKey {
		d, _, err := p.store.Get(ctx, k)
		if err != nil {
			return 0, finding.Document{}, "", err
		}
		if d != nil && strings.EqualFold(d.AssetDetail.FullName, name) {
			if _, _, _, kerr := finding.ParseKey(k); kerr != nil {
				k = "" // an imported finding: no current asset there
			}
			return repo, assetOf(d), k, nil
		}
	}
	return 0, finding.Document{}, "", nil
}

// fetchRepository asks the REST API through the App's installations on
// the repository's owner, and, for an organisation, its custom property
// values, so that the asset is decorated like the reconciler's. Without
// App credentials it cannot.
func (p *Processor) fetchRepository(ctx context.Context, name string) (resolvedRepository, error) {
	lister := p.repositoryLister()
	if lister == nil {
		return resolvedRepository{}, fmt.Errorf("%w: %w: %s has no stored findings and no GitHub App is configured to look it up", transform.ErrInvalid, errUnresolved, name)
	}
	owner, _, _ := strings.Cut(name, "/")
	insts, err := lister.Installations(ctx)
	if err != nil {
		return resolvedRepository{}, fmt.Errorf("resolve %s: %w", name, err)
	}
	for _, inst := range insts {
		if !strings.EqualFold(inst.Account, owner) {
			continue
		}
		repos, err := lister.Repositories(ctx, inst.ID)
		if err != nil {
			return resolvedRepository{}, fmt.Errorf("resolve %s: %w", name, err)
		}
		for _, r := range repos {
			if !strings.EqualFold(r.FullName, name) {
				continue
			}
			facts, err := scope.ParseRepository(r.Raw)
			if err != nil {
				return resolvedRepository{}, fmt.Errorf("%w: resolve %s: %v", transform.ErrInvalid, name, err)
			}
			if inst.IsOrganization() && !facts.PropertiesKnown {
				if props, ok := p.propertyValues(ctx, inst, r.ID); ok {
					facts.Properties, facts.PropertiesKnown = props, true
				}
			}
			asset, err := p.maps.Current().Asset(finding.SAST, r.Raw, p.cfg.Now())
			if err != nil {
				return resolvedRepository{}, err
			}
			p.cfg.Scope.Decorate(&asset.AssetDetail, facts)
			return resolvedRepository{ID: r.ID, Asset: asset, Facts: facts}, nil
		}
	}
	return resolvedRepository{}, fmt.Errorf("%w: %w: %s is not in any installation of the App", transform.ErrInvalid, errUnresolved, name)
}

// propertyValues reads one repository's custom property values from its
// organisation (about one request per 100 repositories of the
// organisation). ok is false when they cannot be read (no permission:
// the asset then has none, as the reconciler's would).
func (p *Processor) propertyValues(ctx context.Context, inst ghclient.Installation, repoID int64) (map[string]finding.PropertyValue, bool) {
	pl, ok := p.repositoryLister().(propertyValuesLister)
	if !ok {
		return nil, false
	}
	var raw json.RawMessage
	err := pl.ListPropertyValues(ctx, inst.ID, inst.Account, nil, func(pg ghclient.PropertiesPage) (bool, error) {
		for _, it := range pg.Items {
			if it.RepositoryID == repoID {
				raw = it.Properties
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil || raw == nil {
		return nil, false
	}
	var list []scope.PropertyValue
	if json.Unmarshal(raw, &list) != nil {
		return nil, false
	}
	props, err := scope.PropertiesFromList(list)
	return props, err == nil
}
