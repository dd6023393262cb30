package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/state"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// Corroboration: a finding is corroborated when an ACTIVE finding of
// another source on the same repository has the same correlationKey. The
// processor keeps an index of the ACTIVE findings of each correlation key
// in KV ghas_state, key corr.<repository_id>.<correlationKey>, and touches
// it only when a finding enters, leaves or moves within it (a new ACTIVE
// finding with a key, a status change, a new key or source): an event that
// changes none of these costs no read, whatever the size of the
// repository. When a finding moves, the index is updated first, then every
// other member of the entries it left and joined whose source differs (a
// member of the same source cannot gain or lose corroboration by it) is
// decided again (one write each, for those whose corroboration changed),
// then the finding
// itself is written with its own corroboration: a processor that dies on
// the way leaves the event unacked, and the redelivery finds the finding
// still to move and does it all again (each step is idempotent).

// corrKeyPrefix starts the keys of the correlation index in ghas_state.
const corrKeyPrefix = "corr."

// maxIndexAttempts bounds the compare-and-set loop on one index entry.
const maxIndexAttempts = 16

// membership is a finding's place in the correlation index: its
// correlation key and source while it is ACTIVE with a key; the zero value
// when it is not in the index.
type membership struct {
	key, source string
}

func membershipOf(d *finding.Document) membership {
	if d == nil {
		return membership{}
	}
	f := d.Finding()
	if f == nil || f.FindingStatus != finding.StatusActive || f.CorrelationKey == "" {
		return membership{}
	}
	return membership{key: f.CorrelationKey, source: d.Source}
}

// corrMember is one ACTIVE finding of an index entry.
type corrMember struct {
	Key    string `json:"key"`
	Source string `json:"source"`
}

// corrEntry is the value of an index key: its members sorted by key.
type corrEntry struct {
	Members []corrMember `json:"members"`
}

// corroborates reports whether a member of another source than source,
// other than key, is in ms.
func corroborates(ms []corrMember, key, source string) bool {
	for _, m := range ms {
		if m.Key != key && m.Source != source {
			return true
		}
	}
	return false
}

// corrIndexKey is the index key of a correlation key on a repository.
func corrIndexKey(repoID int64, ck string) string {
	return corrKeyPrefix + strconv.FormatInt(repoID, 10) + "." + ck
}

// repoOfKey is the repository id of a finding key (GitHub's or imported).
func repoOfKey(key string) int64 {
	_, repoID, _, _ := finding.ParseKey(key) // an imported key still gives its repository
	return repoID
}

// correlate moves the finding of fin from old to cur in the index, decides
// the other members of both entries again, and returns whether the finding
// is corroborated in cur's entry.
func (p *Processor) correlate(ctx context.Context, fin *finisher, old, cur membership) (bool, error) {
	repoID := repoOfKey(fin.key)
	var others []string
	corroborated := false
	for _, ck := range []string{old.key, cur.key} {
		if ck == "" || slices.Contains(fin.last, ck) {
			continue // not in the index, or already done (old and cur share the key)
		}
		var was []string // the sources the finding had in the entry
		ms, err := p.updateIndex(ctx, repoID, ck, func(ms []corrMember) []corrMember {
			was = was[:0]
			ms = slices.DeleteFunc(ms, func(m corrMember) bool {
				if m.Key == fin.key {
					was = append(was, m.Source)
				}
				return m.Key == fin.key
			})
			if ck == cur.key {
				ms = append(ms, corrMember{Key: fin.key, Source: cur.source})
				slices.SortFunc(ms, func(a, b corrMember) int { return strings.Compare(a.Key, b.Key) })
			}
			return ms
		})
		if err != nil {
			return false, err
		}
		fin.touch(ck)
		moved := slices.Clone(was)
		if ck == old.key {
			moved = append(moved, old.source)
		}
		if ck == cur.key {
			moved = append(moved, cur.source)
		}
		others = appendAffected(others, ms, fin.key, moved)
		if ck == cur.key {
			corroborated = corroborates(ms, fin.key, cur.source)
		}
	}
	// Even when the index already said so (a redelivery after a crash),
	// the others are decided again: their documents may not say it yet.
	for _, o := range others {
		if err := p.recheck(ctx, o); err != nil {
			return false, err
		}
	}
	return corroborated, nil
}

// settle sets the index entries cks back to what the finding's stored
// document says (m) and decides their other members again.
func (p *Processor) settle(ctx context.Context, key string, cks []string, m membership) error {
	repoID := repoOfKey(key)
	for _, ck := range cks {
		var was []string
		ms, err := p.updateIndex(ctx, repoID, ck, func(ms []corrMember) []corrMember {
			was = was[:0]
			ms = slices.DeleteFunc(ms, func(x corrMember) bool {
				if x.Key == key {
					was = append(was, x.Source)
				}
				return x.Key == key
			})
			if m.key == ck {
				ms = append(ms, corrMember{Key: key, Source: m.source})
				slices.SortFunc(ms, func(a, b corrMember) int { return strings.Compare(a.Key, b.Key) })
			}
			return ms
		})
		if err != nil {
			return err
		}
		moved := slices.Clone(was)
		if m.key == ck {
			moved = append(moved, m.source)
		}
		for _, o := range appendAffected(nil, ms, key, moved) {
			if err := p.recheck(ctx, o); err != nil {
				return err
			}
		}
	}
	return nil
}

