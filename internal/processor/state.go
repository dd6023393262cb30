package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// maxCASAttempts bounds the compare-and-set loop on one finding key. Each
// failed attempt means another processor wrote the key in between; a handful
// of writers can never starve us for long, and if they do the message is
// redelivered.
const maxCASAttempts = 16

// outcome is what applying one update to one finding did.
type outcome int

const (
	outcomeUnchanged outcome = iota // same content as stored: nothing published
	outcomeStale                    // stored state is newer: dropped
	outcomePublished                // stored and published
)

// updateFunc computes the new document from the stored one (nil when the
// key does not exist). It returns nil to leave the finding alone.
type updateFunc func(stored *finding.Document) (*finding.Document, error)

// store applies updates to KV ghas_findings and publishes each change of a
// finding on GHAS_FINDINGS.
type store struct {
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	locks  *keyLocks
	recent *recentWrites
}

// apply runs fn against the stored document of key under compare-and-set,
// then publishes the result when its content changed. republish asks for a
// publish even when KV already holds the same content: a redelivered message
// may have written KV and died before publishing; the finding stream's
// duplicate window drops the publish if it did get out.
//
// The first attempt trusts this instance's cache of what it last wrote (or
// assumes a key it never saw is new) and lets the compare-and-set tell it
// otherwise, which saves a KV read on the common path; any decision not to
// write is only taken on what KV itself says.
func (s *store) apply(ctx context.Context, key string, republish bool, fn updateFunc) (outcome, error) {
	release, err := s.locks.lock(ctx, key)
	if err != nil {
		return 0, err
	}
	defer release()
	for attempt := range maxCASAttempts {
		var stored *finding.Document
		var rev uint64
		storedHash := ""
		fromKV := attempt > 0
		if !fromKV {
			if c, ok := s.recent.get(key); ok {
				stored, rev, storedHash = c.doc, c.rev, c.hash
			}
		} else {
			entry, err := s.kv.Get(ctx, key)
			switch {
			case errors.Is(err, jetstream.ErrKeyNotFound):
			case err != nil:
				return 0, fmt.Errorf("get finding %s: %w", key, err)
			default:
				d, derr := finding.Decode(entry.Value())
				if derr != nil {
					// A stored document we cannot read is replaced; the
					// incoming event is the best we know.
					d = finding.Document{}
				}
				stored, rev = &d, entry.Revision()
				storedHash = d.ContentHash()
			}
		}
		next, err := fn(stored)
		if err != nil {
			return 0, err
		}
		if next == nil {
			if !fromKV {
				continue
			}
			return outcomeStale, nil
		}
		data, err := json.Marshal(next)
		if err != nil {
			return 0, fmt.Errorf("marshal finding %s: %w", key, err)
		}
		nextHash := next.ContentHash()
		if stored != nil && storedHash == nextHash {
			if !fromKV {
				continue
			}
			if !republish {
				return outcomeUnchanged, nil
			}
			if err := s.publish(ctx, stored, storedHash); err != nil {
				return 0, err
			}
			return outcomeUnchanged, nil
		}
		var newRev uint64
		if stored == nil {
			newRev, err = s.kv.Create(ctx, key, data)
		} else {
			newRev, err = s.kv.Update(ctx, key, data, rev)
		}
		if isConflict(err) {
			s.recent.forget(key)
			continue
		}
		if err != nil {
			s.recent.forget(key)
			return 0, fmt.Errorf("store finding %s: %w", key, err)
		}
		s.recent.put(key, cached{rev: newRev, doc: next, hash: nextHash})
		if err := s.publishData(ctx, next, nextHash, data); err != nil {
			return 0, err
		}
		return outcomePublished, nil
	}
	return 0, fmt.Errorf("store finding %s: %d compare-and-set conflicts", key, maxCASAttempts)
}

// cached is what this instance last wrote for a key.
type cached struct {
	rev  uint64
	doc  *finding.Document
	hash string // doc.ContentHash()
}

