package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ghclient"
	inscope "github.com/ghas-relay/ghas-relay/internal/scope"
	"github.com/ghas-relay/ghas-relay/internal/transform"
)

// Scope in the reconciler: repositories get their organisation's custom
// property values (GET /orgs/{org}/properties/values, conditional, about
// one request per 100 repositories) in their custom_properties field, so
// documents are decorated like the processor's; alert kinds and
// repositories that are out of scope are not listed; alerts out of scope
// are not published, and a stored finding that left the scope is published
// so that the processor marks it REMOVED (out-of-scope).

// propertyLister is the custom property endpoint of *ghclient.App.
type propertyLister interface {
	ListPropertyValues(ctx context.Context, installationID int64, org string, etags ghclient.ETagStore, visit func(ghclient.PropertiesPage) (bool, error)) error
}

// outOfScopeHash is the page-record hash of an alert out of scope that is
// not stored: the record proves the page when the findings snapshot has no
// such key.
const outOfScopeHash = 1

// kinds are the alert kinds in scope.
func (p *puller) kinds() []ghclient.Kind {
	var out []ghclient.Kind
	for _, k := range ghclient.Kinds() {
		if p.rs.r.cfg.Scope.Type(transform.DatasetOf(eventOf(k))) {
			out = append(out, k)
		}
	}
	return out
}

// scopeRepositories gives an organisation's repositories their custom
// property values and returns those not known to be out of scope (the
// only ones listed on their own). Without the organisation permission the
// run goes on with what the repository objects carry, and the report says
// so.
func (p *puller) scopeRepositories(ctx context.Context, in ghclient.Installation, repos []ghclient.Repository) []ghclient.Repository {
	if in.IsOrganization() {
		if err := p.injectProperties(ctx, in, repos); err != nil {
			if errors.Is(err, ghclient.ErrForbidden) || errors.Is(err, ghclient.ErrNotFound) {
				p.rs.skip(fmt.Sprintf("custom properties of %s: refused (the App needs the organisation permission custom properties: read); ownership, property tags and INCLUDE_PROPERTIES use what repository objects carry", in.Account))
			} else if ctx.Err() == nil {
				p.rs.fail("custom properties of "+in.Account, err)
			}
		}
	}
	filter := p.rs.r.cfg.Scope
	if filter.All() {
		return repos
	}
	var out []ghclient.Repository
	for _, r := range repos {
		facts, err := inscope.ParseRepository(r.Raw)
		if err != nil || filter.Repository(facts) != inscope.Out {
			out = append(out, r)
		}
	}
	return out
}

