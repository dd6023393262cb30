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

// TestSetupOwnsTheLayout: on an empty server no long-running binary's user
// may create the layout (each waits and gives up, naming what is missing);
// the setup identity creates it whole, and then every binary finds it
// ready. The setup identity's later change of a limit is applied; a
// processor that finds another limit than its own works with the one that
// exists and changes nothing.
func TestSetupOwnsTheLayout(t *testing.T) {
	ns := startServer(t, withPassword, nil, nil)
	ctx := ctxT(t)
	for _, role := range []string{"receiver", "processor", "reconciler"} {
		c := ns.connect(t, role)
		l := stream.Layout{Replicas: 1, CreateOnly: role != "processor", StartTimeout: time.Second}
		err := stream.WaitEnsure(ctx, discard(), c.js, l)
		if !errors.Is(err, stream.ErrLayoutNotReady) || !strings.Contains(err.Error(), "NATS_START_TIMEOUT") || !strings.Contains(err.Error(), "may not create") {
			t.Errorf("%s on an empty server: %v, want a give-up naming the missing layout", role, err)
		}
		if !c.violated("$JS.API.STREAM.CREATE.") {
			t.Errorf("%s: the server did not refuse a create", role)
		}
	}

	setup := ns.connect(t, "setup")
	changes, err := stream.Apply(ctx, setup.js, stream.Layout{Replicas: 1})
	if err != nil {
		t.Fatalf("setup creates the layout: %v", err)
	}
	for _, c := range changes {
		if c.Action != stream.ActionCreated {
			t.Errorf("setup on an empty server: %v", c)
		}
	}
	clients := map[string]*client{}
	for _, role := range []string{"receiver", "processor", "reconciler"} {
		c := ns.connect(t, role)
		clients[role] = c
		if err := stream.WaitEnsure(ctx, discard(), c.js, stream.Layout{Replicas: 1, CreateOnly: role != "processor", StartTimeout: 10 * time.Second}); err != nil {
			t.Errorf("%s after the setup: %v", role, err)
		}
		if err := stream.Check(ctx, c.nc, c.js); err != nil {
			t.Errorf("%s: layout not ready: %v", role, err)
		}
	}

	// A new limit, applied by the setup step...
	changes, err = stream.Apply(ctx, setup.js, stream.Layout{Replicas: 1, EventsMaxBytes: 1 << 30})
	if err != nil {
		t.Fatalf("setup updates the layout: %v", err)
	}
	for _, c := range changes {
		if want := stream.ActionUnchanged; c.Name == stream.EventsStream && c.Action != stream.ActionUpdated || c.Name != stream.EventsStream && c.Action != want {
			t.Errorf("setup with a new limit: %v", c)
		}
	}
	if got := maxBytes(t, setup.js, stream.EventsStream); got != 1<<30 {
		t.Fatalf("GHAS_EVENTS MaxBytes = %d after the setup, want %d", got, 1<<30)
	}
	setup.noViolations(t)
	// ...which a processor with another setting leaves alone, and starts.
	proc := clients["processor"]
	start := time.Now()
	if err := stream.WaitEnsure(ctx, discard(), proc.js, stream.Layout{Replicas: 1, EventsMaxBytes: 1 << 20, StartTimeout: 10 * time.Second}); err != nil {
		t.Fatalf("processor on a layout that differs from its settings: %v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("the processor took %s: a refused update was waited out", el)
	}
	if got := maxBytes(t, setup.js, stream.EventsStream); got != 1<<30 {
		t.Errorf("GHAS_EVENTS MaxBytes = %d after the processor's start, want %d", got, 1<<30)
	}
	if !proc.violated("$JS.API.STREAM.UPDATE.GHAS_EVENTS") {
		t.Error("the server did not refuse the processor's update")
	}
	for _, role := range []string{"receiver", "reconciler"} {
		clients[role].noViolations(t)
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
			if _, err := stream.Apply(ctx, ns.connect(t, "setup").js, stream.Layout{Replicas: 1}); err != nil {
				t.Fatal(err)
			}
			t.Run("receiver", func(t *testing.T) { receiverRules(t, ns, admin) })
			t.Run("reconciler", func(t *testing.T) { reconcilerRules(t, ns, admin) })
			t.Run("processor", func(t *testing.T) { processorRules(t, ns, admin) })
			t.Run("setup", func(t *testing.T) { setupRules(t, ns, admin) })
			t.Run("console", func(t *testing.T) { consoleRules(t, ns, admin) })
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

// layoutNames are the streams of the layout and of its buckets.
func layoutNames() []string {
	var names []string
	for _, b := range (stream.Layout{}).BucketConfigs() {
		names = append(names, "KV_"+b.Bucket)
	}
	for _, s := range (stream.Layout{}).StreamConfigs() {
		names = append(names, s.Name)
	}
	return names
}

// noLayoutChanges: c may neither create nor update any stream or bucket of
// the layout (an update can shrink a stream: a delete by another name),
// nor delete or purge one, nor delete a message.
func noLayoutChanges(t *testing.T, c *client) {
	t.Helper()
	l := stream.Layout{Replicas: 1, EventsMaxBytes: 1 << 20}
	for _, b := range l.BucketConfigs() {
		b.History++
		c.denied(t, "create "+b.Bucket, "$JS.API.STREAM.CREATE.KV_"+b.Bucket, func(ctx context.Context) error {
			_, err := c.js.CreateKeyValue(ctx, b)
			return err
		})
		c.denied(t, "update "+b.Bucket, "$JS.API.STREAM.UPDATE.KV_"+b.Bucket, func(ctx context.Context) error {
			_, err := c.js.UpdateKeyValue(ctx, b)
			return err
		})
	}
	for _, cfg := range l.StreamConfigs() {
		cfg.MaxAge = time.Hour
		c.denied(t, "create "+cfg.Name, "$JS.API.STREAM.CREATE."+cfg.Name, func(ctx context.Context) error {
			_, err := c.js.CreateStream(ctx, cfg)
			return err
		})
		c.denied(t, "update "+cfg.Name, "$JS.API.STREAM.UPDATE."+cfg.Name, func(ctx context.Context) error {
			_, err := c.js.UpdateStream(ctx, cfg)
			return err
		})
	}
	c.denied(t, "create another stream", "$JS.API.STREAM.CREATE.OTHER", func(ctx context.Context) error {
		_, err := c.js.CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}})
		return err
	})
	for _, name := range layoutNames() {
		destroy(t, c, name)
	}
}

