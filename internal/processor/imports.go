package processor

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ghclient"
	"github.com/ghas-relay/ghas-relay/internal/imports"
	"github.com/ghas-relay/ghas-relay/internal/logging"
	"github.com/ghas-relay/ghas-relay/internal/state"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/transform"
)

// importWorkers is how many findings of one import are written at once.
const importWorkers = 32

// Records of imports kept in KV ghas_imports beside the statuses (the
// bucket the processor may write whole): the scope of a scan, the sources
// of a repository, and the repository a name resolved to. Every import
// rewrites its records, so they live as long as the bucket's max age
// after the last import of their scope.
const (
	scopeKeyPrefix   = "scope."
	sourcesKeyPrefix = "sources."
	repoKeyPrefix    = "repo."
)

// errUnresolved is an import whose repository the system cannot find.
var errUnresolved = errors.New("repository not found")

// scopeRecord is the last complete scan applied to one scope (repository,
// tool, category, ref): its time, the ids it listed, and a fingerprint of
// the import and map that produced it.
type scopeRecord struct {
	ScannedAt   string   `json:"scannedAt"`
	IDs         []string `json:"ids"`
	Fingerprint string   `json:"fingerprint,omitempty"`
	// Results is the number of results of that import.
	Results int `json:"results"`
	// Hashes holds, per id, the content hash of the document that scan
	// built: the same document built again by a scan at the same time is
	// what KV holds already, and is not applied again.
	Hashes   map[string]string `json:"hashes,omitempty"`
	Tool     string            `json:"tool"`
	Category string            `json:"category,omitempty"`
	Ref      string            `json:"ref,omitempty"`
}

// repoRecord is a repository an import named, as resolved once.
type repoRecord struct {
	ID    int64            `json:"id"`
	Asset finding.Document `json:"asset"`
	// Key is a stored GitHub finding of the repository, read first for a
	// current asset (repository events keep it up to date).
	Key string `json:"key,omitempty"`
}

// RepositoryLister is the REST access that resolves a repository the
// system has not seen; ghclient.App is one.
type RepositoryLister interface {
	Installations(ctx context.Context) ([]ghclient.Installation, error)
	Repositories(ctx context.Context, installationID int64) ([]ghclient.Repository, error)
}

// importRun is one import being applied.
type importRun struct {
	id     string
	params imports.Params
	kvImp  jetstream.KeyValue
	kvSt   jetstream.KeyValue // the records (ghas_imports too)
	status imports.Status
}

// importFile applies one message of ghas.import.<format>: one finding per
// result on the repository's asset, earlier findings of the scope that a
// complete scan no longer lists FIXED, the outcome recorded in
// ghas_imports. A repository that cannot be resolved fails the import
// (status failed, the message dead-lettered with the reason).
func (p *Processor) importFile(ctx context.Context, msg jetstream.Msg) (string, error) {
	id, params := imports.FromHeaders(msg.Headers())
	if id == "" || params.Repository == "" || params.ScannedAt == "" {
		return "", fmt.Errorf("%w: import message without its parameters", transform.ErrInvalid)
	}
	run := &importRun{id: id, params: params}
	var err error
	if run.kvImp, err = p.js.KeyValue(ctx, stream.ImportsBucket); err != nil {
		return "", fmt.Errorf("bucket %s: %w", stream.ImportsBucket, err)
	}
	run.kvSt = run.kvImp
	run.status = imports.Status{Import: id, Status: imports.StatusProcessed, Format: params.Format,
		Repository: params.Repository, Tool: params.Tool, ReceivedAt: receivedAt(msg).UTC().Format(time.RFC3339)}
	data, err := imports.BodyOf(msg.Headers(), msg.Data())
	if err != nil {
		return "", fmt.Errorf("%w: %v", transform.ErrInvalid, err)
	}
	result, err := p.applyImport(ctx, run, data)
	if err != nil {
		if !errors.Is(err, transform.ErrInvalid) {
			return "", err // transient: retried
		}
		run.status.Status, run.status.Error = imports.StatusFailed, err.Error()
	}
	run.status.ProcessedAt = p.cfg.Now().UTC().Format(time.RFC3339)
	if serr := imports.PutStatus(ctx, run.kvImp, run.status); serr != nil {
		return "", serr
	}
	return result, err
}