// injectProperties reads the organisation's custom property values and
// writes them into each repository's custom_properties.
func (p *puller) injectProperties(ctx context.Context, in ghclient.Installation, repos []ghclient.Repository) error {
	gh, ok := p.rs.r.gh.(propertyLister)
	if !ok {
		return nil
	}
	store := &propertyPages{kv: p.rs.r.state, loaded: map[string][]ghclient.RepositoryProperties{}, pending: map[string][]ghclient.RepositoryProperties{}}
	values := map[int64]json.RawMessage{}
	err := gh.ListPropertyValues(ctx, in.ID, in.Account, store, func(pg ghclient.PropertiesPage) (bool, error) {
		// Not counted as listing pages: the report's requests count them.
		items := pg.Items
		key := ghclient.ETagKey(pg.URL)
		if pg.NotModified {
			items = store.taken(key)
		} else {
			store.stash(key, items)
		}
		for _, it := range items {
			values[it.RepositoryID] = it.Properties
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	for i := range repos {
		raw, ok := values[repos[i].ID]
		if !ok {
			continue
		}
		var list []inscope.PropertyValue
		if err := json.Unmarshal(raw, &list); err != nil {
			return fmt.Errorf("custom properties of %s: %w", repos[i].FullName, err)
		}
		obj := map[string]json.RawMessage{}
		for _, pv := range list {
			if len(pv.Value) > 0 && string(pv.Value) != "null" {
				obj[pv.Name] = pv.Value
			}
		}
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(repos[i].Raw, &doc); err != nil {
			return fmt.Errorf("repository %s: %w", repos[i].FullName, err)
		}
		b, _ := json.Marshal(obj)
		doc[inscope.PropertiesField] = b
		if repos[i].Raw, err = json.Marshal(doc); err != nil {
			return fmt.Errorf("repository %s: %w", repos[i].FullName, err)
		}
	}
	return nil
}

// propertyPages keeps, with each property values page's validator, the
// page's items in ghas_state ("props." and the page's ETag key), so that a
// 304 still gives them.
type propertyPages struct {
	kv      jetstream.KeyValue
	mu      sync.Mutex
	loaded  map[string][]ghclient.RepositoryProperties
	pending map[string][]ghclient.RepositoryProperties
}

type propertyRecord struct {
	ghclient.PageState
	Items []ghclient.RepositoryProperties `json:"repositories"`
}

func (s *propertyPages) Get(ctx context.Context, key string) (ghclient.PageState, bool, error) {
	e, err := s.kv.Get(ctx, "props."+key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return ghclient.PageState{}, false, nil
	}
	if err != nil {
		return ghclient.PageState{}, false, fmt.Errorf("get props.%s: %w", key, err)
	}
	var rec propertyRecord
	if json.Unmarshal(e.Value(), &rec) != nil || rec.ETag == "" || len(rec.Items) != rec.PageState.Items {
		return ghclient.PageState{}, false, nil
	}
	s.mu.Lock()
	s.loaded[key] = rec.Items
	s.mu.Unlock()
	return rec.PageState, true, nil
}

func (s *propertyPages) Put(ctx context.Context, key string, v ghclient.PageState) error {
	s.mu.Lock()
	items, ok := s.pending[key]
	delete(s.pending, key)
	s.mu.Unlock()
	if !ok {
		return nil
	}
	b, err := json.Marshal(propertyRecord{PageState: v, Items: items})
	if err != nil {
		return fmt.Errorf("put props.%s: %w", key, err)
	}
	if _, err := s.kv.Put(ctx, "props."+key, b); err != nil {
		return fmt.Errorf("put props.%s: %w", key, err)
	}
	return nil
}

func (s *propertyPages) taken(key string) []ghclient.RepositoryProperties {
	s.mu.Lock()
	defer s.mu.Unlock()
	items := s.loaded[key]
	delete(s.loaded, key)
	return items
}

func (s *propertyPages) stash(key string, items []ghclient.RepositoryProperties) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending[key] = items
}

// scoped decorates a document built from an alert event body like the
// processor does and decides it against the scope. skip means nothing is
// to be published for it; h is then the short hash its page record keeps.
// A stored finding that left the scope comes back as the REMOVED
// (out-of-scope) document the processor will write.
func (p *puller) scoped(doc *finding.Document, body []byte, stored *finding.Document) (h uint64, skip bool) {
	filter := p.rs.r.cfg.Scope
	facts, err := transform.RepositoryOf(body)
	if err != nil {
		return 0, false // the processor decides what to do with it
	}
	repo := scopeFacts(facts)
	if !repo.PropertiesKnown && stored != nil && stored.AssetDetail.CustomProperties != nil {
		repo.Properties, repo.PropertiesKnown = stored.AssetDetail.CustomProperties, true
	}
	filter.Decorate(&doc.AssetDetail, repo)
	if stored != nil {
		doc.AssetDetail.Sources = stored.AssetDetail.Sources
	}
	v := filter.Finding(doc, repo)
	if v == inscope.In {
		return 0, false
	}
	outside := stored == nil || stored.Finding() == nil || isOutOfScope(stored)
	switch {
	case outside && stored == nil:
		return outOfScopeHash, true
	case outside:
		return shortHash(stored.ContentHash()), true
	case v == inscope.Out:
		if f := doc.Finding(); f != nil {
			f.FindingStatus = finding.StatusRemoved
			f.RemovedReason = finding.RemovedOutOfScope
		}
	}
	return 0, false
}

// scopeFacts converts the transform's repository facts into the scope's.
func scopeFacts(f transform.RepositoryFacts) inscope.Repository {
	r := inscope.Repository{ID: f.ID, FullName: f.FullName, Archived: f.Archived, Fork: f.Fork, Topics: f.Topics, PropertiesKnown: f.HasProperties}
	if f.HasProperties {
		r.Properties = inscope.PropertiesFromDecoded(f.Properties)
	}
	return r
}

func isOutOfScope(d *finding.Document) bool {
	f := d.Finding()
	return f != nil && f.FindingStatus == finding.StatusRemoved && f.RemovedReason == finding.RemovedOutOfScope
}

// decorateAsset gives an asset built from a repository object the
// ownership and tags its findings carry.
func (p *puller) decorateAsset(a *finding.Document, raw []byte) {
	if facts, err := inscope.ParseRepository(raw); err == nil {
		p.rs.r.cfg.Scope.Decorate(&a.AssetDetail, facts)
	}
}

// archivedRefusal reports whether err is GitHub refusing Dependabot
// alerts of an archived repository: like a feature that is off, never a
// failure, and no reason to remove findings.
func archivedRefusal(sc scope, err error) bool {
	return sc.repo != nil && sc.repo.Archived && sc.kind == ghclient.Dependabot && errors.Is(err, ghclient.ErrForbidden) &&
		strings.Contains(strings.ToLower(err.Error()), "archived")
}

// removeOutOfScope publishes, in a full pull, the removal (out-of-scope) of
// every stored finding of an installation's repositories that are out of
// scope as a whole, and of alert kinds out of scope: they are not listed,
// so nothing else would tell the processor.
func (p *puller) removeOutOfScope(ctx context.Context, st *instState, all []ghclient.Repository) {
	filter := p.rs.r.cfg.Scope
	if !p.full || p.snap == nil || filter.All() {
		return
	}
	listed := map[int64]bool{}
	for _, r := range st.list {
		listed[r.ID] = true
	}
	var gone []removal
	for i := range all {
		r := &all[i]
		for _, k := range ghclient.Kinds() {
			ds := transform.DatasetOf(eventOf(k))
			if listed[r.ID] && filter.Type(ds) {
				continue
			}
			for _, e := range p.snap.byRepo[r.ID][ds] {
				gone = append(gone, removal{event: eventOf(k), key: finding.Key(ds, r.ID, e.number), number: e.number, repo: r.Raw, inst: st.in.ID,
					reason: finding.RemovedOutOfScope, snapRev: p.rs.startRev})
			}
		}
	}
	if err := forEach(ctx, p.rs.r.cfg.PageWorkers, gone, p.remove); err != nil && ctx.Err() == nil {
		p.rs.fail("out-of-scope findings of "+st.in.Account, err)
	}
}

// preferRepositories reports whether, for an organisation's alert kind,
// listing each repository in scope costs fewer requests than the
// organisation listing, which pages through the alerts of every
// repository, those left out by the filters too. The rule:
//   - every repository in scope (no repository filter): the organisation
//     listing;
//   - no repository in scope: the (empty) repository listings, nothing is
//     requested;
//   - else per-repository cost = Σ over the repositories in scope of
//     max(1, ⌈stored findings of the kind/100⌉), and the organisation's
//     alerts are estimated from the stored findings of the repositories
//     in scope scaled to all the organisation's repositories (at least one
//     alert per repository when nothing is stored, or in a delta pull,
//     which reads no snapshot), organisation cost = ⌈estimate/100⌉; the
//     repositories are listed when they cost less.
func (p *puller) preferRepositories(st *instState, k ghclient.Kind) bool {
	n, total := len(st.list), len(st.repos)
	if n >= total {
		return false
	}
	if n == 0 {
		return true
	}
	ds := transform.DatasetOf(eventOf(k))
	perRepo, stored := 0, 0
	for i := range st.list {
		c := 0
		if p.snap != nil {
			c = len(p.snap.byRepo[st.list[i].ID][ds])
		}
		stored += c
		perRepo += max(1, pagesOf(c))
	}
	estimate := total
	if stored > 0 {
		estimate = max(total, stored*total/n)
	}
	return perRepo < pagesOf(estimate)
}

// pagesOf is how many listing pages of 100 hold n items.
func pagesOf(n int) int { return (n + 99) / 100 }
