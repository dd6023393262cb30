package sink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Claims keep per-key order across every forwarder sharing the durable
// consumer. JetStream hands the messages of one finding to whichever
// instance asks first, so an older version that failed and was redelivered
// later could otherwise overwrite a newer version at the sink. Each finding
// key has one claim entry in KV bucket ghas_state holding the highest stream
// sequence that was (or is being) delivered:
//
//   - a message older than the claim is superseded: acked without a POST,
//     because the sink already has (or is about to get) a newer version;
//   - a message equal to a delivered claim was delivered before its ack got
//     lost: acked without a second POST;
//   - a message newer than an in-flight claim of another holder waits
//     (nak with delay) until that delivery ends or its lease runs out, so
//     two versions of a finding are never in flight at once.
//
// Updates are compare-and-set on the entry's revision.

// Claim states.
const (
	stateInFlight = "inflight"
	stateDone     = "done"
)

// claimValue is the stored claim of one finding key.
type claimValue struct {
	Seq    uint64 `json:"seq"`
	State  string `json:"state"`
	Holder string `json:"holder,omitempty"`
	Until  int64  `json:"until,omitempty"` // lease end, Unix milliseconds
}

// verdict is what a forwarder should do with a message after acquiring.
type verdict int

const (
	verdictDeliver    verdict = iota // claim held: POST it
	verdictSuperseded                // a newer version owns the key: ack, no POST
	verdictDelivered                 // this very message was delivered: ack, no POST
	verdictBusy                      // an older version is in flight elsewhere: retry later
)

func (v verdict) String() string {
	switch v {
	case verdictDeliver:
		return "deliver"
	case verdictSuperseded:
		return "superseded"
	case verdictDelivered:
		return "delivered"
	case verdictBusy:
		return "busy"
	}
	return "unknown"
}

// claims is the claim store of one forwarder instance.
type claims struct {
	kv     jetstream.KeyValue
	prefix string // "sink.<durable>."
	holder string // this instance
	lease  time.Duration
	now    func() time.Time
}

// claim is a held claim: the key and the revision of our last write.
type claim struct {
	key string // KV key
	seq uint64
	rev uint64
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_=/-]+(\.[A-Za-z0-9_=/-]+)*$`)

// kvKey returns the KV key of a finding key; keys that are not valid KV
// keys are hashed.
func (c *claims) kvKey(findingKey string) string {
	if plainKey.MatchString(findingKey) && len(findingKey) <= 200 {
		return c.prefix + findingKey
	}
	sum := sha256.Sum256([]byte(findingKey))
	return c.prefix + "h." + hex.EncodeToString(sum[:])
}

// acquire decides what to do with the message of stream sequence seq for
// findingKey and, when the verdict is deliver, takes the claim.
func (c *claims) acquire(ctx context.Context, findingKey string, seq uint64) (claim, verdict, error) {
	key := c.kvKey(findingKey)
	for {
		if err := ctx.Err(); err != nil {
			return claim{}, 0, err
		}
		entry, err := c.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			wctx, cancel := writeContext(ctx)
			rev, err := c.kv.Create(wctx, key, c.encode(seq))
			cancel()
			if isConflict(err) {
				continue
			}
			if err != nil {
				return claim{}, 0, fmt.Errorf("create claim %s: %w", key, err)
			}
			return claim{key: key, seq: seq, rev: rev}, verdictDeliver, nil
		}
		if err != nil {
			return claim{}, 0, fmt.Errorf("get claim %s: %w", key, err)
		}
		var cur claimValue
		if err := json.Unmarshal(entry.Value(), &cur); err != nil {
			cur = claimValue{} // unreadable claim: treat as free
		}
		v := c.judge(cur, seq)
		if v != verdictDeliver {
			return claim{}, v, nil
		}
		wctx, cancel := writeContext(ctx)
		rev, err := c.kv.Update(wctx, key, c.encode(seq), entry.Revision())
		cancel()
		if isConflict(err) {
			continue
		}
		if err != nil {
			return claim{}, 0, fmt.Errorf("update claim %s: %w", key, err)
		}
		return claim{key: key, seq: seq, rev: rev}, verdictDeliver, nil
	}
}

// writeContext bounds one claim write without inheriting ctx's
// cancellation. A write that shutdown cancels half-way may still be applied
// by the server while the caller sees an error; the caller would then hold
// a claim without knowing its revision, unable to release it, and a
// restarted forwarder would wait a whole lease for that key.
func writeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
}

// judge compares the stored claim with a message of sequence seq.
func (c *claims) judge(cur claimValue, seq uint64) verdict {
	switch {
	case cur.Seq > seq:
		return verdictSuperseded
	case cur.Seq == seq && cur.State == stateDone:
		return verdictDelivered
	case cur.State == stateInFlight && cur.Holder != c.holder && c.now().UnixMilli() < cur.Until:
		// Another instance is delivering this key (an older version, or
		// this same message before its ack deadline moved it here).
		return verdictBusy
	}
	return verdictDeliver
}

// renew extends the lease of a held claim before another attempt. It
// reports false when the claim was lost (its lease ran out and another
// instance took the key), in which case the caller re-acquires.
func (c *claims) renew(ctx context.Context, cl *claim) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	wctx, cancel := writeContext(ctx)
	defer cancel()
	rev, err := c.kv.Update(wctx, cl.key, c.encode(cl.seq), cl.rev)
	if isConflict(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("renew claim %s: %w", cl.key, err)
	}
	cl.rev = rev
	return true, nil
}

// done marks the claim delivered (or dead-lettered): later copies of the
// message are acked without a POST and newer versions may go.
func (c *claims) done(ctx context.Context, cl claim) error {
	return c.finish(ctx, cl, claimValue{Seq: cl.seq, State: stateDone})
}

// release gives the key up without delivering: the lease ends now, so a
// newer version (or this message, redelivered) may take it at once.
func (c *claims) release(ctx context.Context, cl claim) error {
	return c.finish(ctx, cl, claimValue{Seq: cl.seq, State: stateInFlight, Holder: c.holder})
}

func (c *claims) finish(ctx context.Context, cl claim, v claimValue) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode claim: %w", err)
	}
	if _, err := c.kv.Update(ctx, cl.key, b, cl.rev); err != nil {
		if isConflict(err) {
			return nil // lost the lease meanwhile: the new holder decides
		}
		return fmt.Errorf("finish claim %s: %w", cl.key, err)
	}
	return nil
}

func (c *claims) encode(seq uint64) []byte {
	b, _ := json.Marshal(claimValue{
		Seq:    seq,
		State:  stateInFlight,
		Holder: c.holder,
		Until:  c.now().Add(c.lease).UnixMilli(),
	})
	return b
}

func isConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}
