package webhook

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/webhook/webhooktest"
)

// gatePublisher acks once released.
type gatePublisher struct {
	entered chan struct{}
	release chan struct{}
}

func (g gatePublisher) PublishMsg(ctx context.Context, _ *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	close(g.entered)
	select {
	case <-g.release:
		return &jetstream.PubAck{Stream: "GHAS_EVENTS", Sequence: 1}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestServeFinishesInFlight: shutdown stops accepting but lets a request
// that is waiting for its ack finish with 202.
func TestServeFinishesInFlight(t *testing.T) {
	pub := gatePublisher{entered: make(chan struct{}), release: make(chan struct{})}
	h := NewHandler(slog.New(slog.DiscardHandler), pub, NewMetrics(metrics.NewRegistry()), Options{Secrets: ParseSecrets("s"), MaxBodyBytes: 1 << 20})
	srv, err := Listen(slog.New(slog.DiscardHandler), "127.0.0.1:0", Routes(h), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := srv.HTTP(); c.ReadHeaderTimeout == 0 || c.ReadTimeout == 0 || c.WriteTimeout == 0 || c.IdleTimeout == 0 {
		t.Fatal("a server timeout is not set")
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()

	url := "http://" + srv.Addr().String() + Path
	type result struct {
		status int
		err    error
	}
	answered := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(webhooktest.NewRequest(url, "ping", "d-inflight", []byte(`{}`), "s"))
		if err != nil {
			answered <- result{err: err}
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		answered <- result{status: resp.StatusCode}
	}()
	<-pub.entered
	cancel() // shutdown begins while the request waits for its ack
	// New connections are refused once shutdown closed the listener.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		if _, err := c.Get("http://" + srv.Addr().String() + "/healthz"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections during shutdown")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(pub.release)
	if r := <-answered; r.err != nil || r.status != http.StatusAccepted {
		t.Fatalf("in-flight request: %d, %v; want 202", r.status, r.err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v", err)
	}
}
