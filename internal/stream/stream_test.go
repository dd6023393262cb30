package stream_test

import (
	"context"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

func TestEnsureIsIdempotentAndCheckable(t *testing.T) {
	srv := streamtest.Run(t)
	nc, js := srv.Connect() // first Ensure
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 2; i++ {
		if err := stream.Ensure(ctx, js, stream.Layout{Replicas: 1}); err != nil {
			t.Fatalf("ensure #%d: %v", i+2, err)
		}
	}
	if err := stream.Check(ctx, nc, js); err != nil {
		t.Fatalf("check: %v", err)
	}
	st, err := js.Stream(ctx, stream.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Duplicates < 10*time.Minute {
		t.Errorf("duplicate window %v < 10m", info.Config.Duplicates)
	}
	if info.Config.MaxAge != 7*24*time.Hour {
		t.Errorf("max age %v, want 7 days", info.Config.MaxAge)
	}
	// Every contract subject lands in the right stream.
	for subj, want := range map[string]string{
		stream.WebhookSubject("code_scanning_alert"): stream.EventsStream,
		stream.ReconcileSubject("dependabot_alert"):  stream.EventsStream,
		stream.RedeliverySubject("repository"):       stream.EventsStream,
		stream.FindingsKVPrefix + "sast.1296269.1":   stream.FindingsKVStream,
		stream.SinkReplayPrefix + "sast.1296269":     stream.FindingsStream,
		stream.AssetSubject(1296269):                 stream.FindingsStream,
		stream.DLQSubject("secret_scanning_alert"):   stream.DLQStream,
	} {
		got, err := js.StreamNameBySubject(ctx, subj)
		if err != nil || got != want {
			t.Errorf("subject %s: stream %q (%v), want %q", subj, got, err, want)
		}
	}
	// After the bucket is deleted, Check fails.
	if err := js.DeleteKeyValue(ctx, stream.StateBucket); err != nil {
		t.Fatal(err)
	}
	if err := stream.Check(ctx, nc, js); err == nil {
		t.Fatal("check passed with a bucket missing")
	}
}

func TestToken(t *testing.T) {
	for in, want := range map[string]string{"": "unknown", "code_scanning_alert": "code_scanning_alert", "a.b*c>d e": "a_b_c_d_e"} {
		if got := stream.Token(in); got != want {
			t.Errorf("Token(%q) = %q, want %q", in, got, want)
		}
	}
}
