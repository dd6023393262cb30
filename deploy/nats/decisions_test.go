package natsconf_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/decisions"
	"github.com/ghas-relay/ghas-relay/internal/processor"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// TestDecisionRights proves the rules of triage decisions: the receiver
// stores a decision on ghas.decision.<type>, records it as accepted in
// ghas_decisions (decision.<id>), reads its status and the finding it
// names; the processor consumes decisions with its own durable consumer
// and records their outcome; neither the processor nor the reconciler may
// store a decision, nor the reconciler and the setup identity touch a
// status.
func TestDecisionRights(t *testing.T) {
	ns := startServer(t, withPassword, nil, nil)
	ctx := ctxT(t)
	admin := ns.connect(t, "admin")
	if _, err := stream.Apply(ctx, ns.connect(t, "setup").js, stream.Layout{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := kvOf(t, admin, stream.FindingsBucket).Put(ctx, "sca.1.1", []byte(`{"findingKey":"sca.1.1"}`)); err != nil {
		t.Fatal(err)
	}

	// The receiver.
	r := ns.connect(t, "receiver")
	d := decisions.Decision{ID: decisions.NewID(), Request: decisions.Request{FindingKey: "sca.1.1", Decision: "dismiss", Reason: "inaccurate", Scope: "finding"},
		By: "admin", ReceivedAt: time.Now().UTC().Format(time.RFC3339)}
	m, err := decisions.Message(d)
	if err != nil {
		t.Fatal(err)
	}
	if ack, err := r.js.PublishMsg(ctx, m); err != nil || ack.Stream != stream.EventsStream {
		t.Fatalf("store a decision: %v", err)
	}
	rkv := kvOf(t, r, stream.DecisionsBucket)
	if err := decisions.Create(ctx, rkv, decisions.NewRecord(d)); err != nil {
		t.Fatalf("record an accepted decision: %v", err)
	}
	if _, _, ok, err := decisions.Get(ctx, rkv, d.ID); !ok || err != nil {
		t.Fatalf("read a decision's status: %v %v", ok, err)
	}
	if e, err := kvOf(t, r, stream.FindingsBucket).Get(ctx, "sca.1.1"); err != nil || string(e.Value()) != `{"findingKey":"sca.1.1"}` {
		t.Fatalf("read a finding: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	r.noViolations(t)
	r.denied(t, "write another key of ghas_decisions", "$KV.ghas_decisions.other", kvPut(r, stream.DecisionsBucket, "other.1"))
	r.denied(t, "consume decisions", "$JS.API.CONSUMER.CREATE.GHAS_EVENTS", func(ctx context.Context) error {
		_, err := r.js.CreateOrUpdateConsumer(ctx, stream.EventsStream, jetstream.ConsumerConfig{Durable: "spy", FilterSubject: stream.DecisionPrefix + ">", AckPolicy: jetstream.AckExplicitPolicy})
		return err
	})

	// The processor.
	p := ns.connect(t, "processor")
	cons, err := p.js.CreateOrUpdateConsumer(ctx, stream.EventsStream, jetstream.ConsumerConfig{Durable: processor.DecisionsConsumer,
		FilterSubject: stream.DecisionPrefix + ">", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("create the decisions consumer: %v", err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for msg := range batch.Messages() {
		if err := msg.DoubleAck(ctx); err != nil {
			t.Fatalf("ack: %v", err)
		}
		got++
	}
	if got != 1 {
		t.Fatalf("fetched %d decisions, want 1", got)
	}
	pkv := kvOf(t, p, stream.DecisionsBucket)
	rec, rev, _, err := decisions.Get(ctx, pkv, d.ID)
	if err != nil {
		t.Fatalf("read a decision's record: %v", err)
	}
	rec.Status.Status = decisions.StatusApplied
	if _, err := decisions.Put(ctx, pkv, rec, rev); err != nil {
		t.Fatalf("record a decision's outcome: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	p.noViolations(t)
	p.denied(t, "publish a decision", "ghas.decision.", publish(p, stream.DecisionSubject("sca")))

	// The reconciler and the setup identity.
	rc := ns.connect(t, "reconciler")
	rc.denied(t, "publish a decision", "ghas.decision.", publish(rc, stream.DecisionSubject("sast")))
	rc.denied(t, "write a decision's status", "$KV.ghas_decisions.", kvPut(rc, stream.DecisionsBucket, decisions.Key(d.ID)))
	rc.denied(t, "read a decision's status", "$JS.API.DIRECT.GET.KV_ghas_decisions.", kvGet(rc, stream.DecisionsBucket, decisions.Key(d.ID)))
	s := ns.connect(t, "setup")
	s.denied(t, "write a decision's status", "$KV.ghas_decisions.", kvPut(s, stream.DecisionsBucket, decisions.Key(d.ID)))
	s.denied(t, "publish a decision", "ghas.decision.", publish(s, stream.DecisionSubject("sast")))

	mustStore(t, admin, stream.EventsStream, stream.DecisionPrefix+">", 1) // the receiver's only
	if rec, _, _, err := decisions.Get(ctx, kvOf(t, admin, stream.DecisionsBucket), d.ID); err != nil || rec.Status.Status != decisions.StatusApplied {
		t.Errorf("the decision's status: %+v %v", rec.Status, err)
	}
}
