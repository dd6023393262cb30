package webhook

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
	"github.com/ghas-relay/ghas-relay/internal/webhook/webhooktest"
)

// slowClient connects and sends the headers of a signed-looking delivery
// that announces announce body bytes, then send of them, then nothing.
func slowClient(t *testing.T, addr string, i, announce, send int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("slow client %d: %v", i, err)
	}
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: receiver\r\nContent-Type: application/json\r\n"+
		"X-GitHub-Event: code_scanning_alert\r\nX-GitHub-Delivery: slow-%d\r\n"+
		"X-Hub-Signature-256: sha256=%s\r\nContent-Length: %d\r\n\r\n%s",
		Path, i, strings.Repeat("0", 64), announce, strings.Repeat("{", send))
	return c
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// waitHeld waits until the handler holds waiting requests that wait for
// their body and inFlight whose body started.
func waitHeld(t *testing.T, h *Handler, waiting, inFlight int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for h.waiting.value() != waiting || h.inFlight.value() != inFlight {
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: %d requests wait for their body and %d are in flight, want %d and %d",
				h.waiting.value(), h.inFlight.value(), waiting, inFlight)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// 1,000 clients announce 25 MB bodies (the largest allowed) and send
// nothing, or one byte, and stall. Those that sent nothing wait for their
// body with no buffer and no slot of MaxInFlight; they reserve no body
// budget beyond the first small buffer of those that sent a byte, hold no
// large buffers, and an honest signed 2 MiB delivery sent meanwhile is
// accepted at once.
func TestSlowClientsHoldNoLargeBuffers(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2,000 sockets")
	}
	const (
		slow     = 1000
		announce = 25 << 20
		maxBody  = 25 << 20
	)
	_, js := streamtest.Run(t).Connect()
	ctx := context.Background()
	if err := stream.Ensure(ctx, js, stream.Layout{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	h := NewHandler(slog.New(slog.DiscardHandler), js, NewMetrics(metrics.NewRegistry()), Options{
		Secrets: ParseSecrets("s"), MaxBodyBytes: maxBody,
	})
	srv, err := Listen(slog.New(slog.DiscardHandler), "127.0.0.1:0", Routes(h), nil)
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx) }()
	addr := srv.Addr().String()

	before := heapInUse()
	conns := make([]net.Conn, 0, slow)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range slow {
		conns = append(conns, slowClient(t, addr, i, announce, i%2))
	}
	waitHeld(t, h, slow/2, slow/2)
	// Those that sent a byte reach their first buffer.
	deadline := time.Now().Add(10 * time.Second)
	for h.budget.held() < slow/2*firstBuffer && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	held := h.budget.held()
	during := heapInUse()
	growth := int64(during) - int64(before)
	t.Logf("%d slow clients announcing %d bytes: heap in use %+.1f MiB (%.1f KiB per client), body budget held %.1f MiB",
		slow, announce, float64(growth)/(1<<20), float64(growth)/slow/1024, float64(held)/(1<<20))
	if held > slow/2*firstBuffer {
		t.Errorf("slow clients hold %d bytes of the body budget, want at most %d", held, slow/2*firstBuffer)
	}
	// Generous: a slow client costs its connection's buffers and goroutine,
	// never a body-sized buffer (25 MB each).
	if growth > 64<<20 {
		t.Errorf("heap grew %d bytes with %d slow clients, want < 64 MiB", growth, slow)
	}

	body := paddedObject(2 << 20)
	start := time.Now()
	req := webhooktest.NewRequest("http://"+addr+Path, "code_scanning_alert", "honest-2mib", body, "s")
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("honest delivery: %v", err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("honest 2 MiB delivery: %d %s", resp.StatusCode, answer)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("honest delivery took %v", d)
	}
	t.Logf("honest 2 MiB delivery: 202 in %v", time.Since(start).Round(time.Millisecond))

	// The stalled clients are still being held (not answered).
	one := conns[1]
	_ = one.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := bufio.NewReader(one).ReadByte(); err == nil {
		t.Errorf("a stalled client got an answer")
	}
	stop()
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
	if h.budget.held() != 0 {
		t.Errorf("budget holds %d bytes after every request ended", h.budget.held())
	}
}

// Requests whose body started, over MaxInFlight, are answered 503 at once,
// with the connection closed, while the requests in flight go on.
func TestMaxInFlight(t *testing.T) {
	_, js := streamtest.Run(t).Connect()
	if err := stream.Ensure(context.Background(), js, stream.Layout{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(metrics.NewRegistry())
	h := NewHandler(slog.New(slog.DiscardHandler), js, m, Options{Secrets: ParseSecrets("s"), MaxBodyBytes: 1 << 20, MaxInFlight: 3})
	srv, err := Listen(slog.New(slog.DiscardHandler), "127.0.0.1:0", Routes(h), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() { _ = srv.Serve(ctx) }()
	addr := srv.Addr().String()
	var conns []net.Conn
	for i := range 3 {
		conns = append(conns, slowClient(t, addr, i, 1000, 1))
	}
	waitHeld(t, h, 0, 3)

	url := "http://" + addr + Path
	client := &http.Client{Timeout: 5 * time.Second}
	start := time.Now()
	resp, err := client.Do(webhooktest.NewRequest(url, "ping", "over-the-cap", []byte(`{}`), "s"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !resp.Close || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over the cap: %d, close %v, Retry-After %q; want 503, closed, Retry-After", resp.StatusCode, resp.Close, resp.Header.Get("Retry-After"))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the 503 took %v", d)
	}
	if n := m.Deliveries.Value("ping", "unavailable"); n != 1 {
		t.Errorf("unavailable counted %d times, want 1", n)
	}
	// One slot frees: the next delivery is accepted.
	conns[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for h.inFlight.value() > 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	resp, err = client.Do(webhooktest.NewRequest(url, "ping", "under-the-cap", []byte(`{}`), "s"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("after a slot freed: %d, want 202", resp.StatusCode)
	}
	for _, c := range conns {
		c.Close()
	}
}

// A client that sends part of a large announced body and stalls holds a
// body buffer bounded by what it sent (at most four times it, plus the
// first buffer), not by its Content-Length.
func TestPartialBodyHoldsWhatArrived(t *testing.T) {
	h := NewHandler(slog.New(slog.DiscardHandler), &countingPublisher{}, NewMetrics(metrics.NewRegistry()), Options{
		Secrets: ParseSecrets("s"), MaxBodyBytes: 25 << 20,
	})
	srv, err := Listen(slog.New(slog.DiscardHandler), "127.0.0.1:0", Routes(h), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() { _ = srv.Serve(ctx) }()
	for _, sent := range []int{1, 100 << 10, 1 << 20, 3 << 20} {
		c := slowClient(t, srv.Addr().String(), sent, 25<<20, sent)
		limit := int64(4*sent + firstBuffer)
		// Wait until the handler has read what was sent, then some more.
		deadline := time.Now().Add(10 * time.Second)
		for h.budget.held() < int64(sent) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
		if held := h.budget.held(); held < int64(sent) || held > limit {
			t.Errorf("sent %d of 25 MiB: budget holds %d, want between %d and %d", sent, held, sent, limit)
		}
		c.Close()
		for h.budget.held() != 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if held := h.budget.held(); held != 0 {
			t.Fatalf("budget holds %d after the client left", held)
		}
	}
}
