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

// TestEnsureUpgradesFindingsStream: a GHAS_FINDINGS created by the first
// layout (findings published to it directly, bucket history 1) is updated
// in place to source KV ghas_findings.
func TestEnsureUpgradesFindingsStream(t *testing.T) {
	srv := streamtest.Run(t)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: stream.FindingsBucket, History: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream.FindingsStream, Subjects: []string{stream.FindingsPrefix + ">", stream.AssetsPrefix + ">"}, Duplicates: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, stream.FindingSubject("sast", 1), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if err := stream.Ensure(ctx, js, stream.Layout{Replicas: 1}); err != nil {
		t.Fatalf("ensure over the first layout: %v", err)
	}
	kv, _ := js.KeyValue(ctx, stream.FindingsBucket)
	if _, err := kv.Put(ctx, "sast.1.2", []byte(`{"findingKey":"sast.1.2"}`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ok, _ := stream.FindingsCaughtUp(ctx, js); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("GHAS_FINDINGS does not source the bucket after the upgrade")
		}
		time.Sleep(20 * time.Millisecond)
	}
	st, _ := js.Stream(ctx, stream.FindingsStream)
	info, _ := st.Info(ctx)
	if info.State.Msgs != 2 {
		t.Errorf("GHAS_FINDINGS holds %d messages, want the old one and the sourced one", info.State.Msgs)
	}
}
