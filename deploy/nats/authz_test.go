package natsconf_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// importsBucket is the KV bucket of import status: the processor writes
// it, the receiver reads it.
const importsBucket = "ghas_imports"

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestLayoutAnyStartOrder: the receiver and the reconciler may create the
// layout on an empty server and see it ready; only the processor changes
// an existing stream, and the others' start does not fail on a layout that
// differs from theirs.
func TestLayoutAnyStartOrder(t *testing.T) {
	ns := startServer(t, withPassword, nil, nil)
	ctx := ctxT(t)
	recv, rec, proc := ns.connect(t, "receiver"), ns.connect(t, "reconciler"), ns.connect(t, "processor")

	createOnly := stream.Layout{Replicas: 1, CreateOnly: true}
	if err := stream.Ensure(ctx, recv.js, createOnly); err != nil {
		t.Fatalf("receiver creates the layout: %v", err)
	}
	for _, c := range []*client{recv, rec, proc} {
		if err := stream.Check(ctx, c.nc, c.js); err != nil {
			t.Errorf("%s: layout not ready: %v", c.role, err)
		}
	}
	if err := stream.Ensure(ctx, rec.js, createOnly); err != nil {
		t.Fatalf("reconciler on an existing layout: %v", err)
	}
	// The processor (owner) applies a changed limit...
	if err := stream.Ensure(ctx, proc.js, stream.Layout{Replicas: 1, EventsMaxBytes: 1 << 30}); err != nil {
		t.Fatalf("processor updates the layout: %v", err)
	}
	if got := maxBytes(t, proc.js, stream.EventsStream); got != 1<<30 {
		t.Fatalf("GHAS_EVENTS MaxBytes = %d after the processor's update, want %d", got, 1<<30)
	}
	// ...which a receiver with other settings leaves alone, and starts.
	if err := stream.Ensure(ctx, recv.js, stream.Layout{Replicas: 1, EventsMaxBytes: 1 << 20, CreateOnly: true}); err != nil {
		t.Fatalf("receiver on a layout that differs from its settings: %v", err)
	}
	if got := maxBytes(t, proc.js, stream.EventsStream); got != 1<<30 {
		t.Errorf("GHAS_EVENTS MaxBytes = %d after the receiver's start, want %d", got, 1<<30)
	}
	// And its attempt to change it anyway is refused.
	cfg := stream.Layout{Replicas: 1, EventsMaxBytes: 1 << 20}.StreamConfigs()[0]
	recv.denied(t, "update GHAS_EVENTS", "$JS.API.STREAM.UPDATE.GHAS_EVENTS", func(ctx context.Context) error {
		_, err := recv.js.UpdateStream(ctx, cfg)
		return err
	})
	for _, c := range []*client{rec, proc} {
		c.noViolations(t)
	}
}

func maxBytes(t *testing.T, js jetstream.JetStream, name string) int64 {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().Config.MaxBytes
}

// TestDenials proves each rule of permissions.conf, with passwords and
// with nkeys: what a role may do works, what it may not is refused by the
// server and leaves no trace.
func TestDenials(t *testing.T) {
	for _, mode := range []struct {
		name string
		auth auth
	}{{"password", withPassword}, {"nkey", withNKey}} {
		t.Run(mode.name, func(t *testing.T) {
			ns := startServer(t, mode.auth, nil, nil)
			ctx := ctxT(t)
			admin := ns.connect(t, "admin")
			if err := stream.Ensure(ctx, admin.js, stream.Layout{Replicas: 1}); err != nil {
				t.Fatal(err)
			}
			if _, err := admin.js.KeyValue(ctx, importsBucket); err != nil {
				if _, err := admin.js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: importsBucket}); err != nil {
					t.Fatal(err)
				}
			}
			t.Run("receiver", func(t *testing.T) { receiverRules(t, ns, admin) })
			t.Run("reconciler", func(t *testing.T) { reconcilerRules(t, ns, admin) })
			t.Run("processor", func(t *testing.T) { processorRules(t, ns, admin) })
		})
	}
}

// publish publishes a JetStream message on subject and returns its error.
func publish(c *client, subject string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		_, err := c.js.Publish(ctx, subject, []byte(`{}`))
		return err
	}
}

func kvPut(c *client, bucket, key string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		kv, err := c.js.KeyValue(ctx, bucket)
		if err != nil {
			return err
		}
		_, err = kv.Put(ctx, key, []byte(`{"forged":true}`))
		return err
	}
}

func kvGet(c *client, bucket, key string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		kv, err := c.js.KeyValue(ctx, bucket)
		if err != nil {
			return err
		}
		_, err = kv.Get(ctx, key)
		return err
	}
}

// destroy are the ways to lose a stream's messages: delete, purge, delete
// one message, shrink its limits.
func destroy(t *testing.T, c *client, name string) {
	t.Helper()
	c.denied(t, "delete "+name, "$JS.API.STREAM.DELETE."+name, func(ctx context.Context) error {
		return c.js.DeleteStream(ctx, name)
	})
	c.denied(t, "purge "+name, "$JS.API.STREAM.PURGE."+name, func(ctx context.Context) error {
		s, err := c.js.Stream(ctx, name)
		if err != nil {
			return err
		}
		return s.Purge(ctx)
	})
	c.denied(t, "delete a message of "+name, "$JS.API.STREAM.MSG.DELETE."+name, func(ctx context.Context) error {
		s, err := c.js.Stream(ctx, name)
		if err != nil {
			return err
		}
		return s.DeleteMsg(ctx, 1)
	})
}

