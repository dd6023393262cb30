package natsconf_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/ghclient"
	"github.com/ghas-relay/ghas-relay/internal/reconcile"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

func reconcilerRules(t *testing.T, ns *natsServer, admin *client) {
	ctx := ctxT(t)
	c := ns.connect(t, "reconciler")
	// Allowed: corrections and recovered deliveries, its state, reading
	// findings (keys and values) and maps.
	for _, subj := range []string{stream.ReconcileSubject("code_scanning_alert"), stream.RedeliverySubject("code_scanning_alert")} {
		if ack, err := c.js.Publish(ctx, subj, []byte(`{}`)); err != nil || ack.Stream != stream.EventsStream {
			t.Fatalf("publish %s: %v", subj, err)
		}
	}
	state := kvOf(t, c, stream.StateBucket)
	for _, key := range reconcilerKeys {
		if _, err := state.Put(ctx, key, []byte(`{}`)); err != nil {
			t.Fatalf("write state %s: %v", key, err)
		}
		if _, err := state.Get(ctx, key); err != nil {
			t.Fatalf("read state %s: %v", key, err)
		}
	}
	if _, err := kvOf(t, admin, stream.FindingsBucket).Put(ctx, "sast.1.1", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	findings := kvOf(t, c, stream.FindingsBucket)
	if _, err := findings.Get(ctx, "sast.1.1"); err != nil {
		t.Fatalf("read a finding: %v", err)
	}
	keys, err := findings.ListKeys(ctx)
	if err != nil {
		t.Fatalf("list finding keys: %v", err)
	}
	n := 0
	for range keys.Keys() {
		n++
	}
	if n != 1 {
		t.Fatalf("listed %d finding keys, want 1", n)
	}
	w, err := kvOf(t, c, stream.MapsBucket).WatchAll(ctx)
	if err != nil {
		t.Fatalf("watch maps: %v", err)
	}
	select {
	case <-w.Updates(): // nil marks the end of the initial values
	case <-time.After(10 * time.Second):
		t.Fatal("maps watch got nothing")
	}
	_ = w.Stop()
	if err := stream.Check(ctx, c.nc, c.js); err != nil {
		t.Fatalf("readiness: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	c.noViolations(t)

	// Denied: webhooks, imports, findings, maps, dead letters, layout changes.
	for _, subj := range []string{stream.WebhookSubject("code_scanning_alert"), "ghas.import.sarif", stream.FindingSubject("sast", 1),
		stream.AssetSubject(1), stream.DLQSubject("ping")} {
		c.denied(t, "publish "+subj, subj, publish(c, subj))
	}
	c.denied(t, "write a finding", "$KV.ghas_findings.", kvPut(c, stream.FindingsBucket, "sast.1.1"))
	c.denied(t, "write a map", "$KV.ghas_maps.", kvPut(c, stream.MapsBucket, "sast"))
	c.denied(t, "write an import status", "$KV.ghas_imports.", kvPut(c, importsBucket, "imp-1"))
	// ghas_state keys that are not its own: the sink's claims, the
	// processor's rule cache, anything without one of its prefixes.
	if _, err := kvOf(t, admin, stream.StateBucket).Put(ctx, "sink.claim", []byte(`{"owner":"sink"}`)); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"sink.claim", "rule.abc", "corr.1.abc", "other"} {
		c.denied(t, "write state "+key, "$KV.ghas_state."+key, kvPut(c, stream.StateBucket, key))
		c.denied(t, "read state "+key, "$JS.API.DIRECT.GET.KV_ghas_state.$KV.ghas_state."+key, kvGet(c, stream.StateBucket, key))
	}
	// Nor any key by its sequence, directly or through the stream API.
	c.denied(t, "read state by sequence", `$JS.API.DIRECT.GET.KV_ghas_state"`, func(ctx context.Context) error {
		s, err := c.js.Stream(ctx, "KV_"+stream.StateBucket)
		if err != nil {
			return err
		}
		_, err = s.GetMsg(ctx, 1)
		return err
	})
	c.denied(t, "read state by sequence (stream API)", "$JS.API.STREAM.MSG.GET.KV_ghas_state", func(ctx context.Context) error {
		_, err := c.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KV_ghas_state", []byte(`{"seq":1}`))
		return err
	})
	noLayoutChanges(t, c)
	subscribeDenied(t, c, "_INBOX.receiver.>")
	mustStore(t, admin, stream.EventsStream, stream.WebhookPrefix+">", 1) // the receiver's only
	if e, err := kvOf(t, admin, stream.FindingsBucket).Get(ctx, "sast.1.1"); err != nil || string(e.Value()) != `{}` {
		t.Errorf("the reconciler's finding write landed: %v", err)
	}
	if e, err := kvOf(t, admin, stream.StateBucket).Get(ctx, "sink.claim"); err != nil || string(e.Value()) != `{"owner":"sink"}` {
		t.Errorf("the sink's claim changed: %v", err)
	}
	mustKeepLayout(t, admin)
}

// reconcilerKeys are a key of each ghas_state prefix the reconciler owns:
// page validators, custom property pages, delta watermarks, the
// missed-delivery checkpoint, run reports, a run lease.
var reconcilerKeys = []string{
	ghclient.ETagKey("https://api.github.com/orgs/o/code-scanning/alerts"),
	"props." + ghclient.ETagKey("https://api.github.com/orgs/o/properties/values"),
	"watermark.1.code_scanning",
	reconcile.CheckpointKey,
	reconcile.ReportKey(reconcile.ModeFull),
	reconcile.SuccessKey(reconcile.ModeFull),
	"lease.reconciler",
}

func processorRules(t *testing.T, ns *natsServer, admin *client) {
	ctx := ctxT(t)
	c := ns.connect(t, "processor")
	// Allowed: consume events (durable, fetch, ack), write findings, maps,
	// import status and its state keys, assets and dead letters, update
	// the layout.
	cons, err := c.js.CreateOrUpdateConsumer(ctx, stream.EventsStream, jetstream.ConsumerConfig{Durable: "ghas-processor", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("create consumer: %v", err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatalf("ack: %v", err)
		}
		got++
	}
	if got != 1 {
		t.Fatalf("fetched %d events, want 1", got)
	}
	for bucket, key := range map[string]string{stream.FindingsBucket: "sast.1.2", stream.MapsBucket: "sca", importsBucket: "imp-2", stream.StateBucket: "rule.abc"} {
		kv := kvOf(t, c, bucket)
		if _, err := kv.Put(ctx, key, []byte(`{}`)); err != nil {
			t.Fatalf("write %s %s: %v", bucket, key, err)
		}
		if _, err := kv.Get(ctx, key); err != nil {
			t.Fatalf("read %s %s: %v", bucket, key, err)
		}
	}
	// The correlation index: written, read and deleted under
	// compare-and-set.
	idx := kvOf(t, c, stream.StateBucket)
	if rev, err := idx.Create(ctx, "corr.1.abc", []byte(`{}`)); err != nil {
		t.Fatalf("create corr.1.abc: %v", err)
	} else if _, err := idx.Get(ctx, "corr.1.abc"); err != nil {
		t.Fatalf("read corr.1.abc: %v", err)
	} else if err := idx.Delete(ctx, "corr.1.abc", jetstream.LastRevision(rev)); err != nil {
		t.Fatalf("delete corr.1.abc: %v", err)
	}
	for _, subj := range []string{stream.AssetSubject(1), stream.DLQSubject("ping")} {
		if _, err := c.js.Publish(ctx, subj, []byte(`{}`)); err != nil {
			t.Fatalf("publish %s: %v", subj, err)
		}
	}
	if err := stream.Check(ctx, c.nc, c.js); err != nil {
		t.Fatalf("readiness: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	c.noViolations(t)

	// Denied: raw events of any origin, finding messages that bypass KV,
	// the reconciler's state, destroying streams.
	for _, subj := range []string{stream.WebhookSubject("ping"), stream.ReconcileSubject("ping"), stream.RedeliverySubject("ping"),
		"ghas.import.sarif", stream.FindingSubject("sast", 1)} {
		c.denied(t, "publish "+subj, subj, publish(c, subj))
	}
	c.denied(t, "write the reconciler's state", "$KV.ghas_state.watermark.", kvPut(c, stream.StateBucket, "watermark.1.code_scanning"))
	noLayoutChanges(t, c)
	subscribeDenied(t, c, "_INBOX.reconciler.>")
	mustKeepLayout(t, admin)
}

// setupRules: the setup identity reads and changes the layout and touches
// nothing else: no event, no finding, no KV key read or written, no
// consumer, no stream deleted or purged.
func setupRules(t *testing.T, ns *natsServer, admin *client) {
	ctx := ctxT(t)
	c := ns.connect(t, "setup")
	if changes, err := stream.Apply(ctx, c.js, stream.Layout{Replicas: 1}); err != nil || len(changes) == 0 {
		t.Fatalf("apply the layout: %v", err)
	}
	if err := stream.Check(ctx, c.nc, c.js); err != nil {
		t.Fatalf("read the layout: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	c.noViolations(t)

	for _, subj := range []string{stream.WebhookSubject("ping"), stream.ReconcileSubject("ping"), "ghas.import.sarif",
		stream.AssetSubject(1), stream.DLQSubject("ping"), stream.SinkReplayPrefix + "x"} {
		c.denied(t, "publish "+subj, subj, publish(c, subj))
	}
	for bucket, key := range map[string]string{stream.FindingsBucket: "sast.1.1", stream.MapsBucket: "sast", stream.StateBucket: "watermark.1.x", importsBucket: "import.1"} {
		c.denied(t, "write "+bucket, "$KV."+bucket+".", kvPut(c, bucket, key))
		c.denied(t, "read "+bucket, "$JS.API.DIRECT.GET.KV_"+bucket+".", kvGet(c, bucket, key))
	}
	c.denied(t, "consume GHAS_EVENTS", "$JS.API.CONSUMER.CREATE.GHAS_EVENTS", func(ctx context.Context) error {
		_, err := c.js.CreateOrUpdateConsumer(ctx, stream.EventsStream, jetstream.ConsumerConfig{Durable: "spy", AckPolicy: jetstream.AckExplicitPolicy})
		return err
	})
	for _, name := range layoutNames() {
		destroy(t, c, name)
	}
	subscribeDenied(t, c, "_INBOX.processor.>")
	mustKeepLayout(t, admin)
}
