package processor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/imports"
	"github.com/ghas-relay/ghas-relay/internal/priority"
	"github.com/ghas-relay/ghas-relay/internal/scope"
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
	// Results is the number of results of that scan.
	Results int `json:"results"`
	// ImportResults is, in the record of an import's first scan, the
	// number of results of the whole import (it is written last: a
	// delivery of an import applied already is known by it).
	ImportResults int `json:"importResults,omitempty"`
	// Hashes holds, per id, the content hash of the document that scan
	// built: the same document built again by a scan at the same time is
	// what KV holds already, and is not applied again.
	Hashes   map[string]string `json:"hashes,omitempty"`
	Tool     string            `json:"tool"`
	Category string            `json:"category,omitempty"`
	Ref      string            `json:"ref,omitempty"`
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
		Repository: params.Repository, Tool: params.Tool, By: params.By, ReceivedAt: receivedAt(msg).UTC().Format(time.RFC3339)}
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

// scanRun is one scan of an import being applied (imports.Scans: the
// runs of one tool and category): its scope's record, and what it listed.
type scanRun struct {
	imports.Scan
	key string
	rec *scopeRecord
	rev uint64
	// done: a later scan of the scope, or this very import, was applied
	// already; the scan writes nothing of its own. late: a later one —
	// what this scan listed and the later one did not is FIXED as of it
	// (settleLate).
	done, late bool
	seen       map[string]bool
	// hashes are guarded by hashMu (workers write them).
	hashes map[string]string
	hashMu sync.Mutex
}

// importWork is one finding to write, with its scan.
type importWork struct {
	doc  finding.Document
	scan *scanRun
}