func (p *Processor) applyImport(ctx context.Context, run *importRun, data []byte) (string, error) {
	params := run.params
	repoID, asset, err := p.resolveRepository(ctx, run.kvSt, params.Repository)
	if err != nil {
		return "", err
	}
	maps := p.maps.Current()
	im := maps.Imports()
	vendor := im.Vendor(params.Tool, params.Organization)
	scope := imports.Scope{Tool: params.Tool, Organization: params.Organization, Category: params.Category, Ref: params.Ref, Commit: params.Commit, ScannedAt: params.ScannedAt}
	scopeKey := scopeKeyPrefix + fmt.Sprint(repoID) + "." + shortHash(finding.ToolSlug(params.Tool), params.Category, params.Ref)
	rec, recRev, err := getJSON[scopeRecord](ctx, run.kvSt, scopeKey)
	if err != nil {
		return "", err
	}
	imJSON, _ := json.Marshal(im)
	fingerprint := shortHash(run.id, string(imJSON), asset.ContentHash())
	if rec != nil && (rec.ScannedAt > params.ScannedAt || (rec.Fingerprint == fingerprint && params.Complete)) {
		// A later scan of the scope was applied already, or this very
		// import: nothing changes.
		run.status.Results, run.status.Findings.Unchanged = rec.Results, rec.Results
		return "unchanged", nil
	}
	sources, err := p.importSources(ctx, run.kvSt, repoID, asset, vendor.Source)
	if err != nil {
		return "", err
	}
	asset.AssetDetail.Sources = sources

	var (
		wg       sync.WaitGroup
		firstErr error
		errOnce  sync.Once
		counts   [4]atomic.Int64 // new, changed, unchanged, fixed
		seen     = map[string]bool{}
		hashes   = map[string]string{}
		hashMu   sync.Mutex
	)
	work := make(chan finding.Document)
	now := p.cfg.Now()
	for range importWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for doc := range work {
				_, h, err := doc.Encode()
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					continue
				}
				id := doc.Findings[0].ExternalFindingID
				hashMu.Lock()
				hashes[id] = h
				hashMu.Unlock()
				if rec != nil && rec.ScannedAt == params.ScannedAt && rec.Hashes[id] == h {
					counts[2].Add(1) // built the same by a scan of the same time: stored already
					continue
				}
				isNew := false
				o, err := p.store.Apply(ctx, doc.FindingKey, func(stored *finding.Document, _ uint64) (*finding.Document, error) {
					isNew = stored == nil || stored.FindingKey == ""
					d := doc
					d.Findings = append([]finding.Finding(nil), doc.Findings...)
					return imports.Lifecycle(&d, stored), nil
				})
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					continue
				}
				switch {
				case o != state.Written:
					counts[2].Add(1)
				case isNew:
					counts[0].Add(1)
				default:
					counts[1].Add(1)
				}
				if o == state.Written {
					p.metrics.Published.Inc(finding.SAST)
				}
			}
		}()
	}
	sum, perr := imports.Parse(params.Format, data, func(r imports.Result) error {
		if seen[r.ID] {
			return nil // the same finding twice in one file
		}
		seen[r.ID] = true
		if firstErr != nil {
			return firstErr
		}
		select {
		case work <- imports.Document(im, &asset, repoID, scope, r, now):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(work)
	wg.Wait()
	if perr != nil {
		var pe *imports.ParseError
		if errors.As(perr, &pe) {
			return "", fmt.Errorf("%w: %v", transform.ErrInvalid, perr)
		}
		return "", perr
	}
	if firstErr != nil {
		return "", firstErr
	}
	run.status.Results = sum.Results
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if params.Complete && rec != nil {
		for _, old := range rec.IDs {
			if seen[old] {
				continue
			}
			key := finding.ImportKey(finding.SAST, repoID, params.Tool, old)
			o, err := p.store.Apply(ctx, key, func(stored *finding.Document, _ uint64) (*finding.Document, error) {
				return imports.Fixed(stored, params.ScannedAt, now), nil
			})
			if err != nil {
				return "", err
			}
			if o == state.Written {
				counts[3].Add(1)
				p.metrics.Published.Inc(finding.SAST)
			}
		}
	}
	next := scopeRecord{ScannedAt: params.ScannedAt, IDs: ids, Fingerprint: fingerprint, Results: sum.Results, Hashes: hashes, Tool: params.Tool, Category: params.Category, Ref: params.Ref}
	if !params.Complete {
		// A partial scan fixes nothing and moves no scan time; a later
		// complete scan still sees what it listed.
		next = scopeRecord{Tool: params.Tool, Category: params.Category, Ref: params.Ref}
		if rec != nil {
			next = *rec
		}
		next.IDs = mergeSorted(next.IDs, ids)
		next.Hashes = nil
	}
	if err := putJSON(ctx, run.kvSt, scopeKey, next, recRev); err != nil {
		return "", err // another import of the scope raced: retried
	}
	run.status.Findings = imports.Counts{New: int(counts[0].Load()), Changed: int(counts[1].Load()), Unchanged: int(counts[2].Load()), Fixed: int(counts[3].Load())}
	if counts[0].Load()+counts[1].Load()+counts[3].Load() > 0 {
		return "processed", nil
	}
	return "unchanged", nil
}

// resolveRepository finds the repository an import names: the record of
// an earlier import, else the findings already stored, else the REST API
// with the App. The asset comes from a stored GitHub finding when there
// is one, so repository events keep it current.
func (p *Processor) resolveRepository(ctx context.Context, kv jetstream.KeyValue, name string) (int64, finding.Document, error) {
	key := repoKeyPrefix + base64.RawURLEncoding.EncodeToString([]byte(strings.ToLower(name)))
	rec, rev, err := getJSON[repoRecord](ctx, kv, key)
	if err != nil {
		return 0, finding.Document{}, err
	}
	if rec != nil {
		if rec.Key != "" {
			if d, _, err := p.store.Get(ctx, rec.Key); err == nil && d != nil && d.ExternalAssetID != "" {
				return rec.ID, assetOf(d), nil
			}
		}
		if d, err := p.storedAsset(ctx, rec.ID); err != nil {
			return 0, finding.Document{}, err
		} else if d != nil {
			return rec.ID, *d, nil
		}
		return rec.ID, rec.Asset, nil
	}
	id, asset, foundKey, err := p.findStoredRepository(ctx, name)
	if err != nil {
		return 0, finding.Document{}, err
	}
	if id == 0 {
		id, asset, err = p.fetchRepository(ctx, name)
		if err != nil {
			return 0, finding.Document{}, err
		}
	}
	asset.Findings = nil
	asset.FindingKey, asset.Origin, asset.ObservedAt = "", "", ""
	asset.AssetDetail.Sources = nil
	if err := putJSON(ctx, kv, key, repoRecord{ID: id, Asset: asset, Key: foundKey}, rev); err != nil && !isCASConflict(err) {
		return 0, finding.Document{}, err
	}
	return id, asset, nil
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
func assetOf(d *finding.Document) finding.Document {
	a := *d
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
// the repository's owner. Without App credentials it cannot.
func (p *Processor) fetchRepository(ctx context.Context, name string) (int64, finding.Document, error) {
	var lister RepositoryLister
	if e, ok := p.enricher.(*RESTEnricher); ok {
		lister, _ = e.fetcher.(RepositoryLister)
	}
	if lister == nil {
		return 0, finding.Document{}, fmt.Errorf("%w: %w: %s has no stored findings and no GitHub App is configured to look it up", transform.ErrInvalid, errUnresolved, name)
	}
	owner, _, _ := strings.Cut(name, "/")
	insts, err := lister.Installations(ctx)
	if err != nil {
		return 0, finding.Document{}, fmt.Errorf("resolve %s: %w", name, err)
	}
	for _, inst := range insts {
		if !strings.EqualFold(inst.Account, owner) {
			continue
		}
		repos, err := lister.Repositories(ctx, inst.ID)
		if err != nil {
			return 0, finding.Document{}, fmt.Errorf("resolve %s: %w", name, err)
		}
		for _, r := range repos {
			if strings.EqualFold(r.FullName, name) {
				asset, err := p.maps.Current().Asset(finding.SAST, r.Raw, p.cfg.Now())
				if err != nil {
					return 0, finding.Document{}, err
				}
				return r.ID, asset, nil
			}
		}
	}
	return 0, finding.Document{}, fmt.Errorf("%w: %w: %s is not in any installation of the App", transform.ErrInvalid, errUnresolved, name)
}

// importSources is the sorted list of sources that reported findings on
// the repository, with source added; when the list grows the asset is
// published again with it. GitHub's own sources are read from its stored
// findings the first time.
func (p *Processor) importSources(ctx context.Context, kv jetstream.KeyValue, repoID int64, asset finding.Document, source string) ([]string, error) {
	key := sourcesKeyPrefix + fmt.Sprint(repoID)
	rec, rev, err := getJSON[[]string](ctx, kv, key)
	if err != nil {
		return nil, err
	}
	var have []string
	if rec != nil {
		have = *rec
	} else {
		keys, err := p.store.KeysOfRepository(ctx, repoID)
		if err != nil {
			return nil, err
		}
		byDataset := map[string]bool{}
		for _, k := range keys {
			ds, _, _, kerr := finding.ParseKey(k)
			if kerr != nil || byDataset[ds] {
				continue // imports record their own source
			}
			byDataset[ds] = true
			d, _, err := p.store.Get(ctx, k)
			if err != nil {
				return nil, err
			}
			if d != nil && d.Source != "" {
				have = mergeSorted(have, []string{d.Source})
			}
		}
	}
	next := mergeSorted(have, []string{source})
	if rec != nil && slices.Equal(next, have) {
		return next, nil
	}
	asset.AssetDetail.Sources = next
	if err := p.publishAsset(ctx, repoID, asset); err != nil {
		return nil, err
	}
	if err := putJSON(ctx, kv, key, next, rev); err != nil {
		return nil, err
	}
	p.logger.Info("repository gained a source", slog.Int64(logging.KeyRepositoryID, repoID), slog.String("source", source))
	return next, nil
}

func mergeSorted(a, b []string) []string {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

func shortHash(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:8])
}

// getJSON reads a JSON record and its revision (nil, 0 when absent).
func getJSON[T any](ctx context.Context, kv jetstream.KeyValue, key string) (*T, uint64, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get %s: %w", key, err)
	}
	var v T
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return nil, e.Revision(), nil // unreadable: replaced
	}
	return &v, e.Revision(), nil
}

// putJSON writes a record under compare-and-set on rev (0: must not exist).
func putJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any, rev uint64) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	if rev == 0 {
		_, err = kv.Create(ctx, key, b)
	} else {
		_, err = kv.Update(ctx, key, b, rev)
	}
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

func isCASConflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) || (errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence)
}
