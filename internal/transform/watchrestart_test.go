package transform

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

// TestWatcherOutlivesJetStreamUnavailable: a binary that starts while
// JetStream cannot answer (a node restarting, a leader being elected: the
// random-fault test's seed 116 caught a reconciler exiting on "watch maps:
// JetStream system temporarily unavailable") keeps its watcher: Run waits
// and watches again instead of returning, and the maps load once
// JetStream is back. The same when the watch breaks later.
func TestWatcherOutlivesJetStreamUnavailable(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a server")
	}
	srv := streamtest.Run(t)
	srv.Connect() // the layout
	// The binaries' own connection: it never buffers while disconnected,
	// so a request fails at once when the server is away.
	nc, err := stream.Connect(slog.New(slog.NewTextHandler(io.Discard, nil)), stream.ConnConfig{URL: srv.URL(), Name: "watcher"})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, stream.MapsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := Seed(ctx, kv); err != nil {
		t.Fatal(err)
	}

	srv.Shutdown()
	w := NewWatcher(slog.New(slog.NewTextHandler(io.Discard, nil)), kv)
	w.RewatchOn(nc.StatusChanged(nats.CONNECTED))
	// Run's context has no deadline, as in the binaries: JetStream's
	// requests then take its own timeout. Under the test's 60 s deadline,
	// a consumer request sent as the server went away waited 60 s.
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	select {
	case err := <-done:
		t.Fatalf("Run returned while JetStream was away: %v", err)
	case <-time.After(2 * time.Second):
	}
	srv.Start()
	if err := w.WaitReady(ctx); err != nil {
		t.Fatalf("maps not loaded after JetStream came back: %v", err)
	}

	// A watch that breaks later (the server gone and back) is watched
	// again at the reconnection: a map changed afterwards takes effect in
	// seconds. Without the rewatch, the ordered consumer noticed the
	// restart by missed heartbeats only, and the change took 18.5 s.
	srv.Shutdown()
	time.Sleep(time.Second)
	srv.Start()
	changed := []byte(`{"version": 1}`)
	var rev uint64
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if rev, err = kv.Put(ctx, "unknown-key", changed); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := w.WaitRevision(wctx, rev); err != nil {
		t.Errorf("an update after the watch broke was not seen: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned: %v", err)
	default:
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("Run at stop: %v", err)
	}
}
