package state

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// Get reads a finding and its revision. A missing key, a delete marker and
// a document that does not decode all give a nil document; a missing key
// and a delete marker give revision 0 (a write over a marker goes through
// Apply, which finds the marker's revision itself).
func (s *Store) Get(ctx context.Context, key string) (*finding.Document, uint64, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get finding %s: %w", key, err)
	}
	d, err := finding.Decode(e.Value())
	if err != nil {
		return nil, e.Revision(), nil
	}
	return &d, e.Revision(), nil
}

// LastRevision is the last revision written to the findings bucket (any
// key). A finding stored at or below it was written before the call.
func (s *Store) LastRevision(ctx context.Context) (uint64, error) {
	st, err := s.js.Stream(ctx, stream.FindingsKVStream)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", stream.FindingsKVStream, err)
	}
	return st.CachedInfo().State.LastSeq, nil
}

// Entry is what Scan reports of one key: its latest revision, and the
// content hash of the document stored there ("" for a delete marker or a
// revision written without the hash header).
type Entry struct {
	Key      string
	Revision uint64
	Hash     string
	Deleted  bool
}

// Scan calls fn for the latest revision of every key of the bucket, delete
// markers included, reading headers only (no document is transferred).
// It returns once every key was reported, or with ctx's error.
func (s *Store) Scan(ctx context.Context, fn func(Entry)) error {
	cons, err := s.js.OrderedConsumer(ctx, stream.FindingsKVStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{stream.FindingsKVPrefix + ">"},
		DeliverPolicy:  jetstream.DeliverLastPerSubjectPolicy,
		HeadersOnly:    true,
	})
	if err != nil {
		return fmt.Errorf("scan %s: %w", stream.FindingsBucket, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("scan %s: %w", stream.FindingsBucket, err)
	}
	if info.NumPending == 0 {
		return nil
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		return fmt.Errorf("scan %s: %w", stream.FindingsBucket, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("scan %s: %w", stream.FindingsBucket, ctx.Err())
			}
			return fmt.Errorf("scan %s: %w", stream.FindingsBucket, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("scan %s: %w", stream.FindingsBucket, err)
		}
		h := msg.Headers()
		op := h.Get("KV-Operation")
		e := Entry{
			Key:      strings.TrimPrefix(msg.Subject(), stream.FindingsKVPrefix),
			Revision: md.Sequence.Stream,
			Deleted:  op == "DEL" || op == "PURGE",
		}
		if !e.Deleted {
			e.Hash = h.Get(stream.HeaderContentHash)
		}
		fn(e)
		if md.NumPending == 0 {
			return nil
		}
	}
}