// recentWrites is a bounded cache of this instance's own writes. It is only
// a hint: a stale entry costs one failed compare-and-set.
type recentWrites struct {
	mu  sync.Mutex
	max int
	m   map[string]cached
}

func newRecentWrites(max int) *recentWrites {
	return &recentWrites{max: max, m: make(map[string]cached)}
}

func (r *recentWrites) get(key string) (cached, bool) {
	if r == nil {
		return cached{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.m[key]
	return c, ok
}

func (r *recentWrites) put(key string, c cached) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.m) >= r.max {
		for k := range r.m { // map order is random: a cheap random eviction
			delete(r.m, k)
			break
		}
	}
	r.m[key] = c
}

func (r *recentWrites) forget(key string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, key)
}

func isConflict(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, jetstream.ErrKeyExists) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

func (s *store) publish(ctx context.Context, d *finding.Document, hash string) error {
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("marshal finding %s: %w", d.FindingKey, err)
	}
	return s.publishData(ctx, d, hash, data)
}

// publishData publishes a finding's message: body data, Nats-Msg-Id
// <findingKey>:<hash> (hash is d.ContentHash()).
func (s *store) publishData(ctx context.Context, d *finding.Document, hash string, data []byte) error {
	dataset, repoID, _, err := finding.ParseKey(d.FindingKey)
	if err != nil {
		return err
	}
	msg := &nats.Msg{
		Subject: stream.FindingSubject(dataset, repoID),
		Header:  nats.Header{},
		Data:    data,
	}
	msg.Header.Set(stream.HeaderMsgID, d.FindingKey+":"+hash)
	msg.Header.Set(stream.HeaderFindingKey, d.FindingKey)
	if _, err := s.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish finding %s: %w", d.FindingKey, err)
	}
	return nil
}

// keysOfRepository lists the stored finding keys of a repository.
func (s *store) keysOfRepository(ctx context.Context, repositoryID int64) ([]string, error) {
	// One filter: the server refuses several; every dataset matches *.
	lister, err := s.kv.ListKeysFiltered(ctx, fmt.Sprintf("*.%d.*", repositoryID))
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list findings of repository %d: %w", repositoryID, err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	// The lister stops its watcher itself once the listing is complete; it
	// also stops early when ctx ends, which must not pass for complete.
	_ = lister.Stop()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list findings of repository %d: %w", repositoryID, err)
	}
	return keys, nil
}

// eventTime parses a document's lastFoundOn, the time ordering of a finding's
// events (SPEC §6, §8); zero when absent or unparsable.
func eventTime(d *finding.Document) time.Time {
	f := d.Finding()
	if f == nil || f.LastFoundOn == nil {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, *f.LastFoundOn)
	if err != nil {
		return time.Time{}
	}
	return t
}

// newer reports whether incoming should replace stored: it is newer by event
// time, or as new and wins a deterministic tie-break on content, so that any
// arrival order of the same events ends in the same state.
func newer(incoming, stored *finding.Document) bool {
	if stored == nil || stored.FindingKey == "" {
		return true
	}
	ti, ts := eventTime(incoming), eventTime(stored)
	if !ti.Equal(ts) {
		return ti.After(ts)
	}
	// At the same time, what the REST API says wins: it is the complete,
	// current view (a webhook lacks the rule's security severity, say).
	if oi, os := incoming.Origin == stream.OriginReconcile, stored.Origin == stream.OriginReconcile; oi != os {
		return oi
	}
	ri, rs := statusRank(incoming), statusRank(stored)
	if ri != rs {
		return ri > rs
	}
	return incoming.ContentHash() >= stored.ContentHash()
}

// statusRank breaks ties between events with the same time: a closing
// status beats an opening one, since GitHub stamps a close with the time it
// happened and a reopen carries no time of its own.
func statusRank(d *finding.Document) int {
	f := d.Finding()
	if f == nil {
		return 0
	}
	switch f.FindingStatus {
	case finding.StatusActive:
		return 1
	case finding.StatusDismissed:
		return 2
	case finding.StatusFixed:
		return 3
	case finding.StatusRemoved:
		return 4
	}
	return 0
}
