package processor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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
	outcomeUnchanged outcome = iota // same content as stored: nothing written
	outcomeStale                    // stored state is newer: dropped
	outcomePublished                // written, and so published
)

// updateFunc computes the new document from the stored one (nil when the
// key does not exist). It returns nil to leave the finding alone.
type updateFunc func(stored *finding.Document) (*finding.Document, error)

// store applies updates to KV ghas_findings. GHAS_FINDINGS sources the
// bucket's stream (stream.Layout), so one compare-and-set write is both the
// new state and the finding message: the server copies every stored
// revision, in revision order, to ghas.findings.<type>.<repository_id> with
// the headers written here (Nats-Msg-Id <findingKey>:<contentHash>,
// Ghas-Finding-Key). There is no window between state and message, and no
// way for two processors to publish one finding's changes out of order.
type store struct {
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	recent *recentWrites
}

// apply runs fn against the stored document of key under compare-and-set
// and writes the result when its content changed.
//
// The first attempt trusts this instance's cache of what it last wrote (or
// assumes a key it never saw is new) and lets the compare-and-set tell it
// otherwise, which saves a KV read on the common path; any decision not to
// write is only taken on what KV itself says.
func (s *store) apply(ctx context.Context, key string, fn updateFunc) (outcome, error) {
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
				// Absent, or deleted by an operator: write over the
				// delete marker's revision.
				if hist, herr := s.kv.History(ctx, key, jetstream.MetaOnly()); herr == nil && len(hist) > 0 {
					rev = hist[len(hist)-1].Revision()
				}
			case err != nil:
				return 0, fmt.Errorf("get finding %s: %w", key, err)
			default:
				if c, ok := s.recent.get(key); ok && c.rev == entry.Revision() {
					// What this instance wrote is still current: no decode.
					stored, rev, storedHash = c.doc, c.rev, c.hash
					break
				}
				d, derr := finding.Decode(entry.Value())
				if derr != nil {
					// A stored document we cannot read is replaced; the
					// incoming event is the best we know.
					d = finding.Document{}
				}
				stored, rev = &d, entry.Revision()
				storedHash = d.ContentHash()
				s.recent.put(key, cached{rev: rev, doc: stored, hash: storedHash})
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
		data, nextHash, err := next.Encode()
		if err != nil {
			return 0, err
		}
		if stored != nil && storedHash == nextHash {
			if !fromKV {
				continue
			}
			return outcomeUnchanged, nil
		}
		newRev, err := s.write(ctx, key, nextHash, data, rev)
		if isConflict(err) {
			s.recent.forget(key)
			continue
		}
		if err != nil {
			s.recent.forget(key)
			return 0, fmt.Errorf("store finding %s: %w", key, err)
		}
		s.recent.put(key, cached{rev: newRev, doc: next, hash: nextHash})
		return outcomePublished, nil
	}
	return 0, fmt.Errorf("store finding %s: %d compare-and-set conflicts", key, maxCASAttempts)
}

// write stores data as the revision after rev (0: the key must not exist)
// and returns the new revision.
func (s *store) write(ctx context.Context, key, hash string, data []byte, rev uint64) (uint64, error) {
	msg := &nats.Msg{Subject: stream.FindingsKVPrefix + key, Header: nats.Header{}, Data: data}
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(rev, 10))
	msg.Header.Set(stream.HeaderMsgID, key+":"+hash)
	msg.Header.Set(stream.HeaderFindingKey, key)
	ack, err := s.js.PublishMsg(ctx, msg)
	if err != nil {
		return 0, err
	}
	if !ack.Duplicate {
		return ack.Sequence, nil
	}
	// The bucket's stream saw this very content within its duplicate
	// window (two minutes) and dropped the write, though the finding may
	// have changed since (A, B, then A again). Write it without the id;
	// its message on GHAS_FINDINGS then carries none.
	msg.Header.Del(stream.HeaderMsgID)
	ack, err = s.js.PublishMsg(ctx, msg)
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
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

// cached is the last state of a key this instance wrote or read.
type cached struct {
	rev  uint64
	doc  *finding.Document
	hash string // doc.ContentHash()
}

// recentWrites is a bounded cache of the finding states this instance
// wrote or read, by revision. It is only a hint: a stale entry costs one
// failed compare-and-set, and a decision not to write is only taken when
// KV's current revision is the cached one.
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
