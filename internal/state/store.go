// Package state owns the state of findings: KV bucket ghas_findings (one
// key per finding, <type>.<repository_id>.<number>, the latest document as
// value), the compare-and-set writes that change it, the listing of its
// keys, and the rule that orders two versions of a finding (Newer,
// Authoritative). The processor and the reconciler both go through it.
//
// GHAS_FINDINGS sources the bucket's stream, so one compare-and-set write
// is both the new state and the finding message: the server copies every
// stored revision, in revision order, to ghas.findings.<type>.<repository_id>
// with the headers written here. Every revision has its own Nats-Msg-Id
// (<findingKey>:<previous revision>-<content hash>), so a document that
// returns to an earlier content is a new message too.
package state

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

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

// Outcome is what applying one update to one finding did.
type Outcome int

// Outcomes of Apply.
const (
	Unchanged Outcome = iota // same content as stored: nothing written
	Stale                    // the update function left the finding alone
	Written                  // written, and so published
)

// String is the outcome as a metric label.
func (o Outcome) String() string {
	switch o {
	case Written:
		return "processed"
	case Stale:
		return "stale"
	}
	return "unchanged"
}

// UpdateFunc computes the new document from the stored one and its
// revision (nil and the revision of a delete marker, or 0, when the key
// holds no finding). It returns nil to leave the finding alone.
type UpdateFunc func(stored *finding.Document, rev uint64) (*finding.Document, error)

// Finisher completes the documents of one Apply call before they are
// written: the fields derived from the whole document (its priority) and
// what they depend on beyond it (the correlation index). A Finisher
// serves one call of Apply, so it may remember what it did.
type Finisher interface {
	// Finish returns the document to write instead of next. stored is
	// what the attempt takes KV to hold (nil: nothing); it is called once
	// per write attempt and must modify neither.
	Finish(ctx context.Context, stored, next *finding.Document) (*finding.Document, error)
	// Done tells a Finisher whose Finish was called how Apply ended:
	// final is the document KV holds (nil: none) and written whether this
	// call wrote it. It is not called when Apply fails.
	Done(ctx context.Context, final *finding.Document, written bool) error
}

// Store reads and writes KV ghas_findings.
type Store struct {
	js       jetstream.JetStream
	kv       jetstream.KeyValue
	recent   *recentWrites
	finisher func(key string) Finisher
	copied   *copied // copied.go
}

// New returns a store writing through js (the connection whose publishes
// carry the writes) to the findings bucket kv. cacheSize bounds the cache
// of recently written documents (0: no cache).
func New(js jetstream.JetStream, kv jetstream.KeyValue, cacheSize int) *Store {
	return NewFinishing(js, kv, cacheSize, nil)
}

// NewFinishing is New with a finisher: every document Apply writes passes
// through a Finisher made by finisher for the key (nil: none), whatever
// update function built it.
func NewFinishing(js jetstream.JetStream, kv jetstream.KeyValue, cacheSize int, finisher func(key string) Finisher) *Store {
	s := &Store{js: js, kv: kv, finisher: finisher, copied: &copied{js: js}}
	if cacheSize > 0 {
		s.recent = newRecentWrites(cacheSize)
	}
	return s
}

// Apply runs fn against the stored document of key under compare-and-set
// and writes the result when its content changed.
//
// The first attempt trusts this instance's cache of what it last wrote (or
// assumes a key it never saw is new) and lets the compare-and-set tell it
// otherwise, which saves a KV read on the common path; any decision not to
// write is only taken on what KV itself says.
func (s *Store) Apply(ctx context.Context, key string, fn UpdateFunc) (Outcome, error) {
	var fin Finisher
	finished := false // fin.Finish was called
	done := func(o Outcome, final *finding.Document) (Outcome, error) {
		if !finished {
			return o, nil
		}
		return o, fin.Done(ctx, final, o == Written)
	}
	if s.finisher != nil {
		fin = s.finisher(key)
	}
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
		next, err := fn(stored, rev)
		if err != nil {
			return 0, err
		}
		if next == nil {
			if !fromKV {
				continue
			}
			return done(Stale, stored)
		}
		if fin != nil {
			finished = true
			if next, err = fin.Finish(ctx, stored, next); err != nil {
				return 0, err
			}
		}
		data, nextHash, err := next.Encode()
		if err != nil {
			return 0, err
		}
		if stored != nil && storedHash == nextHash {
			if !fromKV {
				continue
			}
			return done(Unchanged, stored)
		}
		if err := s.copied.wait(ctx, rev); err != nil {
			return 0, fmt.Errorf("store finding %s: %w", key, err)
		}
		newRev, err := s.write(ctx, key, nextHash, data, rev, stored)
		if isConflict(err) {
			s.recent.forget(key)
			continue
		}
		if err != nil {
			s.recent.forget(key)
			return 0, fmt.Errorf("store finding %s: %w", key, err)
		}
		s.recent.put(key, cached{rev: newRev, doc: next, hash: nextHash})
		return done(Written, next)
	}
	return 0, fmt.Errorf("store finding %s: %d compare-and-set conflicts", key, maxCASAttempts)
}

