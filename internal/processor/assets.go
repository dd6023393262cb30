package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/logging"
	"github.com/ghas-relay/ghas-relay/internal/priority"
	"github.com/ghas-relay/ghas-relay/internal/scope"
	"github.com/ghas-relay/ghas-relay/internal/state"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/transform"
)

// Assets and scope: every finding document carries its repository's
// ownership, tags and custom properties (scope.Filter.Decorate), and only
// findings in scope (Config.Scope) are stored. A repository or
// custom_property_values event updates the asset on
// ghas.assets.repository.<id> and every stored finding of the repository in
// one pass; a stored finding that leaves the scope is written once as
// REMOVED with removedReason out-of-scope.

// Results of events decided by the scope (metric label of
// ghas_processor_events_total).
const resultOutOfScope = "out_of_scope"

// factsOf converts the transform's repository facts into the scope's.
func factsOf(f transform.RepositoryFacts) scope.Repository {
	r := scope.Repository{ID: f.ID, FullName: f.FullName, Archived: f.Archived, Fork: f.Fork, Topics: f.Topics, PropertiesKnown: f.HasProperties}
	if f.HasProperties {
		r.Properties = scope.PropertiesFromDecoded(f.Properties)
	}
	return r
}

// alertScope decides one alert event's finding against the scope.
type alertScope struct {
	filter  *scope.Filter
	doc     *finding.Document
	repo    scope.Repository
	dropped bool // the finding is out of scope and nothing was stored for it
}

// scopeOf reads the repository facts of an alert event whose document the
// maps built.
func (p *Processor) scopeOf(ev transform.Event, doc *finding.Document) (*alertScope, error) {
	facts, err := transform.RepositoryOf(ev.Payload)
	if err != nil {
		return nil, err
	}
	return &alertScope{filter: p.cfg.Scope, doc: doc, repo: factsOf(facts)}, nil
}

// wrap decorates the document's asset and applies the scope around next,
// the ordering of the alert's update:
//   - in scope: next decides;
//   - out of scope: nothing is stored for a finding that is not stored (or
//     already REMOVED as out of scope); a stored one is written as REMOVED
//     with removedReason out-of-scope if next would take the event;
//   - unknown (INCLUDE_PROPERTIES without the repository's properties): a
//     stored finding is updated, a new one waits for the next full pull.
//
// Properties the event lacks are carried over from the stored document,
// and so are the sources and the corroboration.
func (a *alertScope) wrap(next state.UpdateFunc) state.UpdateFunc {
	return func(stored *finding.Document, rev uint64) (*finding.Document, error) {
		a.dropped = false
		repo := a.repo
		a.doc.AssetDetail.CustomProperties = nil
		if !repo.PropertiesKnown && stored != nil && stored.AssetDetail.CustomProperties != nil {
			a.doc.AssetDetail.CustomProperties = stored.AssetDetail.CustomProperties
			repo.Properties, repo.PropertiesKnown = stored.AssetDetail.CustomProperties, true
		}
		a.filter.Decorate(&a.doc.AssetDetail, repo)
		if stored != nil {
			a.doc.AssetDetail.Sources = stored.AssetDetail.Sources
		}
		priority.Carry(a.doc, stored) // a priority input the event cannot know
		carryTriage(a.doc, stored)    // the relay's decision (decisionapply.go)
		v := a.filter.Finding(a.doc, repo)
		outOfScope := stored == nil || stored.Finding() == nil || isOutOfScope(stored)
		switch {
		case v == scope.Out && outOfScope:
			a.dropped = true
			return nil, nil
		case v == scope.Unknown && outOfScope:
			a.dropped = true
			return nil, nil
		case v == scope.Out:
			d, err := next(stored, rev)
			if d == nil || err != nil {
				return d, err
			}
			return removedOutOfScope(d), nil
		}
		return next(stored, rev)
	}
}

// result is the metric label of the alert's outcome.
func (a *alertScope) result(o state.Outcome) string {
	if a.dropped && o != state.Written {
		return resultOutOfScope
	}
	return o.String()
}

