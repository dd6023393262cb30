package imports

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Import statuses.
const (
	StatusAccepted  = "accepted"
	StatusDuplicate = "duplicate" // only in the answer to a POST
	StatusProcessed = "processed"
	StatusFailed    = "failed"
)

// Counts are what an import did to findings.
type Counts struct {
	New       int `json:"new"`
	Changed   int `json:"changed"`
	Unchanged int `json:"unchanged"`
	Fixed     int `json:"fixed"`
	// OutOfScope counts the results the scope filters leave out (never
	// stored) and the stored findings of the import that left the scope
	// (written REMOVED, out-of-scope).
	OutOfScope int `json:"outOfScope,omitempty"`
}

// Status is an import's record in KV ghas_imports (key import.<id>) and
// the body of GET /imports/{id}.
type Status struct {
	Import     string `json:"import"`
	Status     string `json:"status"`
	Format     string `json:"format,omitempty"`
	Repository string `json:"repository"`
	Tool       string `json:"tool"`
	Results    int    `json:"results"`
	// By is the name of the token that posted the import (never the
	// token).
	By         string `json:"by,omitempty"`
	Findings   Counts `json:"findings"`
	Error      string `json:"error"`
	ReceivedAt string `json:"receivedAt,omitempty"`
	// ProcessedAt is when the processor finished it.
	ProcessedAt string `json:"processedAt,omitempty"`
}

// StatusKey is the KV key of an import's status.
func StatusKey(id string) string { return "import." + id }

// GetStatus reads an import's status; ok is false when there is none.
func GetStatus(ctx context.Context, kv jetstream.KeyValue, id string) (st Status, ok bool, err error) {
	e, err := kv.Get(ctx, StatusKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Status{}, false, nil
	}
	if err != nil {
		return Status{}, false, fmt.Errorf("get import %s: %w", id, err)
	}
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return Status{}, false, fmt.Errorf("decode import %s: %w", id, err)
	}
	return st, true, nil
}

// CreateStatus records an accepted import unless a status exists (the
// processor may already have finished it).
func CreateStatus(ctx context.Context, kv jetstream.KeyValue, st Status) error {
	b, _ := json.Marshal(st) // plain strings and ints
	if _, err := kv.Create(ctx, StatusKey(st.Import), b); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("record import %s: %w", st.Import, err)
	}
	return nil
}

// PutStatus records an import's outcome.
func PutStatus(ctx context.Context, kv jetstream.KeyValue, st Status) error {
	b, _ := json.Marshal(st)
	if _, err := kv.Put(ctx, StatusKey(st.Import), b); err != nil {
		return fmt.Errorf("record import %s: %w", st.Import, err)
	}
	return nil
}