func (p *Processor) applyImport(ctx context.Context, run *importRun, data []byte) (string, error) {
	params := run.params
	repo, err := p.resolveRepository(ctx, run.kvSt, params.Repository) // importrepo.go
	if err != nil {
		return "", err
	}
	repoID, asset := repo.ID, repo.Asset
	// Imports are SAST findings of the repository, decided by the same
	// filters as GitHub's (importscope.go).
	filter := p.cfg.Scope
	inScope := filter.Type(finding.SAST) && filter.Repository(repo.Facts) == scope.In
	maps := p.maps.Current()
	im := maps.Imports()
	imJSON, _ := json.Marshal(im)
	fingerprint := shortHash(run.id, string(imJSON), asset.ContentHash())
	if fp := filter.Fingerprint(); fp != "" {
		fingerprint = shortHash(fingerprint, fp) // a change of the filters applies the import again
	}
	// The message names its first scan's scope: that scope's record tells,
	// before the file is read, that this very import was applied already
	// (the first scan's record is written last). A later scan's record
	// does not end it here: the file says what this scan may have written
	// before that record landed (settleLate).
	firstKey := scopeKeyPrefix + fmt.Sprint(repoID) + "." + shortHash(finding.ToolSlug(params.Tool), params.Category, params.Ref)
	if rec, _, err := getJSON[scopeRecord](ctx, run.kvSt, firstKey); err != nil {
		return "", err
	} else if rec != nil && rec.Fingerprint == fingerprint && params.Complete {
		n := rec.Results
		if rec.ImportResults > 0 {
			n = rec.ImportResults
		}
		run.status.Results, run.status.Findings.Unchanged = n, n
		return "unchanged", nil
	}
	file, err := imports.Open(params.Format, data)
	if err != nil {
		var pe *imports.ParseError
		if errors.As(err, &pe) {
			return "", fmt.Errorf("%w: %v", transform.ErrInvalid, err)
		}
		return "", err
	}
	// Every run counts on its own: one scan per tool and category
	// (imports.Scans), each settling its own scope.
	scans, err := imports.Scans(params, file.Summary)
	if err != nil {
		return "", fmt.Errorf("%w: %v", transform.ErrInvalid, err)
	}
	run.status.Tool = imports.Tools(scans)
	var (
		counts  [5]atomic.Int64 // new, changed, unchanged, fixed, out of scope
		results int
		runs    = make([]*scanRun, len(scans))
		pending []*scanRun
		late    []*scanRun
	)
	for i, sc := range scans {
		sr := &scanRun{Scan: sc, seen: map[string]bool{}, hashes: map[string]string{}}
		sr.key = scopeKeyPrefix + fmt.Sprint(repoID) + "." + shortHash(finding.ToolSlug(sc.Tool), sc.Category, sc.Ref)
		if sr.rec, sr.rev, err = getJSON[scopeRecord](ctx, run.kvSt, sr.key); err != nil {
			return "", err
		}
		if rec := sr.rec; rec != nil && (imports.CompareScanTimes(rec.ScannedAt, params.ScannedAt) > 0 || (rec.Fingerprint == fingerprint && params.Complete)) {
			// A later scan of the scope was applied already, or this very
			// import: the scan writes nothing of its own (a later one's
			// record settles what it listed: settleLate).
			sr.done = true
			sr.late = rec.Fingerprint != fingerprint
			if sr.late {
				late = append(late, sr)
			}
			results += rec.Results
			counts[2].Add(int64(rec.Results))
		} else {
			results += sc.Results
			pending = append(pending, sr)
		}
		runs[i] = sr
	}
	if len(pending) == 0 && len(late) == 0 {
		run.status.Results, run.status.Findings.Unchanged = results, int(counts[2].Load())
		return "unchanged", nil
	}
	var sources []string
	for _, sr := range pending {
		source := im.Vendor(sr.Tool, sr.Organization).Source
		if !inScope {
			source = "" // out of scope: the repository gains no source
		}
		if sources, err = p.importSources(ctx, run.kvSt, repoID, asset, source); err != nil {
			return "", err
		}
	}
	asset.AssetDetail.Sources = sources

	var (
		wg       sync.WaitGroup
		firstErr error
		errOnce  sync.Once
	)
	work := make(chan importWork)
	now := p.cfg.Now()
	for range importWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w := range work {
				doc, sr := w.doc, w.scan
				_, h, err := doc.Encode()
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					continue
				}
				id := doc.Findings[0].ExternalFindingID
				if fp := filter.Fingerprint(); fp != "" {
					h += "." + fp
				}
				sr.hashMu.Lock()
				sr.hashes[id] = h
				sr.hashMu.Unlock()
				if rec := sr.rec; rec != nil && rec.ScannedAt == params.ScannedAt && rec.Hashes[id] == h {
					counts[2].Add(1) // built the same by a scan of the same time: stored already
					continue
				}
				isNew, outOfScope := false, false
				o, err := p.store.Apply(ctx, doc.FindingKey, func(stored *finding.Document, _ uint64) (*finding.Document, error) {
					isNew = stored == nil || stored.FindingKey == ""
					d := doc
					d.Findings = append([]finding.Finding(nil), doc.Findings...)
					priority.Carry(&d, stored)
					var next *finding.Document
					next, outOfScope = scopedImport(filter, repo.Facts, &d, stored)
					return next, nil
				})
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					continue
				}
				switch {
				case outOfScope:
					counts[4].Add(1) // never stored, or stored and REMOVED now
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
	scanOf := imports.ScanOfRun(scans, len(file.Runs))
	keys := map[string]bool{} // one document per finding in one import
	perr := file.Each(func(r imports.Result) error {
		sr := runs[0]
		if params.Format == imports.FormatSARIF {
			if r.Run >= len(scanOf) || scanOf[r.Run] < 0 {
				return nil // a run no scan holds (no tool, no results)
			}
			sr = runs[scanOf[r.Run]]
		}
		if (sr.done && !sr.late) || sr.seen[r.ID] {
			return nil // the same finding twice in one scan
		}
		sr.seen[r.ID] = true
		if sr.done {
			return nil // a later scan's record decides (settleLate)
		}
		// Runs of one tool in two categories may list the same finding:
		// the first writes it, neither scan fixes it.
		key := finding.ImportKey(finding.SAST, repoID, sr.Tool, r.ID)
		if keys[key] {
			return nil
		}
		keys[key] = true
		if firstErr != nil {
			return firstErr
		}
		select {
		case work <- importWork{doc: imports.Document(im, &asset, repoID, sr.Scope, r, now), scan: sr}:
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
	for _, sr := range late {
		if err := p.settleLate(ctx, repo, sr, now, &counts); err != nil {
			return "", err
		}
	}
	// The first scan's record last (see above).
	for i := len(pending) - 1; i >= 0; i-- {
		sr := pending[i]
		importResults := 0
		if sr == runs[0] {
			importResults = file.Results
		}
		if err := p.settleScan(ctx, run, repo, sr, fingerprint, importResults, now, &counts); err != nil {
			return "", err
		}
	}
	run.status.Results = results
	run.status.Findings = imports.Counts{New: int(counts[0].Load()), Changed: int(counts[1].Load()), Unchanged: int(counts[2].Load()), Fixed: int(counts[3].Load()),
		OutOfScope: int(counts[4].Load())}
	if counts[0].Load()+counts[1].Load()+counts[3].Load() > 0 {
		return "processed", nil
	}
	return "unchanged", nil
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
