package ghclient

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// PageState is what is remembered of one fetched page: its ETag, the next
// page's URL (GitHub's 304 answers need not carry a Link header), and how
// many items it had.
type PageState struct {
	ETag  string `json:"etag"`
	Next  string `json:"next,omitempty"`
	Items int    `json:"items"`
}

// ETagStore remembers validators by key (see ETagKey).
type ETagStore interface {
	Get(ctx context.Context, key string) (v PageState, ok bool, err error)
	Put(ctx context.Context, key string, v PageState) error
}

// ETagKey is the store key of a page URL: "etag." and the hex SHA-256 of the
// URL, which is a valid KV key whatever the URL holds.
func ETagKey(pageURL string) string {
	sum := sha256.Sum256([]byte(pageURL))
	return "etag." + hex.EncodeToString(sum[:])
}

// KVETags is an ETagStore on a JetStream KV bucket (ghas_state).
type KVETags struct {
	kv jetstream.KeyValue
}

// NewKVETags returns an ETagStore on kv.
func NewKVETags(kv jetstream.KeyValue) *KVETags { return &KVETags{kv: kv} }

// Get returns the validator stored under key.
func (s *KVETags) Get(ctx context.Context, key string) (PageState, bool, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return PageState{}, false, nil
	}
	if err != nil {
		return PageState{}, false, fmt.Errorf("get %s: %w", key, err)
	}
	var v PageState
	if err := json.Unmarshal(e.Value(), &v); err != nil || v.ETag == "" {
		return PageState{}, false, nil // unreadable entry: fetch in full, it is rewritten
	}
	return v, true, nil
}

// Put stores v under key.
func (s *KVETags) Put(ctx context.Context, key string, v PageState) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if _, err := s.kv.Put(ctx, key, b); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// MemoryETags is an in-memory ETagStore, for tests and one-shot runs.
type MemoryETags struct {
	mu sync.Mutex
	m  map[string]PageState
}

// NewMemoryETags returns an empty MemoryETags.
func NewMemoryETags() *MemoryETags { return &MemoryETags{m: map[string]PageState{}} }

// Get returns the validator stored under key.
func (s *MemoryETags) Get(_ context.Context, key string) (PageState, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	return v, ok, nil
}

// Put stores v under key.
func (s *MemoryETags) Put(_ context.Context, key string, v PageState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = v
	return nil
}

// Len is the number of stored validators.
func (s *MemoryETags) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
