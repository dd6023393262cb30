package webhook

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/webhook/webhooktest"
)

// heldPublisher holds every publish until released.
type heldPublisher struct {
	entered chan struct{}
	release chan struct{}
}

func (p heldPublisher) PublishMsg(ctx context.Context, _ *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	p.entered <- struct{}{}
	select {
	case <-p.release:
		return &jetstream.PubAck{Stream: "GHAS_EVENTS"}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestLargeBodyBudget: large bodies in flight are bounded by MaxBodyMemory;
// one that cannot reserve memory in time is answered 503, and memory is
// released once a delivery is answered.
func TestLargeBodyBudget(t *testing.T) {
	const size = 3 << 20
	body := paddedObject(size)
	pub := heldPublisher{entered: make(chan struct{}, 4), release: make(chan struct{})}
	m := NewMetrics(metrics.NewRegistry())
	h := NewHandler(slog.New(slog.DiscardHandler), pub, m, Options{
		Secrets: ParseSecrets("s"), MaxBodyBytes: 4 << 20, MaxBodyMemory: 2*size + size/2, BudgetWait: 100 * time.Millisecond,
	})
	srv := httptest.NewServer(Routes(h))
	t.Cleanup(srv.Close)
	url := srv.URL + Path
	send := func(id string) int {
		status, _ := do(t, webhooktest.NewRequest(url, "ping", id, body, "s"))
		return status
	}
	var wg sync.WaitGroup
	statuses := make([]int, 2)
	for i := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); statuses[i] = send("held-" + string(rune('a'+i))) }()
	}
	<-pub.entered
	<-pub.entered // two large bodies held: the budget has room for no third
	if status := send("third"); status != http.StatusServiceUnavailable {
		t.Fatalf("third large delivery: %d, want 503", status)
	}
	if n := m.Deliveries.Value("ping", "unavailable"); n != 1 {
		t.Fatalf("unavailable counted %d times, want 1", n)
	}
	close(pub.release)
	wg.Wait()
	if statuses[0] != 202 || statuses[1] != 202 {
		t.Fatalf("held deliveries: %v, want 202", statuses)
	}
	if status := send("after"); status != 202 {
		t.Fatalf("after release: %d, want 202 (memory not released?)", status)
	}
	if h.budget.free != 2*size+size/2 {
		t.Fatalf("budget free %d after all answered, want %d", h.budget.free, 2*size+size/2)
	}
	// A chunked large body grows its buffer as it arrives and is accepted.
	req := webhooktest.NewRequest(url, "ping", "chunked", body, "s")
	req.ContentLength = -1
	if status, resp := do(t, req); status != 202 {
		t.Fatalf("chunked large delivery: %d %q", status, resp)
	}
}