// appendAffected appends to out the members of ms, other than key, whose
// corroboration a finding of the sources moved entering or leaving the
// entry may change: those of another source. A member of the same source
// is corroborated by other sources only, so such a move cannot change it.
func appendAffected(out []string, ms []corrMember, key string, moved []string) []string {
	for _, m := range ms {
		if m.Key == key || slices.Contains(out, m.Key) {
			continue
		}
		for _, s := range moved {
			if m.Source != s {
				out = append(out, m.Key)
				break
			}
		}
	}
	return out
}

// recheck decides the corroboration of a stored ACTIVE finding again from
// the index, and writes it (with its new priority) if it changed. A
// finding that is not ACTIVE keeps its corroboration.
func (p *Processor) recheck(ctx context.Context, key string) error {
	now := p.cfg.Now()
	o, err := p.store.Apply(ctx, key, func(stored *finding.Document, _ uint64) (*finding.Document, error) {
		m := membershipOf(stored)
		if m.key == "" {
			return nil, nil
		}
		ms, err := p.readIndex(ctx, repoOfKey(key), m.key)
		if err != nil {
			return nil, err
		}
		v := corroborates(ms, key, m.source)
		if v == stored.Finding().Corroborated {
			return stored, nil // its priority is still decided again
		}
		d := *stored
		d.Findings = slices.Clone(stored.Findings)
		d.Findings[0].Corroborated = v
		d.ObservedAt = now.UTC().Format(time.RFC3339)
		return &d, nil
	})
	if err != nil {
		return fmt.Errorf("corroboration of %s: %w", key, err)
	}
	if o == state.Written {
		ds, _, _, _ := finding.ParseKey(key)
		p.metrics.Published.Inc(ds)
	}
	return nil
}

// indexKV is the bucket of the correlation index (ghas_state), looked up
// once.
func (p *Processor) indexKV(ctx context.Context) (jetstream.KeyValue, error) {
	p.corr.mu.Lock()
	defer p.corr.mu.Unlock()
	if p.corr.kv != nil {
		return p.corr.kv, nil
	}
	kv, err := p.js.KeyValue(ctx, stream.StateBucket)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", stream.StateBucket, err)
	}
	p.corr.kv = kv
	return kv, nil
}

// readIndex reads the members of an index entry (none when absent).
func (p *Processor) readIndex(ctx context.Context, repoID int64, ck string) ([]corrMember, error) {
	ms, _, err := p.getIndex(ctx, repoID, ck)
	return ms, err
}

func (p *Processor) getIndex(ctx context.Context, repoID int64, ck string) ([]corrMember, uint64, error) {
	kv, err := p.indexKV(ctx)
	if err != nil {
		return nil, 0, err
	}
	k := corrIndexKey(repoID, ck)
	e, err := kv.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get %s: %w", k, err)
	}
	var ce corrEntry
	if json.Unmarshal(e.Value(), &ce) != nil || ce.Members == nil {
		ce.Members = []corrMember{} // unreadable: rebuilt from the findings that move next
	}
	p.corr.cache.put(k, indexEntry{rev: e.Revision(), members: ce.Members})
	return ce.Members, e.Revision(), nil
}

// updateIndex applies fn to an index entry under compare-and-set and
// returns the members it left. An entry left empty stays, empty: the next
// finding of the key updates it in one request, where a deleted key would
// cost a create over its delete marker.
//
// The first attempt trusts this instance's cache of the entry (or, for an
// entry it never saw, assumes there is none and creates it) and lets the
// compare-and-set tell it otherwise: a finding that moves costs one
// request to the index. A decision not to write is only taken on what KV
// says.
func (p *Processor) updateIndex(ctx context.Context, repoID int64, ck string, fn func([]corrMember) []corrMember) ([]corrMember, error) {
	kv, err := p.indexKV(ctx)
	if err != nil {
		return nil, err
	}
	k := corrIndexKey(repoID, ck)
	for attempt := range maxIndexAttempts {
		var ms []corrMember
		var rev uint64
		fromKV := attempt > 0
		if !fromKV {
			if c, ok := p.corr.cache.get(k); ok {
				ms, rev = c.members, c.rev
			}
		} else if ms, rev, err = p.getIndex(ctx, repoID, ck); err != nil {
			return nil, err
		}
		next := fn(slices.Clone(ms))
		if next == nil {
			next = []corrMember{}
		}
		if slices.Equal(next, ms) && (rev > 0 || len(next) == 0) {
			if !fromKV {
				continue
			}
			return next, nil
		}
		b, _ := json.Marshal(corrEntry{Members: next}) // strings only: cannot fail
		var newRev uint64
		if rev == 0 {
			newRev, err = kv.Create(ctx, k, b)
		} else {
			newRev, err = kv.Update(ctx, k, b, rev)
		}
		if isCASConflict(err) {
			p.corr.cache.forget(k)
			continue
		}
		if err != nil {
			p.corr.cache.forget(k)
			return nil, fmt.Errorf("update %s: %w", k, err)
		}
		p.corr.cache.put(k, indexEntry{rev: newRev, members: next})
		return next, nil
	}
	return nil, fmt.Errorf("update %s: %d compare-and-set conflicts", k, maxIndexAttempts)
}
