package processor

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/logging"
)

// settleScan ends one scan of an import: a complete scan fixes what its
// scope no longer lists (importabsent.go); the scope's record then holds
// the scan (a partial scan adds what it listed and moves no scan time).
func (p *Processor) settleScan(ctx context.Context, run *importRun, repo resolvedRepository, sr *scanRun, fingerprint string, importResults int, now time.Time, counts *[5]atomic.Int64) error {
	params := run.params
	ids := make([]string, 0, len(sr.seen))
	for id := range sr.seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if params.Complete {
		// Without a record the scope's findings come from the state
		// (importabsent.go).
		a := absentScan{repoID: repo.ID, facts: repo.Facts, filter: p.cfg.Scope, tool: sr.Tool, category: sr.Category, ref: sr.Ref,
			scannedAt: params.ScannedAt, now: now, seen: sr.seen}
		out, err := p.settleAbsent(ctx, a, sr.rec)
		if err != nil {
			return err
		}
		counts[3].Add(int64(out.fixed))
		counts[4].Add(int64(out.removed))
		if n := out.fixed + out.removed; n > 0 {
			p.metrics.Published.Add(uint64(n), finding.SAST)
		}
		if len(out.kept) > 0 { // none with a record
			ids = mergeSorted(ids, out.kept)
		}
	}
	next := scopeRecord{ScannedAt: params.ScannedAt, IDs: ids, Fingerprint: fingerprint, Results: sr.Results, ImportResults: importResults, Hashes: sr.hashes,
		Tool: sr.Tool, Category: sr.Category, Ref: sr.Ref}
	if !params.Complete {
		// A partial scan fixes nothing and moves no scan time; a later
		// complete scan still sees what it listed.
		next = scopeRecord{Tool: sr.Tool, Category: sr.Category, Ref: sr.Ref}
		if sr.rec != nil {
			next = *sr.rec
		}
		next.IDs = mergeSorted(next.IDs, ids)
		next.Hashes = nil
	}
	return putJSON(ctx, run.kvSt, sr.key, next, sr.rev) // another import of the scope raced: retried
}

// settleLate ends a scan a later complete scan of its scope was applied
// before: the findings this scan listed that the later one's record does
// not name are FIXED as of the later scan (imports.Fixed: unless a scan
// later still listed them). This scan may have written them before that
// record landed — two imports of a scope applied at once both read the
// record before either wrote it, and the later one's absent pass knew
// only the ids of the record it read; or this scan's processor was killed
// before writing its own record — and its redelivery, or its retry after
// its record's compare-and-set failed, is the last to see them.
func (p *Processor) settleLate(ctx context.Context, repo resolvedRepository, sr *scanRun, now time.Time, counts *[5]atomic.Int64) error {
	listed := make([]string, 0, len(sr.seen))
	for id := range sr.seen {
		listed = append(listed, id)
	}
	laterSeen := make(map[string]bool, len(sr.rec.IDs))
	for _, id := range sr.rec.IDs {
		laterSeen[id] = true
	}
	// As the later scan's absent pass would have, had its record named them.
	a := absentScan{repoID: repo.ID, facts: repo.Facts, filter: p.cfg.Scope, tool: sr.Tool, category: sr.Category, ref: sr.Ref,
		scannedAt: sr.rec.ScannedAt, now: now, seen: laterSeen}
	out, err := p.settleAbsent(ctx, a, &scopeRecord{IDs: listed})
	if err != nil {
		return err
	}
	counts[3].Add(int64(out.fixed))
	counts[4].Add(int64(out.removed))
	if n := out.fixed + out.removed; n > 0 {
		p.metrics.Published.Add(uint64(n), finding.SAST)
	}
	return nil
}

// importSources is the sorted list of sources that reported findings on
// the repository, with source added ("": none, the import is out of
// scope); when the list grows the asset is published again with it.
// GitHub's own sources are read from its stored findings the first time.
// The record is written on every import, so an active repository's list
// never expires.
func (p *Processor) importSources(ctx context.Context, kv jetstream.KeyValue, repoID int64, asset finding.Document, source string) ([]string, error) {
	have, rev, known, err := p.repositorySources(ctx, kv, repoID, nil, false)
	if err != nil {
		return nil, err
	}
	if source == "" {
		return have, nil
	}
	key := sourcesKeyPrefix + fmt.Sprint(repoID)
	next := mergeSorted(have, []string{source})
	if known && slices.Equal(next, have) {
		if err := putJSON(ctx, kv, key, next, rev); err != nil && !isCASConflict(err) {
			return nil, err
		}
		return next, nil
	}
	asset.AssetDetail.Sources = next
	if err := p.publishAsset(ctx, repoID, asset); err != nil {
		return nil, err
	}
	if err := putJSON(ctx, kv, key, next, rev); err != nil {
		return nil, err
	}
	p.logger.Info("repository gained a source", slog.Int64(logging.KeyRepositoryID, repoID), slog.String(logging.KeySource, source))
	return next, nil
}

// repositorySources reads the repository's sources record (known: there
// is one) and its revision. Without a record, or with withGitHub, the
// sources of GitHub's stored findings (one per dataset) are merged in;
// keys are the repository's stored keys (nil: listed here when needed).
func (p *Processor) repositorySources(ctx context.Context, kv jetstream.KeyValue, repoID int64, keys []string, withGitHub bool) (list []string, rev uint64, known bool, err error) {
	rec, rev, err := getJSON[[]string](ctx, kv, sourcesKeyPrefix+fmt.Sprint(repoID))
	if err != nil {
		return nil, 0, false, err
	}
	if rec != nil {
		list, known = *rec, true
		if !withGitHub {
			return list, rev, known, nil
		}
	}
	if keys == nil {
		if keys, err = p.store.KeysOfRepository(ctx, repoID); err != nil {
			return nil, 0, false, err
		}
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
			return nil, 0, false, err
		}
		if d != nil && d.Source != "" {
			list = mergeSorted(list, []string{d.Source})
		}
	}
	return list, rev, known, nil
}
