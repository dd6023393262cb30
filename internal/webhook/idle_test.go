package webhook

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
	"github.com/ghas-relay/ghas-relay/internal/webhook/webhooktest"
)

// raiseFileLimit raises the process's open-file limit to its hard limit and
// skips the test when that is below need.
func raiseFileLimit(t *testing.T, need uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("cannot read the open-file limit: %v", err)
	}
	if lim.Max < need {
		t.Skipf("needs %d open files, the hard limit is %d (raise it with ulimit -Hn)", need, lim.Max)
	}
	if lim.Cur < need {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Skipf("cannot raise the open-file limit to %d: %v", need, err)
		}
	}
}

// 4,096 connections that sent a request head announcing a body and nothing
// more (twice the default MaxInFlight), and 512 that sent nothing at all,
// do not keep a signed delivery on a new connection from a 202 within 2 s:
// a request waits for its body without a slot of MaxInFlight and without a
// body buffer, and the gauges show what is held.
func TestIdleConnectionsDoNotLockOut(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 4,608 sockets")
	}
	const (
		heads   = 4096
		silent  = 512
		maxBody = 25 << 20
	)
	raiseFileLimit(t, 2*(heads+silent)+512) // both ends of every connection, and the rest
	_, js := streamtest.Run(t).Connect()
	ctx := context.Background()
	if err := stream.Ensure(ctx, js, stream.Layout{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(metrics.NewRegistry())
	h := NewHandler(slog.New(slog.DiscardHandler), js, m, Options{Secrets: ParseSecrets("s"), MaxBodyBytes: maxBody})
	if h.opts.MaxInFlight >= heads {
		t.Fatalf("MaxInFlight %d: the test needs more heads than slots", h.opts.MaxInFlight)
	}
	srv, err := Listen(slog.New(slog.DiscardHandler), "127.0.0.1:0", Routes(h), m)
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx) }()
	addr := srv.Addr().String()

	before := heapInUse()
	conns := make([]net.Conn, 0, heads+silent)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range heads {
		conns = append(conns, slowClient(t, addr, i, 1000, 0))
	}
	for i := range silent {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("silent client %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	// Every head has reached the handler: it waits for its body, is in
	// flight, or was answered 503.
	for deadline := time.Now().Add(30 * time.Second); h.waiting.value()+h.inFlight.value()+int64(m.Deliveries.Value("code_scanning_alert", "unavailable")) < heads; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: %d requests wait for their body, %d are in flight, want %d heads handled", h.waiting.value(), h.inFlight.value(), heads)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); m.Connections.Value() < silent; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("ghas_receiver_connections = %v, want at least %d", m.Connections.Value(), silent)
		}
	}
	growth := int64(heapInUse()) - int64(before)
	t.Logf("%d heads waiting for their body and %d silent connections: heap in use %+.1f MiB (%.1f KiB per connection, both ends in this process)",
		heads, silent, float64(growth)/(1<<20), float64(growth)/(heads+silent)/1024)
	if g := m.Connections.Value(); g != heads+silent {
		t.Errorf("ghas_receiver_connections = %v, want %d", g, heads+silent)
	}
	if g := m.WaitingForBody.Value(); g != heads {
		t.Errorf("ghas_receiver_requests_waiting_for_body = %v, want %d", g, heads)
	}
	if g := m.InFlight.Value(); g != 0 {
		t.Errorf("ghas_receiver_requests_in_flight = %v, want 0", g)
	}
	if held := h.budget.held(); held != 0 {
		t.Errorf("requests waiting for their body hold %d bytes of the body budget", held)
	}

	body := paddedObject(8 << 10)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	resp, err := client.Do(webhooktest.NewRequest("http://"+addr+Path, "code_scanning_alert", "honest-beside-idle", body, "s"))
	if err != nil {
		t.Fatalf("signed delivery: %v", err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("signed delivery beside %d idle connections: %d %s, want 202", heads+silent, resp.StatusCode, answer)
	}
	if took > 2*time.Second {
		t.Errorf("signed delivery beside %d idle connections took %v, want within 2 s", heads+silent, took)
	}
	t.Logf("signed delivery: 202 in %v", took.Round(time.Millisecond))

	stop()
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); m.Connections.Value() != 0 || h.waiting.value() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after every client left: %v connections, %d requests waiting", m.Connections.Value(), h.waiting.value())
		}
	}
}

