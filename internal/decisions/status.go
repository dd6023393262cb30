package decisions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Statuses of a decision, and of its result on one finding (applied or
// failed).
const (
	StatusAccepted = "accepted"
	StatusApplied  = "applied"
	StatusFailed   = "failed"
)

// Result is a decision's outcome on one finding.
type Result struct {
	FindingKey string `json:"findingKey"`
	// Status is StatusApplied or StatusFailed.
	Status string `json:"status"`
	// Error says why it failed: GitHub's answer, "unknown finding", ...
	Error string `json:"error"`
	// AppliedTo is where it was applied: github or relay.
	AppliedTo string `json:"appliedTo,omitempty"`
}

// Status is the body of GET /decisions/{id}.
type Status struct {
	// Decision is the decision's id.
	Decision string `json:"decision"`
	// Status is accepted until every finding the decision reaches has a
	// result; then applied when all took it, failed when any did not.
	Status     string `json:"status"`
	FindingKey string `json:"findingKey"`
	// By is the name of the token that posted the decision.
	By string `json:"by"`
	// Request is the decision as posted (scope filled in).
	Request Request `json:"request"`
	// Repository is the named finding's repository (owner/name), once
	// known.
	Repository string `json:"repository,omitempty"`
	// Results are the outcomes per finding, the named finding first.
	Results    []Result `json:"results"`
	ReceivedAt string   `json:"receivedAt,omitempty"`
	// FinishedAt is when the last result was recorded.
	FinishedAt string `json:"finishedAt,omitempty"`
}

// Record is a decision's record in KV ghas_decisions (key decision.<id>):
// its status and the processor's progress.
type Record struct {
	Status
	// Targets are the findings the decision reaches, fixed when first
	// computed (a replay reaches the same ones); nil until then.
	Targets []string `json:"targets,omitempty"`
	// Sent are targets whose GitHub update was sent and whose outcome was
	// not recorded yet: after a crash, the alert is read before anything
	// is sent again.
	Sent []string `json:"sent,omitempty"`
}

// Final reports whether the decision has its outcome.
func (r *Record) Final() bool {
	return r.Status.Status == StatusApplied || r.Status.Status == StatusFailed
}

// Result is the recorded result of key, if any.
func (r *Record) Result(key string) (Result, bool) {
	for _, res := range r.Results {
		if res.FindingKey == key {
			return res, true
		}
	}
	return Result{}, false
}

// NewRecord is the record of an accepted decision.
func NewRecord(d Decision) Record {
	return Record{Status: Status{Decision: d.ID, Status: StatusAccepted, FindingKey: d.FindingKey, By: d.By, Request: d.Request,
		Results: []Result{}, ReceivedAt: d.ReceivedAt}}
}

// Key is the KV key of a decision's record.
func Key(id string) string { return "decision." + id }

// Get reads a decision's record and its revision; ok is false when there
// is none.
func Get(ctx context.Context, kv jetstream.KeyValue, id string) (r Record, rev uint64, ok bool, err error) {
	e, err := kv.Get(ctx, Key(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Record{}, 0, false, nil
	}
	if err != nil {
		return Record{}, 0, false, fmt.Errorf("get decision %s: %w", id, err)
	}
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return Record{}, 0, false, fmt.Errorf("decode decision %s: %w", id, err)
	}
	return r, e.Revision(), true, nil
}

// Create records an accepted decision unless a record exists (the
// processor may have been first).
func Create(ctx context.Context, kv jetstream.KeyValue, r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode decision %s: %w", r.Decision, err)
	}
	if _, err := kv.Create(ctx, Key(r.Decision), b); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("record decision %s: %w", r.Decision, err)
	}
	return nil
}

// Put writes a record at revision rev (0: it must not exist) and returns
// the new revision; a conflict unwraps to jetstream.ErrKeyExists or the
// wrong-last-sequence API error.
func Put(ctx context.Context, kv jetstream.KeyValue, r Record, rev uint64) (uint64, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return 0, fmt.Errorf("encode decision %s: %w", r.Decision, err)
	}
	var n uint64
	if rev == 0 {
		n, err = kv.Create(ctx, Key(r.Decision), b)
	} else {
		n, err = kv.Update(ctx, Key(r.Decision), b, rev)
	}
	if err != nil {
		return 0, fmt.Errorf("record decision %s: %w", r.Decision, err)
	}
	return n, nil
}