// mustKeepLayout requires that the layout is as the setup created it.
func mustKeepLayout(t *testing.T, admin *client) {
	t.Helper()
	changes, err := stream.Apply(context.Background(), admin.js, stream.Layout{Replicas: 1, CreateOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.Action != stream.ActionUnchanged {
			t.Errorf("the layout changed: %v", c)
		}
	}
}

// destroy are the ways to lose a stream's messages: delete, purge, delete
// one message.
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
	if _, err := kv.Put(ctx, "latest.5f2c", []byte(`{"import":"0123"}`)); err != nil {
		t.Fatalf("record the latest import of a scope: %v", err)
	}
	if e, err := kv.Get(ctx, "latest.5f2c"); err != nil || string(e.Value()) != `{"import":"0123"}` {
		t.Fatalf("read the latest import of a scope: %v", err)
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

	// Denied: every other event subject, KV writes, consuming events,
	// another binary's replies, destroying streams. (It reads findings: a
	// scoped decision token's repository, decisions_test.go.)
	for _, subj := range []string{stream.ReconcileSubject("code_scanning_alert"), stream.RedeliverySubject("code_scanning_alert"),
		stream.FindingSubject("sast", 1), stream.AssetSubject(1), stream.DLQSubject("ping"), stream.SinkReplayPrefix + "x"} {
		c.denied(t, "publish "+subj, subj, publish(c, subj))
	}
	c.denied(t, "write a map", "$KV.ghas_maps.", kvPut(c, stream.MapsBucket, "sast"))
	c.denied(t, "write a finding", "$KV.ghas_findings.", kvPut(c, stream.FindingsBucket, "sast.1.1"))
	c.denied(t, "write state", "$KV.ghas_state.", kvPut(c, stream.StateBucket, "watermark.1.code_scanning"))
	c.denied(t, "write another key of ghas_imports", "$KV.ghas_imports.other", kvPut(c, importsBucket, "other.1"))
	c.denied(t, "consume GHAS_EVENTS", "$JS.API.CONSUMER.CREATE.GHAS_EVENTS", func(ctx context.Context) error {
		_, err := c.js.CreateOrUpdateConsumer(ctx, stream.EventsStream, jetstream.ConsumerConfig{Durable: "spy", AckPolicy: jetstream.AckExplicitPolicy})
		return err
	})
	noLayoutChanges(t, c)
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
	mustKeepLayout(t, admin)
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
