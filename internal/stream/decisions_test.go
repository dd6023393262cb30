package stream_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

// TestLayoutUpgradesForDecisions: a layout from before decisions
// (GHAS_EVENTS without ghas.decision.>, no ghas_decisions) makes a binary
// that may not update the layout wait, naming what is missing; the setup
// step adds the subject (and the bucket, if no one could create it) in place, keeping what the stream
// holds; then a decision can be stored and its status kept 35 days.
func TestLayoutUpgradesForDecisions(t *testing.T) {
	srv := streamtest.Run(t)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	old := stream.Layout{Replicas: 1}
	for _, cfg := range old.BucketConfigs() {
		if cfg.Bucket == stream.DecisionsBucket {
			continue
		}
		if _, err := js.CreateKeyValue(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	for _, cfg := range old.StreamConfigs() {
		if cfg.Name == stream.EventsStream {
			cfg.Subjects = slices.DeleteFunc(slices.Clone(cfg.Subjects), func(s string) bool { return s == stream.DecisionPrefix+">" })
		}
		if _, err := js.CreateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.Publish(ctx, stream.WebhookSubject("ping"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}

	// A binary that does not update the layout (the receiver) waits for it.
	err = stream.WaitEnsure(ctx, slog.New(slog.DiscardHandler), js, stream.Layout{Replicas: 1, CreateOnly: true, StartTimeout: 2 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "stream GHAS_EVENTS lacks subject ghas.decision.>") || !strings.Contains(err.Error(), "run processor -setup") {
		t.Errorf("older GHAS_EVENTS: %v, want a wait naming the missing subject", err)
	}

	changes, err := stream.Apply(ctx, js, stream.Layout{Replicas: 1})
	if err != nil {
		t.Fatalf("setup over the layout before decisions: %v", err)
	}
	if c := find(changes, stream.EventsStream); c.Action != stream.ActionUpdated || !slices.Contains(c.Fields, "subjects") {
		t.Errorf("GHAS_EVENTS: %v, want updated (subjects)", c)
	}
	if c := find(changes, stream.DecisionsBucket); c.Action != stream.ActionCreated && c.Action != stream.ActionUnchanged {
		// Created by the waiting binary (a server without authorization
		// lets it create what is missing), else by the setup.
		t.Errorf("ghas_decisions: %v, want created", c)
	}
	if ack, err := js.Publish(ctx, stream.DecisionSubject("sca"), []byte(`{}`)); err != nil || ack.Stream != stream.EventsStream {
		t.Errorf("publish a decision after the upgrade: %v %v", ack, err)
	}
	s, err := js.Stream(ctx, stream.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := s.Info(ctx); info.State.Msgs != 2 {
		t.Errorf("GHAS_EVENTS holds %d messages, want the delivery from before and the decision", info.State.Msgs)
	}
	kv, err := js.KeyValue(ctx, stream.DecisionsBucket)
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.TTL() < 30*24*time.Hour {
		t.Errorf("ghas_decisions keeps a status %s, want at least 30 days", st.TTL())
	}
	if err := stream.WaitEnsure(ctx, slog.New(slog.DiscardHandler), js, stream.Layout{Replicas: 1, CreateOnly: true, StartTimeout: 2 * time.Second}); err != nil {
		t.Errorf("after the setup: %v", err)
	}
}