// isOutOfScope reports whether a stored document is REMOVED as out of scope.
func isOutOfScope(d *finding.Document) bool {
	f := d.Finding()
	return f != nil && f.FindingStatus == finding.StatusRemoved && f.RemovedReason == finding.RemovedOutOfScope
}

// removedOutOfScope is a copy of d marked REMOVED, out of scope.
func removedOutOfScope(d *finding.Document) *finding.Document {
	c := *d
	c.Findings = append([]finding.Finding(nil), d.Findings...)
	if f := c.Finding(); f != nil {
		f.FindingStatus = finding.StatusRemoved
		f.RemovedReason = finding.RemovedOutOfScope
	}
	return &c
}

// repositoryEvent handles repository events: deleted marks the
// repository's findings REMOVED; every other action (edited, archived,
// unarchived, renamed, transferred, publicized, privatized, and actions
// GitHub adds) refreshes the asset.
func (p *Processor) repositoryEvent(ctx context.Context, ev transform.Event) (string, error) {
	var re repoEvent
	if err := json.Unmarshal(ev.Payload, &re); err != nil {
		return "", fmt.Errorf("%w: repository event: %v", transform.ErrInvalid, err)
	}
	var id repoIdentity
	if len(re.Repository) == 0 || json.Unmarshal(re.Repository, &id) != nil || id.ID == 0 {
		return "", fmt.Errorf("%w: repository event without repository.id", transform.ErrInvalid)
	}
	if re.Action == "deleted" {
		return p.removeRepository(ctx, id.ID, ev.ReceivedAt, finding.RemovedRepositoryDeleted)
	}
	facts, err := scope.ParseRepository(re.Repository)
	if err != nil {
		return "", fmt.Errorf("%w: %v", transform.ErrInvalid, err)
	}
	return p.refreshRepository(ctx, ev, re.Repository, facts, nil)
}

// propertyValuesEvent is a custom_property_values event.
type propertyValuesEvent struct {
	Action            string                `json:"action"`
	Repository        json.RawMessage       `json:"repository"`
	NewPropertyValues []scope.PropertyValue `json:"new_property_values"`
}

// customPropertyValues handles custom_property_values events: the new
// values are laid over what the repository object (or else the stored
// findings) had, and the asset is refreshed.
func (p *Processor) customPropertyValues(ctx context.Context, ev transform.Event) (string, error) {
	var pe propertyValuesEvent
	if err := json.Unmarshal(ev.Payload, &pe); err != nil {
		return "", fmt.Errorf("%w: custom_property_values event: %v", transform.ErrInvalid, err)
	}
	if len(pe.Repository) == 0 {
		return "", fmt.Errorf("%w: custom_property_values event without repository", transform.ErrInvalid)
	}
	facts, err := scope.ParseRepository(pe.Repository)
	if err != nil || facts.ID == 0 {
		return "", fmt.Errorf("%w: custom_property_values event: repository.id: %v", transform.ErrInvalid, err)
	}
	changes := map[string]*finding.PropertyValue{}
	for _, nv := range pe.NewPropertyValues {
		one, err := scope.PropertiesFromList([]scope.PropertyValue{nv})
		if err != nil {
			return "", fmt.Errorf("%w: custom_property_values event: %v", transform.ErrInvalid, err)
		}
		if v, ok := one[nv.Name]; ok {
			changes[nv.Name] = &v
		} else {
			changes[nv.Name] = nil // the property lost its value
		}
	}
	return p.refreshRepository(ctx, ev, pe.Repository, facts, changes)
}

