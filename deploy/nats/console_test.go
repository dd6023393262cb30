package natsconf_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/console"
	"github.com/ghas-relay/ghas-relay/internal/console/index"
	"github.com/ghas-relay/ghas-relay/internal/sink"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// consoleRules: the console does its whole job — waits for the layout,
// loads the findings bucket and the history of GHAS_FINDINGS, reads a
// document and a revision — and can change nothing: no message, no key,
// no stream, not the sink's consumer, not another bucket's keys.
func consoleRules(t *testing.T, ns *natsServer, admin *client) {
	ctx := ctxT(t)
	doc := `{"schemaVersion":1,"findingKey":"sast.5.1","findingTypeName":"APPLICATION_SAST","source":"s","assetDetail":{"fullName":"o/r"},` +
		`"findings":[{"name":"n","findingStatus":"ACTIVE","severity":"HIGH","firstFoundOn":null,"lastFoundOn":null,"lastFixedOn":null}]}`
	if _, err := kvOf(t, admin, stream.FindingsBucket).Put(ctx, "sast.5.1", []byte(doc)); err != nil {
		t.Fatal(err)
	}
	// The sink's durable consumer, as the processor makes it.
	if _, err := admin.js.CreateOrUpdateConsumer(ctx, stream.FindingsStream, jetstream.ConsumerConfig{Durable: sink.DefaultDurable, AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	c := ns.connect(t, "console")

	// Allowed: the whole job.
	if err := stream.WaitEnsure(ctx, discard(), c.js, stream.Layout{Replicas: 1, CreateOnly: true, LookOnly: true, StartTimeout: 10 * time.Second}); err != nil {
		t.Fatalf("wait for the layout: %v", err)
	}
	if err := stream.Check(ctx, c.nc, c.js); err != nil {
		t.Fatalf("readiness: %v", err)
	}
	ix := index.New()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- index.NewReader(discard(), ix, c.js).Run(rctx) }()
	waitFor(t, "the console's index", func() bool { return ix.Ready() && len(ix.Revisions("sast.5.1")) > 0 })
	if _, err := kvOf(t, admin, stream.FindingsBucket).Put(ctx, "sast.5.1", []byte(doc[:len(doc)-3]+`,"priority":{"score":7,"factors":[]}}]}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a live update", func() bool { return len(ix.Revisions("sast.5.1")) == 2 })
	store := console.NewStore(c.js)
	if _, ok, err := store.Document(ctx, "sast.5.1"); !ok || err != nil {
		t.Fatalf("read a document: %v %v", ok, err)
	}
	if _, ok, err := store.Revision(ctx, ix.Revisions("sast.5.1")[0].Sequence); !ok || err != nil {
		t.Fatalf("read a revision: %v %v", ok, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("the reader: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	c.noViolations(t)

	// Denied: every message, every key, every change of the layout.
	for _, subj := range []string{stream.WebhookSubject("ping"), stream.ReconcileSubject("ping"), stream.RedeliverySubject("ping"), "ghas.import.sarif",
		stream.FindingSubject("sast", 5), stream.AssetSubject(5), stream.DLQSubject("ping"), stream.SinkReplayPrefix + "x"} {
		c.denied(t, "publish "+subj, subj, publish(c, subj))
	}
	for bucket, key := range map[string]string{stream.FindingsBucket: "sast.5.1", stream.MapsBucket: "sast", stream.StateBucket: "watermark.1.x", importsBucket: "import.1"} {
		c.denied(t, "write "+bucket, "$KV."+bucket+".", kvPut(c, bucket, key))
	}
	c.denied(t, "delete a finding", "$KV.ghas_findings.", func(ctx context.Context) error {
		return kvOf(t, c, stream.FindingsBucket).Delete(ctx, "sast.5.1")
	})
	for bucket, key := range map[string]string{stream.MapsBucket: "sast", stream.StateBucket: "sink.claim", importsBucket: "import.1", stream.DecisionsBucket: "decision.1"} {
		c.denied(t, "read "+bucket, "$JS.API.DIRECT.GET.KV_"+bucket+".", kvGet(c, bucket, key))
	}
	c.denied(t, "redefine the sink's consumer", "$JS.API.CONSUMER.CREATE.GHAS_FINDINGS.ghas-sink", func(ctx context.Context) error {
		_, err := c.js.CreateOrUpdateConsumer(ctx, stream.FindingsStream, jetstream.ConsumerConfig{Durable: sink.DefaultDurable, AckPolicy: jetstream.AckNonePolicy})
		return err
	})
	c.denied(t, "delete the sink's consumer", "$JS.API.CONSUMER.DELETE.GHAS_FINDINGS.ghas-sink", func(ctx context.Context) error {
		return c.js.DeleteConsumer(ctx, stream.FindingsStream, sink.DefaultDurable)
	})
	c.denied(t, "consume GHAS_EVENTS", "$JS.API.CONSUMER.CREATE.GHAS_EVENTS", func(ctx context.Context) error {
		_, err := c.js.OrderedConsumer(ctx, stream.EventsStream, jetstream.OrderedConsumerConfig{})
		return err
	})
	c.denied(t, "ack for the sink", "$JS.ACK.GHAS_FINDINGS", func(ctx context.Context) error {
		_, err := c.nc.RequestWithContext(ctx, "$JS.ACK.GHAS_FINDINGS.ghas-sink.1.1.1.1.0", []byte("+ACK"))
		return err
	})
	noLayoutChanges(t, c)
	subscribeDenied(t, c, "_INBOX.processor.>")
	subscribeDenied(t, c, "ghas.findings.>")

	if info, err := admin.js.Consumer(ctx, stream.FindingsStream, sink.DefaultDurable); err != nil || info.CachedInfo().Config.AckPolicy != jetstream.AckExplicitPolicy {
		t.Errorf("the sink's consumer changed: %v", err)
	}
	if e, err := kvOf(t, admin, stream.FindingsBucket).Get(ctx, "sast.5.1"); err != nil || e.Operation() != jetstream.KeyValuePut {
		t.Errorf("the finding changed: %v", err)
	}
	mustKeepLayout(t, admin)
}
