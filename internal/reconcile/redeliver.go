package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/ghclient"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// CheckpointKey is the ghas_state key of the missed-delivery sweep's checkpoint.
const CheckpointKey = "redeliver.checkpoint"

// checkpoint is the newest delivery attempt a complete sweep examined.
type checkpoint struct {
	ID          int64     `json:"id"`
	DeliveredAt time.Time `json:"deliveredAt"`
}

// guidState is every attempt of one delivery GUID the sweep saw.
type guidState struct {
	guid      string
	event     string
	delivered bool
	latest    ghclient.HookDelivery // newest attempt
	// sentAt is when GitHub first tried the delivery (the oldest attempt
	// seen): the event's time where its payload carries none.
	sentAt time.Time
}

// redeliver sweeps the App's webhook deliveries back to the checkpoint (and
// never beyond GitHub's window) and publishes every delivery GUID without a
// successful attempt to ghas.redelivery.<event>, with its GUID as
// Nats-Msg-Id. The checkpoint advances only when every one was published.
func (rs *runState) redeliver(ctx context.Context) {
	r := rs.r
	dr := &DeliveryReport{}
	rs.deliv = dr
	var cp checkpoint
	e, err := r.state.Get(ctx, CheckpointKey)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		rs.fail("delivery checkpoint", err)
		return
	default:
		if err := json.Unmarshal(e.Value(), &cp); err != nil {
			cp = checkpoint{} // unreadable: sweep the whole window again
		}
	}
	cutoff := r.cfg.Now().Add(-r.cfg.DeliveryWindow)
	newest := cp
	byGUID := map[string]*guidState{}
	var order []*guidState // newest first
	err = r.gh.ListHookDeliveries(ctx, func(ds []ghclient.HookDelivery) (bool, error) {
		for _, d := range ds {
			if d.ID <= cp.ID || d.DeliveredAt.Before(cutoff) {
				return false, nil
			}
			dr.Examined++
			if d.ID > newest.ID {
				newest = checkpoint{ID: d.ID, DeliveredAt: d.DeliveredAt}
			}
			g := byGUID[d.GUID]
			if g == nil {
				g = &guidState{guid: d.GUID, event: d.Event, latest: d, sentAt: d.DeliveredAt}
				byGUID[d.GUID] = g
				order = append(order, g)
			}
			if !d.DeliveredAt.IsZero() && (g.sentAt.IsZero() || d.DeliveredAt.Before(g.sentAt)) {
				g.sentAt = d.DeliveredAt
			}
			if d.Succeeded() {
				g.delivered = true
			}
			if d.ID > g.latest.ID {
				g.latest = d
			}
		}
		return true, nil
	})
	if err != nil {
		rs.fail("hook deliveries", err)
		return
	}
	// Oldest first, as GitHub first tried them.
	slices.Reverse(order)
	complete := true
	for _, g := range order {
		if g.delivered {
			continue
		}
		dr.Failed++
		if !stream.Handled(g.event) {
			dr.Ignored++
			continue
		}
		if err := rs.redeliverOne(ctx, g); err != nil {
			rs.fail("delivery "+g.guid, err)
			complete = false
			if ctx.Err() != nil {
				break
			}
			continue
		}
		dr.Redelivered++
	}
	dr.Checkpoint = cp.ID
	if !complete || newest.ID == cp.ID {
		return
	}
	b, _ := json.Marshal(newest)
	if _, err := r.state.Put(ctx, CheckpointKey, b); err != nil {
		rs.fail("delivery checkpoint", err)
		return
	}
	dr.Checkpoint = newest.ID
}

// redeliverOne fetches the newest attempt of a GUID and publishes its
// payload as GitHub stored it.
func (rs *runState) redeliverOne(ctx context.Context, g *guidState) error {
	d, err := rs.r.gh.GetHookDelivery(ctx, g.latest.ID)
	if err != nil {
		return err
	}
	payload := []byte(d.Payload)
	if len(payload) == 0 {
		return fmt.Errorf("delivery %d has no payload", d.ID)
	}
	header := func(name string) string {
		for k, v := range d.Headers {
			if strings.EqualFold(k, name) {
				return v
			}
		}
		return ""
	}
	event := header("X-GitHub-Event")
	if event == "" {
		event = g.event
	}
	guid := header("X-GitHub-Delivery")
	if guid == "" {
		guid = g.guid
	}
	extra := nats.Header{}
	extra.Set(stream.HeaderDelivery, guid)
	// Dated by GitHub's first attempt, never by this sweep's clock: an
	// action without a timestamp of its own (a reopen) is then ordered
	// where it happened, not after every later change.
	sent := g.sentAt
	if sent.IsZero() {
		sent = d.DeliveredAt
	}
	if !sent.IsZero() {
		extra.Set(stream.HeaderReceivedAt, sent.UTC().Format(time.RFC3339Nano))
	}
	if v := header("X-GitHub-Hook-ID"); v != "" {
		extra.Set(stream.HeaderHookID, v)
	}
	if v := header("X-GitHub-Hook-Installation-Target-ID"); v != "" {
		extra.Set(stream.HeaderInstallationTarget, v)
	}
	return rs.publish(ctx, stream.RedeliverySubject(event), event, guid, payload, stream.OriginRedelivery, extra)
}

// sha is the hex SHA-256 of b.
func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:16])
}