// refreshRepository publishes the repository's asset and updates the asset
// of every stored finding of the repository in one pass. changes (name →
// new value, nil: no value) are laid over the repository's properties.
func (p *Processor) refreshRepository(ctx context.Context, ev transform.Event, repoRaw json.RawMessage, facts scope.Repository, changes map[string]*finding.PropertyValue) (string, error) {
	keys, err := p.store.KeysOfRepository(ctx, facts.ID)
	if err != nil {
		return "", err
	}
	var first *finding.Document
	if len(keys) > 0 {
		if first, _, err = p.store.Get(ctx, keys[0]); err != nil {
			return "", err
		}
	}
	if !facts.PropertiesKnown && first != nil && first.AssetDetail.CustomProperties != nil {
		facts.Properties, facts.PropertiesKnown = first.AssetDetail.CustomProperties, true
	}
	if len(changes) > 0 {
		merged := map[string]finding.PropertyValue{}
		for k, v := range facts.Properties {
			merged[k] = v
		}
		for k, v := range changes {
			if v == nil {
				delete(merged, k)
			} else {
				merged[k] = *v
			}
		}
		facts.Properties, facts.PropertiesKnown = merged, true
	}
	// The repository's full list of sources, when imports recorded one:
	// every finding's asset and the published asset carry it.
	recorded, err := p.sourcesOf(ctx, facts.ID, keys)
	if err != nil {
		return "", err
	}
	sources := recorded
	if sources == nil && first != nil {
		sources = first.AssetDetail.Sources
	}
	filter := p.cfg.Scope
	maps := p.maps.Current()
	now := p.cfg.Now()
	if filter.Repository(facts) != scope.Out {
		asset, err := maps.Asset(finding.SAST, repoRaw, now)
		if err != nil {
			return "", err
		}
		filter.Decorate(&asset.AssetDetail, facts)
		asset.AssetDetail.Sources = sources
		if err := p.publishAsset(ctx, facts.ID, asset); err != nil {
			return "", err
		}
	}
	result := "unchanged"
	for _, k := range keys {
		ds, _, _, _ := finding.ParseKey(k)
		a, err := maps.Asset(ds, repoRaw, now)
		if err != nil {
			return "", err
		}
		o, err := p.store.Apply(ctx, k, func(stored *finding.Document, _ uint64) (*finding.Document, error) {
			if stored == nil || stored.Finding() == nil {
				return nil, nil
			}
			// An older repository event never overwrites a newer asset.
			if a.AssetDetail.SourceUpdatedAt != "" && stored.AssetDetail.SourceUpdatedAt > a.AssetDetail.SourceUpdatedAt {
				return nil, nil
			}
			d := *stored
			d.ExternalAssetID = a.ExternalAssetID
			d.VendorAssetID = a.VendorAssetID
			d.AssetDetail = a.AssetDetail
			d.AssetDetail.Sources = stored.AssetDetail.Sources
			if recorded != nil {
				d.AssetDetail.Sources = mergeSorted(recorded, stored.AssetDetail.Sources)
			}
			d.AssetDetail.CustomProperties = stored.AssetDetail.CustomProperties
			filter.Decorate(&d.AssetDetail, facts)
			d.ObservedAt = a.ObservedAt
			d.Origin = ev.Origin
			if filter.Finding(&d, facts) == scope.Out && stored.Finding().FindingStatus != finding.StatusRemoved {
				return removedOutOfScope(&d), nil
			}
			return &d, nil
		})
		if err != nil {
			return "", err
		}
		if o == state.Written {
			result = "processed"
			p.metrics.Published.Inc(ds)
		}
	}
	if len(keys) > 0 {
		p.logger.Debug("repository refreshed", slog.Int64(logging.KeyRepositoryID, facts.ID), slog.String(logging.KeyEvent, ev.Name),
			slog.Int(logging.KeyFindings, len(keys)), slog.String(logging.KeyResult, result))
	}
	return result, nil
}

// sourcesOf is the repository's full sorted list of sources when imports
// recorded one (KV ghas_imports), with the sources of GitHub's stored
// findings merged in; nil when the repository has no record.
func (p *Processor) sourcesOf(ctx context.Context, repoID int64, keys []string) ([]string, error) {
	kv, err := p.js.KeyValue(ctx, stream.ImportsBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", stream.ImportsBucket, err)
	}
	list, rev, known, err := p.repositorySources(ctx, kv, repoID, keys, true)
	if err != nil || !known {
		return nil, err
	}
	// GitHub findings stored after the record was made add their source.
	if err := putJSON(ctx, kv, sourcesKeyPrefix+fmt.Sprint(repoID), list, rev); err != nil && !isCASConflict(err) {
		return nil, err
	}
	return list, nil
}
