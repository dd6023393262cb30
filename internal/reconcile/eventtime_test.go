package reconcile

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// publishWebhook stores a delivery on GHAS_EVENTS as the receiver does,
// received at at.
func (e *env) publishWebhook(event, guid string, payload []byte, at time.Time) {
	e.t.Helper()
	msg := &nats.Msg{Subject: stream.WebhookSubject(event), Header: nats.Header{}, Data: payload}
	msg.Header.Set(stream.HeaderMsgID, guid)
	msg.Header.Set(stream.HeaderEvent, event)
	msg.Header.Set(stream.HeaderDelivery, guid)
	msg.Header.Set(stream.HeaderReceivedAt, at.UTC().Format(time.RFC3339))
	if _, err := e.js.PublishMsg(context.Background(), msg); err != nil {
		e.t.Fatal(err)
	}
	e.drain()
}

// onRepository rewrites a sample payload's alert number and repository.
func onRepository(t *testing.T, payload, repoFrom []byte, number int64) []byte {
	t.Helper()
	var p, from map[string]any
	if err := json.Unmarshal(payload, &p); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(repoFrom, &from); err != nil {
		t.Fatal(err)
	}
	p["repository"] = from["repository"]
	p["alert"].(map[string]any)["number"] = number
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A reopen whose delivery failed, then a fix that arrived, then the
// missed-delivery sweep: the recovered reopen is dated by GitHub's attempt,
// before the fix, so the finding stays FIXED. Dated by the sweep's clock it
// would turn ACTIVE and stay so.
func TestRecoveredDeliveryDatedByGitHub(t *testing.T) {
	e := newEnv(t, ghtest.Options{}, true)
	now := time.Now().UTC().Truncate(time.Second)
	fixed := sample(t, "code_scanning_alert/fixed.payload.json")
	created := sample(t, "code_scanning_alert/created.payload.json")
	reopened := onRepository(t, sample(t, "code_scanning_alert/reopened.payload.json"), fixed, 10)
	key := finding.Key(finding.SAST, 337911632, 10)

	e.publishWebhook("code_scanning_alert", "guid-created", created, now.Add(-3*time.Hour))
	e.gh.AddDelivery(ghtest.Delivery{GUID: "guid-reopened", Event: "code_scanning_alert", Action: "reopened",
		DeliveredAt: now.Add(-2 * time.Hour), Status: "Invalid HTTP Response: 503", StatusCode: 503, Payload: reopened})
	e.publishWebhook("code_scanning_alert", "guid-fixed", fixed, now.Add(-time.Hour))
	if st := e.status(key); st != finding.StatusFixed {
		t.Fatalf("after the fix: %s, want FIXED", st)
	}

	rep := e.mustRun(ModeRedeliver)
	if rep.Deliveries.Redelivered != 1 {
		t.Fatalf("sweep redelivered %d, want 1", rep.Deliveries.Redelivered)
	}
	msgs := e.redeliveries()
	if len(msgs) != 1 || msgs[0].Headers().Get(stream.HeaderReceivedAt) != now.Add(-2*time.Hour).Format(time.RFC3339Nano) {
		t.Errorf("redelivered message dated %q, want GitHub's attempt %s", msgs[0].Headers().Get(stream.HeaderReceivedAt), now.Add(-2*time.Hour).Format(time.RFC3339Nano))
	}
	if st := e.status(key); st != finding.StatusFixed {
		t.Errorf("after the sweep recovered the older reopen: %s, want FIXED", st)
	}
}

// status is the stored status of a finding ("" when not stored).
func (e *env) status(key string) string {
	d, ok := e.stored()[key]
	if !ok || d.Finding() == nil {
		return ""
	}
	return d.Finding().FindingStatus
}
