package fastlane

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// served is what the test handler saw of one request.
type served struct {
	lane bool // served by the lane, not net/http
	body string
}

// echo answers 202 with the body's length, and records each request.
type echo struct {
	seen    chan served
	reading chan struct{} // a signal each time the handler starts reading a body
	// reject answers 413 without reading the body when set.
	reject atomic.Bool
	panics atomic.Bool
}

func (e *echo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if e.panics.Load() {
		panic("boom")
	}
	_, lane := w.(*response)
	if e.reject.Load() {
		e.seen <- served{lane: lane}
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		return
	}
	select {
	case e.reading <- struct{}{}:
	default:
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "body", http.StatusBadRequest)
		return
	}
	e.seen <- served{lane: lane, body: string(b)}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, `{"len":%d}`+"\n", len(b))
}

type lane struct {
	srv   *Server
	addr  string
	h     *echo
	serve chan error
}

func startLane(t *testing.T, maxHeads int, timeouts time.Duration) *lane {
	t.Helper()
	h := &echo{seen: make(chan served, 100), reading: make(chan struct{}, 1)}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: timeouts, ReadTimeout: timeouts, WriteTimeout: timeouts, IdleTimeout: timeouts}
	s := New(slog.New(slog.DiscardHandler), hs, "/webhook", maxHeads, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &lane{srv: s, addr: ln.Addr().String(), h: h, serve: make(chan error, 1)}
	go func() { l.serve <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return l
}

func (l *lane) dial(t *testing.T) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", l.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func (l *lane) next(t *testing.T) served {
	t.Helper()
	select {
	case s := <-l.h.seen:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("the handler saw no request")
		return served{}
	}
}

// postLane sends body on a new connection and wants it answered 202 on the
// lane.
func (l *lane) postLane(t *testing.T, body string) {
	t.Helper()
	c, br := l.dial(t)
	if _, err := io.WriteString(c, post(body)); err != nil {
		t.Fatal(err)
	}
	if resp, _ := readResponse(t, br); resp.StatusCode != http.StatusAccepted {
		t.Fatal(resp.Status)
	}
	if s := l.next(t); !s.lane || s.body != body {
		t.Fatalf("lane %v body %q, want %q on the lane", s.lane, s.body, body)
	}
}

func post(body string, extra ...string) string {
	return "POST /webhook HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n" + strings.Join(extra, "") +
		fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
}

func readResponse(t *testing.T, br *bufio.Reader) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestLaneServesKeepAlive(t *testing.T) {
	l := startLane(t, 8, 10*time.Second)
	c, br := l.dial(t)
	for i, body := range []string{`{"a":1}`, strings.Repeat("x", 12000)} {
		if _, err := io.WriteString(c, post(body)); err != nil {
			t.Fatal(err)
		}
		resp, got := readResponse(t, br)
		if s := l.next(t); !s.lane || s.body != body {
			t.Fatalf("request %d: lane %v, body %d bytes", i, s.lane, len(s.body))
		}
		if resp.StatusCode != http.StatusAccepted || got != fmt.Sprintf(`{"len":%d}`+"\n", len(body)) || resp.Close {
			t.Fatalf("request %d: %s %q close %v", i, resp.Status, got, resp.Close)
		}
		if resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Date") == "" {
			t.Fatalf("headers %v", resp.Header)
		}
	}
}

