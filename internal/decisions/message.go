package decisions

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// Decision is one accepted decision: the request with its id, the name
// of the token that posted it, when, and the repositories that token may
// act on. It is the body of its message on ghas.decision.<type>.
type Decision struct {
	ID string `json:"id"`
	Request
	// By is the token's name (never the token).
	By string `json:"by"`
	// Repositories are the token's repository globs (none: every
	// repository). The processor holds every finding the decision reaches
	// to them, correlated ones and a finding the receiver did not know yet
	// included.
	Repositories []string `json:"repositories,omitempty"`
	// ReceivedAt is when the receiver accepted it (RFC 3339, UTC).
	ReceivedAt string `json:"receivedAt"`
}

// NewID is a fresh decision id: 32 hex digits.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails
	return hex.EncodeToString(b[:])
}

// ValidID reports whether id has the form of a decision id.
func ValidID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Message is the decision's message: subject ghas.decision.<type> of its
// finding key, Nats-Msg-Id the decision id (a publish retried within the
// duplicate window is stored once).
func Message(d Decision) (*nats.Msg, error) {
	_, dataset, _, err := KindOf(d.FindingKey)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encode decision %s: %w", d.ID, err)
	}
	m := &nats.Msg{Subject: stream.DecisionSubject(dataset), Header: nats.Header{}, Data: b}
	m.Header.Set(stream.HeaderMsgID, "decision:"+d.ID)
	m.Header.Set(stream.HeaderReceivedAt, d.ReceivedAt)
	m.Header.Set(stream.HeaderFindingKey, d.FindingKey)
	return m, nil
}

// FromMessage reads a decision's message body; the decision is validated
// again (the processor trusts nothing it did not check).
func FromMessage(data []byte) (Decision, error) {
	var d Decision
	if err := json.Unmarshal(data, &d); err != nil {
		return Decision{}, fmt.Errorf("decode decision: %w", err)
	}
	if !ValidID(d.ID) {
		return Decision{}, fmt.Errorf("decision without a valid id")
	}
	if err := d.Request.Validate(); err != nil {
		return Decision{}, fmt.Errorf("decision %s: %w", d.ID, err)
	}
	return d, nil
}

// At is the decision's receive time, or zero when unreadable.
func (d Decision) At() time.Time {
	t, _ := time.Parse(time.RFC3339Nano, d.ReceivedAt)
	return t
}