// MsgID is the Nats-Msg-Id of the revision that replaces revision prev
// (0: none) with a document of content hash hash. It is unique per stored
// revision, since prev grows with every write of the key, and the same for
// a retried write of the same revision.
func MsgID(key string, prev uint64, hash string) string {
	return key + ":" + strconv.FormatUint(prev, 10) + "-" + hash
}

// write stores data as the revision after rev (0: the key must not exist)
// and returns the new revision. prevDoc is the document it replaces (nil
// for none).
func (s *Store) write(ctx context.Context, key, hash string, data []byte, rev uint64, prevDoc *finding.Document) (uint64, error) {
	msg := &nats.Msg{Subject: stream.FindingsKVPrefix + key, Header: nats.Header{}, Data: data}
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(rev, 10))
	msg.Header.Set(stream.HeaderMsgID, MsgID(key, rev, hash))
	msg.Header.Set(stream.HeaderFindingKey, key)
	msg.Header.Set(stream.HeaderContentHash, hash)
	prevRev := "0"
	if prevDoc != nil && prevDoc.FindingKey != "" {
		prevRev = strconv.FormatUint(rev, 10)
		if f := prevDoc.Finding(); f != nil && f.FindingStatus != "" {
			msg.Header.Set(stream.HeaderPreviousStatus, f.FindingStatus)
		}
	}
	msg.Header.Set(stream.HeaderPreviousRevision, prevRev)
	ack, err := s.js.PublishMsg(ctx, msg)
	if err != nil {
		return 0, err
	}
	if ack.Duplicate {
		// The server matched the message id before the compare-and-set
		// condition: this very revision was stored by an earlier attempt
		// (its ack lost) — or our idea of the current revision is stale
		// and the id is an old write's. Only the first is a success.
		e, gerr := s.kv.Get(ctx, key)
		if gerr != nil || e.Revision() != ack.Sequence {
			return 0, jetstream.ErrKeyExists // a conflict: read again and retry
		}
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

// KeysOfRepository lists the stored finding keys of a repository.
func (s *Store) KeysOfRepository(ctx context.Context, repositoryID int64) ([]string, error) {
	// One filter: the server refuses several; every dataset matches *, and
	// > matches both GitHub's keys (<number>) and imported ones (<tool>.<id>).
	return s.keys(ctx, fmt.Sprintf("*.%d.>", repositoryID), fmt.Sprintf("findings of repository %d", repositoryID))
}

// KeysOfImportTool lists the stored keys of the findings one tool
// imported on a repository (<dataset>.<repository_id>.<tool slug>.<id>),
// whatever their scope, delete markers left out.
func (s *Store) KeysOfImportTool(ctx context.Context, dataset string, repositoryID int64, tool string) ([]string, error) {
	slug := finding.ToolSlug(tool)
	return s.keys(ctx, fmt.Sprintf("%s.%d.%s.*", dataset, repositoryID, slug), fmt.Sprintf("%s findings of %s on repository %d", dataset, slug, repositoryID))
}

// keys lists the keys matching filter; what names them in errors.
func (s *Store) keys(ctx context.Context, filter, what string) ([]string, error) {
	lister, err := s.kv.ListKeysFiltered(ctx, filter)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	var keys []string
	for k := range lister.Keys() {
		keys = append(keys, k)
	}
	// The lister stops its watcher itself once the listing is complete; it
	// also stops early when ctx ends, which must not pass for complete.
	_ = lister.Stop()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	return keys, nil
}
