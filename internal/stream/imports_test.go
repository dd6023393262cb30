package stream_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

// TestEnsureUpgradesForImports: a layout from before imports (GHAS_EVENTS
// without ghas.import.>, GHAS_FINDINGS sourcing 3-token keys only, no
// ghas_imports) is updated in place: imports can be stored, and an
// imported finding's 4-token key reaches ghas.findings.<type>.<id>.
func TestEnsureUpgradesForImports(t *testing.T) {
	srv := streamtest.Run(t)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	old := stream.Layout{Replicas: 1}
	for _, cfg := range old.BucketConfigs() {
		if cfg.Bucket == stream.ImportsBucket {
			continue
		}
		if _, err := js.CreateKeyValue(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	for _, cfg := range old.StreamConfigs() {
		switch cfg.Name {
		case stream.EventsStream:
			cfg.Subjects = []string{stream.WebhookPrefix + ">", stream.ReconcilePrefix + ">", stream.RedeliveryPrefix + ">"}
		case stream.FindingsStream:
			cfg.Sources[0].SubjectTransforms = cfg.Sources[0].SubjectTransforms[:1]
		}
		if _, err := js.CreateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	kv, _ := js.KeyValue(ctx, stream.FindingsBucket)
	if _, err := kv.Put(ctx, "sast.7.claude-security.abc", []byte(`{"findingKey":"sast.7.claude-security.abc"}`)); err != nil {
		t.Fatal(err)
	}
	if err := stream.Ensure(ctx, js, stream.Layout{Replicas: 1}); err != nil {
		t.Fatalf("ensure over the layout before imports: %v", err)
	}
	if _, err := js.Publish(ctx, stream.ImportSubject("sarif"), []byte(`{}`)); err != nil {
		t.Errorf("publish an import after the upgrade: %v", err)
	}
	if _, err := js.KeyValue(ctx, stream.ImportsBucket); err != nil {
		t.Errorf("bucket %s: %v", stream.ImportsBucket, err)
	}
	if _, err := kv.Put(ctx, "sast.7.claude-security.def", []byte(`{"findingKey":"sast.7.claude-security.def"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "sast.7.12", []byte(`{"findingKey":"sast.7.12"}`)); err != nil {
		t.Fatal(err)
	}
	st, _ := js.Stream(ctx, stream.FindingsStream)
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := st.Info(ctx, jetstream.WithSubjectFilter(stream.FindingSubject("sast", 7)))
		if err == nil && info.State.Subjects[stream.FindingSubject("sast", 7)] >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("imported and GitHub finding keys not both sourced to %s: %v %v", stream.FindingSubject("sast", 7), err, info)
		}
		time.Sleep(20 * time.Millisecond)
	}
	m, err := st.GetLastMsgForSubject(ctx, stream.FindingSubject("sast", 7))
	if err != nil || string(m.Data) != `{"findingKey":"sast.7.12"}` {
		t.Errorf("last sourced message %v %v", m, err)
	}
}