// A body larger than the buffer, sent in pieces, is read from the
// connection after the bytes that came with the head.
func TestLaneBodyInPieces(t *testing.T) {
	l := startLane(t, 8, 10*time.Second)
	c, br := l.dial(t)
	body := strings.Repeat("0123456789", 10000)
	req := post(body)
	for i := 0; i < len(req); i += 7000 {
		if _, err := io.WriteString(c, req[i:min(i+7000, len(req))]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	resp, _ := readResponse(t, br)
	if s := l.next(t); !s.lane || s.body != body || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("lane %v, %d of %d bytes, %s", s.lane, len(s.body), len(body), resp.Status)
	}
}

// Every request outside the lane's grammar reaches net/http with all its
// bytes, and is answered exactly as net/http answers it.
func TestLaneHandsOver(t *testing.T) {
	chunked := "POST /webhook HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
	for name, tc := range map[string]struct {
		req    string
		status int
		body   string // the body the handler sees; "-" when it sees none
	}{
		"chunked":        {chunked, 202, "hello"},
		"other path":     {"POST /other HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi", 202, "hi"},
		"HTTP/1.0":       {"POST /webhook HTTP/1.0\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi", 202, "hi"},
		"head too large": {post("hi", "X-A: "+strings.Repeat("a", HeadBuffer)+"\r\n"), 202, "hi"},
		// net/http reads both as chunked (the empty body): Transfer-Encoding wins.
		"smuggling CL+TE": {"POST /webhook HTTP/1.1\r\nHost: h\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nPOST /webhook HTTP/1.1\r\nHost: h\r\n\r\n",
			202, ""},
		"two lengths": {"POST /webhook HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi!", 400, "-"},
		"no host":     {"POST /webhook HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi", 400, "-"},
	} {
		t.Run(name, func(t *testing.T) {
			l := startLane(t, 8, 10*time.Second)
			c, br := l.dial(t)
			if _, err := io.WriteString(c, tc.req); err != nil {
				t.Fatal(err)
			}
			resp, _ := readResponse(t, br)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %s, want %d", resp.Status, tc.status)
			}
			if tc.body == "-" {
				select {
				case s := <-l.h.seen:
					t.Fatalf("handler saw %+v", s)
				case <-time.After(50 * time.Millisecond):
				}
				return
			}
			if s := l.next(t); s.lane || s.body != tc.body {
				t.Fatalf("lane %v body %q", s.lane, s.body)
			}
		})
	}
}

// Two requests in one write (pipelining): net/http serves both, in order.
func TestLanePipelined(t *testing.T) {
	l := startLane(t, 8, 10*time.Second)
	c, br := l.dial(t)
	if _, err := io.WriteString(c, post("one")+post("two")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"one", "two"} {
		if resp, _ := readResponse(t, br); resp.StatusCode != http.StatusAccepted {
			t.Fatal(resp.Status)
		}
		if s := l.next(t); s.lane || s.body != want {
			t.Fatalf("lane %v body %q, want %q from net/http", s.lane, s.body, want)
		}
	}
}

// With every head buffer in use, the next request goes to net/http.
func TestLaneBuffersBounded(t *testing.T) {
	l := startLane(t, 1, 10*time.Second)
	// Hold the one buffer: a head that never ends.
	stall, _ := l.dial(t)
	if _, err := io.WriteString(stall, "POST /webhook HTTP/1.1\r\nHost: h\r\n"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for l.srv.heads.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	c, br := l.dial(t)
	if _, err := io.WriteString(c, post("x")); err != nil {
		t.Fatal(err)
	}
	if resp, _ := readResponse(t, br); resp.StatusCode != http.StatusAccepted {
		t.Fatal(resp.Status)
	}
	if s := l.next(t); s.lane {
		t.Fatal("served on the lane with no buffer free")
	}
}

// A handler that answers without reading a body of which more than 256 KiB
// is still to come: the client gets the answer, then the connection closes.
func TestLaneUnreadBodyCloses(t *testing.T) {
	l := startLane(t, 8, 10*time.Second)
	l.h.reject.Store(true)
	c, br := l.dial(t)
	body := strings.Repeat("x", 300<<10)
	go func() { _, _ = io.WriteString(c, post(body)) }()
	resp, _ := readResponse(t, br)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close {
		t.Fatalf("%s close %v", resp.Status, resp.Close)
	}
	if s := l.next(t); !s.lane {
		t.Fatal("not on the lane")
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("connection still open")
	}
}

// A handler that answers without reading a body of which at most 256 KiB
// is still to come: the rest is read and thrown away and the connection
// serves the next request, as in net/http.
func TestLaneUnreadBodyDrained(t *testing.T) {
	for _, size := range []int{100, 200000} { // in the first read; still on its way
		l := startLane(t, 8, 10*time.Second)
		l.h.reject.Store(true)
		c, br := l.dial(t)
		go func() { _, _ = io.WriteString(c, post(strings.Repeat("x", size))) }()
		resp, _ := readResponse(t, br)
		if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Close {
			t.Fatalf("size %d: %s close %v", size, resp.Status, resp.Close)
		}
		l.h.reject.Store(false)
		if _, err := io.WriteString(c, post(`{"a":1}`)); err != nil {
			t.Fatal(err)
		}
		if resp, _ := readResponse(t, br); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("size %d: next request on the connection: %s", size, resp.Status)
		}
		for range 2 {
			if s := l.next(t); !s.lane {
				t.Fatalf("size %d: not on the lane", size)
			}
		}
	}
}

