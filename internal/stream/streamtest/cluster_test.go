package streamtest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/stream"
)

func TestClusterR3SurvivesANode(t *testing.T) {
	c := RunCluster(t, 3)
	_, js := c.Connect(3)
	ctx := context.Background()
	if _, err := js.Publish(ctx, stream.WebhookSubject("ping"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	c.Servers[0].Shutdown()
	// The stream may have to elect a new leader first: retry as a client
	// would, for a bounded time.
	deadline := time.Now().Add(30 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.Publish(pctx, stream.WebhookSubject("ping"), []byte(`{}`), jetstream.WithMsgID("second"))
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish with one node down: %v", err)
		}
	}
	c.Servers[0].Start()
	st, err := js.Stream(ctx, stream.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 || info.State.Msgs != 2 {
		t.Fatalf("replicas %d msgs %d, want 3 and 2", info.Config.Replicas, info.State.Msgs)
	}
}

func TestWaitFor(t *testing.T) {
	start := time.Now()
	n := 0
	WaitFor(t, 5*time.Second, "three polls", func() bool { n++; return n == 3 })
	if n != 3 || time.Since(start) > 4*time.Second {
		t.Errorf("%d polls in %s", n, time.Since(start))
	}
}