// mustStore requires that the admin sees n messages on subject in name.
func mustStore(t *testing.T, admin *client, name, subject string, want uint64) {
	t.Helper()
	s, err := admin.js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	if n != want {
		t.Errorf("%s holds %d messages on %s, want %d", name, n, subject, want)
	}
}

func receiverRules(t *testing.T, ns *natsServer, admin *client) {
	ctx := ctxT(t)
	c := ns.connect(t, "receiver")
	// Allowed: webhook deliveries, import status reads, readiness.
	ack, err := c.js.Publish(ctx, stream.WebhookSubject("ping"), []byte(`{}`), jetstream.WithMsgID("d-1"))
	if err != nil || ack.Stream != stream.EventsStream {
		t.Fatalf("publish a webhook: %v %+v", err, ack)
	}
	akv, err := admin.js.KeyValue(ctx, importsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := akv.Put(ctx, "imp-1", []byte(`{"status":"processed"}`)); err != nil {
		t.Fatal(err)
	}
	kv, err := c.js.KeyValue(ctx, importsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, "imp-1"); err != nil || string(e.Value()) != `{"status":"processed"}` {
		t.Fatalf("read an import status: %v", err)
	}
	if _, err := kv.Create(ctx, "import.0123", []byte(`{"status":"accepted"}`)); err != nil {
		t.Fatalf("record an accepted import: %v", err)
	}
	if err := c.nc.Publish("ghas.import.sarif", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := c.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := stream.Check(ctx, c.nc, c.js); err != nil {
		t.Fatalf("readiness: %v", err)
	}
	time.Sleep(100 * time.Millisecond) // a refusal would arrive by now
	c.noViolations(t)

	// Denied: every other event subject, KV writes, reading findings,
	// consuming events, another binary's replies, destroying streams.
	for _, subj := range []string{stream.ReconcileSubject("code_scanning_alert"), stream.RedeliverySubject("code_scanning_alert"),
		stream.FindingSubject("sast", 1), stream.AssetSubject(1), stream.DLQSubject("ping"), stream.SinkReplayPrefix + "x"} {
		c.denied(t, "publish "+subj, subj, publish(c, subj))
	}
	c.denied(t, "write a map", "$KV.ghas_maps.", kvPut(c, stream.MapsBucket, "sast"))
	c.denied(t, "write a finding", "$KV.ghas_findings.", kvPut(c, stream.FindingsBucket, "sast.1.1"))
	c.denied(t, "write state", "$KV.ghas_state.", kvPut(c, stream.StateBucket, "watermark.1.code_scanning"))
	c.denied(t, "write another key of ghas_imports", "$KV.ghas_imports.other", kvPut(c, importsBucket, "other.1"))
	c.denied(t, "read a finding", "$JS.API.DIRECT.GET.KV_ghas_findings.", kvGet(c, stream.FindingsBucket, "sast.1.1"))
	c.denied(t, "consume GHAS_EVENTS", "$JS.API.CONSUMER.CREATE.GHAS_EVENTS", func(ctx context.Context) error {
		_, err := c.js.CreateOrUpdateConsumer(ctx, stream.EventsStream, jetstream.ConsumerConfig{Durable: "spy", AckPolicy: jetstream.AckExplicitPolicy})
		return err
	})
	for _, name := range []string{stream.EventsStream, stream.FindingsStream, stream.DLQStream, "KV_" + stream.MapsBucket} {
		destroy(t, c, name)
	}
	subscribeDenied(t, c, "_INBOX.processor.>")
	subscribeDenied(t, c, "ghas.findings.>")

	mustStore(t, admin, stream.EventsStream, stream.WebhookPrefix+">", 1)
	mustStore(t, admin, stream.EventsStream, stream.ReconcilePrefix+">", 0)
	mustStore(t, admin, stream.EventsStream, stream.RedeliveryPrefix+">", 0)
	if e, err := kvOf(t, admin, stream.MapsBucket).Get(ctx, "sast"); err == nil && string(e.Value()) == `{"forged":true}` {
		t.Error("the receiver's map write landed")
	}
	if e, err := akv.Get(ctx, "imp-1"); err != nil || string(e.Value()) != `{"status":"processed"}` {
		t.Errorf("import status changed: %v", err)
	}
	if _, err := admin.js.Consumer(ctx, stream.EventsStream, "spy"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("the receiver's consumer exists: %v", err)
	}
}

func kvOf(t *testing.T, c *client, bucket string) jetstream.KeyValue {
	t.Helper()
	kv, err := c.js.KeyValue(context.Background(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// subscribeDenied requires that the server refuses c a subscription.
func subscribeDenied(t *testing.T, c *client, subject string) {
	t.Helper()
	if _, err := c.nc.SubscribeSync(subject); err != nil {
		t.Fatal(err)
	}
	if err := c.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		found := false
		for _, v := range c.violations {
			if strings.Contains(v, "Subscription to") && strings.Contains(v, `"`+subject+`"`) {
				found = true
			}
		}
		c.mu.Unlock()
		if found {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: subscription to %s not refused", c.role, subject)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