// A head that stalls is closed after ReadHeaderTimeout, with its buffer
// back.
func TestLaneSlowHeadTimesOut(t *testing.T) {
	l := startLane(t, 8, 300*time.Millisecond)
	c, br := l.dial(t)
	if _, err := io.WriteString(c, "POST /webhook HTTP/1.1\r\nHo"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("got an answer")
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("closed after %s", el)
	}
	deadline := time.Now().Add(time.Second)
	for l.srv.heads.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := l.srv.heads.Load(); n != 0 {
		t.Fatalf("%d head buffers still held", n)
	}
}

func TestLaneHandlerPanic(t *testing.T) {
	l := startLane(t, 8, 10*time.Second)
	l.h.panics.Store(true)
	c, br := l.dial(t)
	_, _ = io.WriteString(c, post("x"))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("answered after a panic")
	}
	l.h.panics.Store(false)
	l.postLane(t, "y")
}

// Shutdown closes idle connections, lets a request in progress finish, and
// Serve returns http.ErrServerClosed.
func TestLaneShutdown(t *testing.T) {
	l := startLane(t, 8, 10*time.Second)
	idle, idleR := l.dial(t)
	_, _ = io.WriteString(idle, post("a"))
	readResponse(t, idleR)
	l.next(t)

	busy, busyR := l.dial(t)
	req := post("abcdef")
	_, _ = io.WriteString(busy, req[:len(req)-3]) // the body is incomplete
	deadline := time.Now().Add(5 * time.Second)
	for l.srv.heads.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- l.srv.Shutdown(ctx)
	}()
	if _, err := idleR.ReadByte(); err == nil {
		t.Fatal("idle connection not closed")
	}
	time.Sleep(50 * time.Millisecond)
	_, _ = io.WriteString(busy, req[len(req)-3:])
	resp, _ := readResponse(t, busyR)
	if resp.StatusCode != http.StatusAccepted || !resp.Close {
		t.Fatalf("in-flight request: %s close %v", resp.Status, resp.Close)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-l.serve; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	if _, err := net.DialTimeout("tcp", l.addr, time.Second); err == nil {
		t.Fatal("still accepting")
	}
}

// A body still on its way holds only the bytes that came, not a head
// buffer: slow clients cannot take the lane's buffers from honest ones.
func TestLaneStalledBodyHoldsNoBuffer(t *testing.T) {
	l := startLane(t, 1, 10*time.Second)
	c, br := l.dial(t)
	body := strings.Repeat("x", 50000)
	req := post(body)
	if _, err := io.WriteString(c, req[:len(req)-len(body)+100]); err != nil {
		t.Fatal(err)
	}
	// Wait until the handler reads the stalled body, then the lane must hold
	// no buffer for it.
	select {
	case <-l.h.reading:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler never started on the stalled body")
	}
	if n := l.srv.heads.Load(); n != 0 {
		t.Fatalf("%d head buffers held by a stalled body", n)
	}
	// The one buffer is free for another client meanwhile.
	l.postLane(t, "y")
	_, _ = io.WriteString(c, req[len(req)-len(body)+100:])
	if resp, _ := readResponse(t, br); resp.StatusCode != http.StatusAccepted {
		t.Fatal(resp.Status)
	}
	if s := l.next(t); !s.lane || s.body != body {
		t.Fatalf("lane %v, %d bytes", s.lane, len(s.body))
	}
}
