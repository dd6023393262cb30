package imports

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// A re-import is a scan. Only a post identical (body and request
// parameters) to the latest import of its scope is a retried upload,
// answered "duplicate"; any other post is a new scan with an id of its
// own. The receiver keeps, per scope, the latest import it stored in KV
// ghas_imports under latest.<scope hash>.
//
// An import's id chains on the latest import of its scope: the first
// import of a scope has its content id (ID), every later one the hash of
// its content id and the id of the import it follows. A SARIF log of
// several scopes (runs of several tools or categories, scans.go) has a
// record in each; it is a duplicate when it is the latest of every one,
// and its id chains on each scope's latest in the order of its scans. So X, Y, X gives
// three ids (the third X is not JetStream's duplicate of the first, whose
// Nats-Msg-Id it would otherwise repeat), while two concurrent retries of
// one upload, which both find the same latest import, compute the same id
// and JetStream keeps one of them.

// latestKeyPrefix is the prefix of the per-scope records the receiver
// writes in ghas_imports (the only keys besides import.<id> it may write).
const latestKeyPrefix = "latest."

// latestImport is the record of the latest import stored for a scope.
type latestImport struct {
	// Import is its id; Content its content id (ID).
	Import  string `json:"import"`
	Content string `json:"content"`
	// ReceivedAt is when it was received (for people reading the bucket).
	ReceivedAt string `json:"receivedAt,omitempty"`
}

// latestKey is the key of a scope's record: the scope is the repository
// (case-insensitive), the tool (by its slug, as finding keys name it),
// the category and the ref of a scan of the import.
func latestKey(repository string, sc Scope) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{strings.ToLower(repository), finding.ToolSlug(sc.Tool), sc.Category, sc.Ref}, "\x00")))
	return latestKeyPrefix + hex.EncodeToString(sum[:16])
}

// getLatest reads a scope's record; nil when there is none (or it cannot
// be read: the next import replaces it).
func getLatest(ctx context.Context, kv jetstream.KeyValue, key string) (*latestImport, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	var l latestImport
	if json.Unmarshal(e.Value(), &l) != nil || !validID(l.Import) {
		return nil, nil
	}
	return &l, nil
}

// putLatest records the latest import of a scope.
func putLatest(ctx context.Context, kv jetstream.KeyValue, key string, l latestImport) error {
	b, _ := json.Marshal(l) // plain strings
	if _, err := kv.Put(ctx, key, b); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// retried says whether an import of content id content repeats the
// latest import of every scope it scans (a retried upload), and which.
func retried(content string, latest []*latestImport) (string, bool) {
	if len(latest) == 0 {
		return "", false
	}
	for _, l := range latest {
		if l == nil || l.Content != content || l.Import != latest[0].Import {
			return "", false
		}
	}
	return latest[0].Import, true
}

// nextID is the id of an import of content id content that follows the
// latest imports of its scopes (nil: none), in the order of its scans. An
// import of one scope chains on that scope's latest, as it always has.
func nextID(content string, latest []*latestImport) string {
	h := sha256.New()
	chained := false
	fmt.Fprint(h, content)
	for _, l := range latest {
		if l != nil {
			fmt.Fprintf(h, "\x00%s", l.Import)
			chained = true
		}
	}
	if !chained {
		return content
	}
	return sumID(h)
}