// A webhook body that does not arrive within BodyTimeout ends its request
// (400, the connection closed), whether nothing of it came or part of it:
// a stalled client holds its connection for BodyTimeout, not for the
// listener's ReadTimeout.
func TestBodyTimeout(t *testing.T) {
	m := NewMetrics(metrics.NewRegistry())
	h := NewHandler(slog.New(slog.DiscardHandler), &countingPublisher{}, m, Options{
		Secrets: ParseSecrets("s"), MaxBodyBytes: 1 << 20, BodyTimeout: 200 * time.Millisecond,
	})
	srv, err := Listen(slog.New(slog.DiscardHandler), "127.0.0.1:0", Routes(h), m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() { _ = srv.Serve(ctx) }()
	for _, sent := range []int{0, 10} {
		c := slowClient(t, srv.Addr().String(), sent, 1000, sent)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || !strings.HasPrefix(line, "HTTP/1.1 400 ") {
			t.Fatalf("sent %d of 1000 bytes and stalled: %q, %v after %v; want a 400 after the body timeout", sent, line, err, time.Since(start))
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("sent %d of 1000 bytes and stalled: answered after %v, want about 200 ms", sent, d)
		}
	}
	if n := m.Deliveries.Value("code_scanning_alert", "bad_request"); n != 2 {
		t.Errorf("stalled bodies counted %d times as bad_request, want 2", n)
	}
	if w, f := h.waiting.value(), h.inFlight.value(); w != 0 || f != 0 {
		t.Errorf("after the timeouts: %d requests waiting, %d in flight", w, f)
	}
}

// No claim sizes a buffer: a Content-Length of 128 TiB is answered 413
// before anything is read, whatever the Content-Encoding (the handler
// never decodes one) and the content type, and the heap stays flat.
func TestAnnouncedLengthSizesNothing(t *testing.T) {
	m := NewMetrics(metrics.NewRegistry())
	h := NewHandler(slog.New(slog.DiscardHandler), &countingPublisher{}, m, Options{Secrets: ParseSecrets("s"), MaxBodyBytes: 25 << 20})
	srv, err := Listen(slog.New(slog.DiscardHandler), "127.0.0.1:0", Routes(h), m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() { _ = srv.Serve(ctx) }()

	before := heapInUse()
	i := 0
	for _, ct := range []string{contentTypeJSON, contentTypeForm} {
		for _, enc := range []string{"", "identity", "gzip", "br, identity", "x-anything"} {
			i++
			c, err := net.Dial("tcp", srv.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			encoding := ""
			if enc != "" {
				encoding = "Content-Encoding: " + enc + "\r\n"
			}
			// The head, then the start of a body: none of it is read.
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: receiver\r\nContent-Type: %s\r\n%s"+
				"X-GitHub-Event: ping\r\nX-GitHub-Delivery: huge-%d\r\nX-Hub-Signature-256: sha256=%s\r\n"+
				"Content-Length: 140737488355328\r\n\r\n{\"zen\":\"%s",
				Path, ct, encoding, i, strings.Repeat("0", 64), strings.Repeat("x", 1000))
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err != nil || !strings.HasPrefix(line, "HTTP/1.1 413 ") {
				t.Errorf("%s, Content-Encoding %q, Content-Length 128 TiB: %q, %v; want 413 at once", ct, enc, line, err)
			}
		}
	}
	if growth := int64(heapInUse()) - int64(before); growth > 1<<20 {
		t.Errorf("heap grew %d bytes over %d requests announcing 128 TiB, want flat (< 1 MiB)", growth, i)
	}
	if n := m.Deliveries.Value("ping", "too_large"); n != uint64(i) {
		t.Errorf("too_large counted %d times, want %d", n, i)
	}
	if held := h.budget.held(); held != 0 {
		t.Errorf("the body budget holds %d bytes", held)
	}
}
