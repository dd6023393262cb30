package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// Store reads documents and revisions from NATS for the API: a finding's
// current document from KV ghas_findings, a stored revision from
// GHAS_FINDINGS by its sequence. It binds to the bucket and the stream on
// first use, so the console may listen before the layout exists.
type Store struct {
	js jetstream.JetStream

	mu sync.Mutex
	kv jetstream.KeyValue
	st jetstream.Stream
}

// NewStore returns a Store over js.
func NewStore(js jetstream.JetStream) *Store { return &Store{js: js} }

func (s *Store) bind(ctx context.Context) (jetstream.KeyValue, jetstream.Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kv == nil {
		kv, err := s.js.KeyValue(ctx, stream.FindingsBucket)
		if err != nil {
			return nil, nil, fmt.Errorf("bucket %s: %w", stream.FindingsBucket, err)
		}
		s.kv = kv
	}
	if s.st == nil {
		st, err := s.js.Stream(ctx, stream.FindingsStream)
		if err != nil {
			return nil, nil, fmt.Errorf("stream %s: %w", stream.FindingsStream, err)
		}
		s.st = st
	}
	return s.kv, s.st, nil
}

// Document is the current document of key; false when there is none.
func (s *Store) Document(ctx context.Context, key string) (json.RawMessage, bool, error) {
	kv, _, err := s.bind(ctx)
	if err != nil {
		return nil, false, err
	}
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read finding %s: %w", key, err)
	}
	if !json.Valid(e.Value()) {
		return nil, false, nil
	}
	return e.Value(), true, nil
}

// Revision is the document GHAS_FINDINGS stored at seq; false when the
// stream no longer holds it.
func (s *Store) Revision(ctx context.Context, seq uint64) (json.RawMessage, bool, error) {
	_, st, err := s.bind(ctx)
	if err != nil {
		return nil, false, err
	}
	m, err := st.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read %s %d: %w", stream.FindingsStream, seq, err)
	}
	if !json.Valid(m.Data) {
		return nil, false, nil
	}
	return m.Data, true, nil
}
