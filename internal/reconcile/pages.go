package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/ghclient"
	"github.com/ghas-relay/ghas-relay/internal/transform"
)

// alertRef names one alert of a listing: its repository and number.
type alertRef struct {
	Repo   int64
	Number int64
}

// pageRecord is what a full pull remembers of one listing page, under the
// page's ghclient.ETagKey in ghas_state: the validator ghclient needs for a
// conditional request, plus the alerts the page held and the newest
// updated_at among them. A 304 answer then still tells which alerts the
// listing holds (so a complete pull answered by 304s can mark REMOVED what
// it no longer lists) and how far the delta watermark goes. Maps is the
// fingerprint of the transformation maps the page was compared with: after
// a map change the page is fetched in full, so every alert is compared
// with documents built by the new maps.
//
// A 304 proves only that GitHub's page did not change, not that
// ghas_findings still holds what the page gives (a key deleted by hand, a
// document the processor did not take, an asset changed since). So the
// record also holds, for each alert, the short content hash of the
// document the page gives (Hashes, parallel to Alerts), and for each
// repository the short hash of its asset (Assets): the validator is used
// only when the findings snapshot of this run and the current assets match
// them; otherwise the page is fetched again and compared in full.
type pageRecord struct {
	ghclient.PageState
	Maps       string            `json:"maps,omitempty"`
	Alerts     [][2]int64        `json:"alerts,omitempty"`
	Hashes     []uint64          `json:"hashes,omitempty"`
	Assets     map[string]uint64 `json:"assets,omitempty"`
	MaxUpdated string            `json:"maxUpdated,omitempty"`
}

// pageProof checks a page record against what this run sees: the findings
// snapshot and the current assets.
type pageProof func(rec *pageRecord) bool

// pageStore is the ghclient.ETagStore of one full-pull listing. ghclient
// calls Get before each page's request and Put after the page was visited;
// the visit reads the record of a 304 page with taken and hands the record
// of a fetched page to Put with stash. One listing walks its pages one at a
// time, but the lock keeps it safe anyway.
type pageStore struct {
	kv    jetstream.KeyValue
	fp    string
	proof pageProof

	mu      sync.Mutex
	loaded  map[string]pageRecord
	pending map[string]pageRecord
}

func newPageStore(kv jetstream.KeyValue, mapsFingerprint string, proof pageProof) *pageStore {
	return &pageStore{kv: kv, fp: mapsFingerprint, proof: proof, loaded: map[string]pageRecord{}, pending: map[string]pageRecord{}}
}

// Get returns the validator of a page whose record is complete, was made
// with the current maps, and matches what ghas_findings holds.
func (s *pageStore) Get(ctx context.Context, key string) (ghclient.PageState, bool, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return ghclient.PageState{}, false, nil
	}
	if err != nil {
		return ghclient.PageState{}, false, fmt.Errorf("get %s: %w", key, err)
	}
	var rec pageRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil || rec.ETag == "" || rec.Maps != s.fp || len(rec.Alerts) != rec.Items ||
		len(rec.Hashes) != len(rec.Alerts) || (s.proof != nil && !s.proof(&rec)) {
		return ghclient.PageState{}, false, nil // fetch in full; the record is rewritten
	}
	s.mu.Lock()
	s.loaded[key] = rec
	s.mu.Unlock()
	return rec.PageState, true, nil
}

// Put stores the validator with the record the visit stashed.
func (s *pageStore) Put(ctx context.Context, key string, v ghclient.PageState) error {
	s.mu.Lock()
	rec, ok := s.pending[key]
	delete(s.pending, key)
	s.mu.Unlock()
	if !ok {
		return nil // the visit did not finish the page: remember nothing
	}
	rec.PageState = v
	rec.Maps = s.fp
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if _, err := s.kv.Put(ctx, key, b); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// taken returns (and forgets) the record Get loaded for a 304 page.
func (s *pageStore) taken(key string) (pageRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.loaded[key]
	delete(s.loaded, key)
	return rec, ok
}

// stash hands the record of a fetched page to the following Put.
func (s *pageStore) stash(key string, rec pageRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.loaded, key)
	s.pending[key] = rec
}

// mapsFingerprint identifies the maps in use: a hash of every dataset's rows.
func mapsFingerprint(m *transform.Maps) string {
	h := sha256.New()
	for _, ds := range transform.Datasets() {
		mp := m.Map(ds)
		if mp == nil {
			continue
		}
		b, _ := json.Marshal(mp.Rows())
		fmt.Fprintf(h, "%s:%d:", ds, len(b))
		h.Write(b)
	}
	// The priority table is part of every document the page gives.
	b, _ := json.Marshal(m.Priority())
	fmt.Fprintf(h, "priority:%d:", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)[:8])
}
