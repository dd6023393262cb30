// Package fastlane owns the receiver's public listener: it serves the
// requests GitHub sends (POST with a Content-Length to one path, CRLF
// heads, no transfer coding, nothing ambiguous) itself, in front of an
// http.Server that serves every other connection.
//
// Why: net/http's own per-request work (a background read goroutine per
// request, 4 KiB reads, its buffered writer) costs more CPU than the
// JetStream publish it wraps. The lane reads a whole delivery with one
// system call into a pooled buffer, calls the same http.Handler, and writes
// the answer with one more. What it does not serve it never interprets: the
// first byte that leaves its narrow grammar hands the connection, with
// every byte read so far, to net/http, which answers it as if the lane did
// not exist. Memory follows bytes that arrived: no buffer is taken before a
// request's first byte, and at most a configured number of head buffers
// are in use at once (net/http takes the connections beyond).
package fastlane

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/logging"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
)

// HeadBuffer is the size of the pooled buffer a request is read into: its
// head and, for most deliveries, its whole body.
const HeadBuffer = 16 << 10

// Connection states.
const (
	idle int32 = iota // waiting for a request's first byte
	active
	closed
)

// conn is a connection the lane serves.
type conn struct {
	c      net.Conn
	state  atomic.Int32
	remote string // c.RemoteAddr().String(), once
	out    []byte // the answer's bytes, reused from request to request
}

// Server serves the lane and hands every other connection to its
// http.Server. Serve and Shutdown have http.Server's meaning.
type Server struct {
	logger   *slog.Logger
	srv      *http.Server
	handler  http.Handler // srv's handler as given, which the lane calls
	target   string
	reqLine  string // requestLine(target)
	maxHeads int64
	outcomes *metrics.CounterVec // by outcome; nil counts nothing
	// Deadlines, from srv's timeouts as net/http reads them.
	headerTimeout, readTimeout, writeTimeout, idleTimeout time.Duration

	heads   atomic.Int64 // head buffers in use
	bufs    sync.Pool    // of *[HeadBuffer]byte
	closing atomic.Bool
	wg      sync.WaitGroup

	mu      sync.Mutex
	ln      net.Listener
	handoff *handoff
	conns   map[*conn]struct{}
}

// Outcomes of the lane, the values of the outcome label: a request served
// on the lane, or a connection handed to net/http and why.
const (
	OutcomeServed    = "served"    // a request answered on the lane
	OutcomeNetHTTP   = "net_http"  // a request answered by net/http
	OutcomeGrammar   = "grammar"   // outside the lane's grammar (chunked, Expect, another path or method, …)
	OutcomeHeadSize  = "head_size" // a head longer than HeadBuffer
	OutcomePipelined = "pipelined" // bytes after the body: a pipelined request
	OutcomeBuffers   = "buffers"   // every head buffer in use
)

// New returns a server that serves POST target on the lane with srv's
// Handler and timeouts, and every other connection with srv. maxHeads
// bounds the head buffers in use at once (HeadBuffer bytes each).
// outcomes, when not nil, counts each outcome (its one label): requests
// answered on the lane and by net/http, and connections handed over, by
// why; to count net/http's requests, New wraps srv.Handler.
func New(logger *slog.Logger, srv *http.Server, target string, maxHeads int, outcomes *metrics.CounterVec) *Server {
	s := &Server{
		logger: logger, srv: srv, target: target, reqLine: requestLine(target), maxHeads: int64(maxHeads), outcomes: outcomes,
		headerTimeout: srv.ReadHeaderTimeout, readTimeout: srv.ReadTimeout,
		writeTimeout: srv.WriteTimeout, idleTimeout: srv.IdleTimeout,
		conns: make(map[*conn]struct{}),
	}
	if s.headerTimeout <= 0 {
		s.headerTimeout = s.readTimeout
	}
	if s.idleTimeout <= 0 {
		s.idleTimeout = s.readTimeout
	}
	s.bufs.New = func() any { return new([HeadBuffer]byte) }
	s.handler = srv.Handler
	if outcomes != nil {
		h := srv.Handler
		srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			outcomes.Inc(OutcomeNetHTTP)
			h.ServeHTTP(w, r)
		})
	}
	return s
}

func (s *Server) count(outcome string) {
	if s.outcomes != nil {
		s.outcomes.Inc(outcome)
	}
}

// HTTP is the http.Server behind the lane.
func (s *Server) HTTP() *http.Server { return s.srv }

// Serve accepts connections on ln until Shutdown; it returns
// http.ErrServerClosed after Shutdown, else the listener's error.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.ln, s.handoff = ln, newHandoff(ln.Addr())
	s.mu.Unlock()
	go func() { _ = s.srv.Serve(s.handoff) }() // returns at Shutdown
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			// Out of file descriptors and the like: wait, as net/http does.
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			_ = s.handoff.Close()
			return err
		}
		delay = 0
		fc := &conn{c: c}
		if !s.track(fc) {
			_ = c.Close()
			continue
		}
		go s.serveConn(fc)
	}
}

func (s *Server) track(fc *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return false
	}
	s.conns[fc] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(fc *conn) {
	s.mu.Lock()
	delete(s.conns, fc)
	s.mu.Unlock()
	s.wg.Done()
}

// Shutdown stops accepting, closes idle connections, and waits for the
// requests being served, on the lane and in net/http, until ctx ends;
// then it closes what is left and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	if s.ln != nil {
		_ = s.ln.Close()
	}
	s.mu.Unlock()
	s.closeIdle()
	herr := s.srv.Shutdown(ctx)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return herr
		case <-tick.C:
			s.closeIdle()
		case <-ctx.Done():
			s.mu.Lock()
			for fc := range s.conns {
				fc.state.Store(closed)
				_ = fc.c.Close()
			}
			s.mu.Unlock()
			<-done
			return ctx.Err()
		}
	}
}

// closeIdle closes the lane's connections that wait for a request.
func (s *Server) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for fc := range s.conns {
		if fc.state.CompareAndSwap(idle, closed) {
			_ = fc.c.Close()
		}
	}
}

// serveConn serves fc's requests until it closes or leaves the lane.
func (s *Server) serveConn(fc *conn) {
	c := fc.c
	defer s.untrack(fc)
	defer func() {
		if p := recover(); p != nil {
			s.logger.Error("webhook handler panic", slog.Any(logging.KeyPanic, p), slog.String(logging.KeyStack, string(debug.Stack())))
			_ = c.Close()
		}
	}()
	first := s.newFirstReader(c)
	fc.remote = c.RemoteAddr().String()
	deadline := after(s.headerTimeout) // a new connection's first head
	for {
		// Wait for the request's first bytes with no buffer taken.
		_ = c.SetReadDeadline(deadline)
		buf, n, ok := first.read()
		if !ok || !fc.state.CompareAndSwap(idle, active) {
			if buf != nil {
				s.bufs.Put(buf)
			}
			_ = c.Close()
			return
		}
		keep, handed := s.serveRequest(fc, buf, n)
		if handed {
			return
		}
		if !keep || !fc.state.CompareAndSwap(active, idle) || s.closing.Load() {
			_ = c.Close()
			return
		}
		deadline = after(s.idleTimeout)
	}
}

// after is the deadline d from now; none when d is not positive.
func after(d time.Duration) time.Time {
	if d <= 0 {
		return time.Time{}
	}
	return time.Now().Add(d)
}

// readFirstByte is firstReader.read for a connection that is not a socket: it
// waits for one byte with no buffer, then takes one.
func (s *Server) readFirstByte(c net.Conn) (buf *[HeadBuffer]byte, n int, ok bool) {
	var first [1]byte
	if n, _ := c.Read(first[:]); n == 0 {
		return nil, 0, false
	}
	buf = s.bufs.Get().(*[HeadBuffer]byte)
	buf[0] = first[0]
	return buf, 1, true
}

var headEnd = []byte("\r\n\r\n")

// serveRequest serves one request on fc whose first byte was read. keep
// reports whether the connection stays open for another; handed, that it
// now belongs to net/http.
func (s *Server) serveRequest(fc *conn, buf *[HeadBuffer]byte, n int) (keep, handed bool) {
	c := fc.c
	start := time.Now()
	if s.heads.Add(1) > s.maxHeads {
		s.heads.Add(-1)
		s.count(OutcomeBuffers)
		handOver(s.handoff, c, buf[:n])
		s.bufs.Put(buf)
		return false, true
	}
	held := true
	release := func() {
		if held {
			s.bufs.Put(buf)
			s.heads.Add(-1)
			held = false
		}
	}
	defer release()
	end := bytes.Index(buf[:n], headEnd)
	if end >= 0 {
		end += len(headEnd)
	}
	for end < 0 {
		if n == len(buf) {
			s.count(OutcomeHeadSize)
			handOver(s.handoff, c, buf[:n])
			return false, true
		}
		if s.headerTimeout > 0 {
			// The head did not come in one piece: it gets ReadHeaderTimeout
			// from its first byte, as in net/http.
			_ = c.SetReadDeadline(start.Add(s.headerTimeout))
		}
		m, err := c.Read(buf[n:])
		from := max(0, n-3)
		n += m
		if i := bytes.Index(buf[from:n], headEnd); i >= 0 {
			end = from + i + len(headEnd)
		} else if err != nil {
			return false, false
		}
	}
	h, ok := parseHead(buf[:end], s.reqLine)
	if !ok || int64(n-end) > h.contentLength {
		// Not the lane's grammar, or bytes after the body (a pipelined
		// request): net/http reads it all from the first byte.
		if ok {
			s.count(OutcomePipelined)
		} else {
			s.count(OutcomeGrammar)
		}
		handOver(s.handoff, c, buf[:n])
		return false, true
	}
	b := &body{pre: buf[end:n], conn: c, remain: h.contentLength - int64(n-end)}
	if b.remain > 0 {
		// The rest of the body is still on its way, maybe slowly: keep the
		// bytes that came, not the buffer.
		b.pre = append([]byte(nil), b.pre...)
		release()
		if s.readTimeout > 0 {
			_ = c.SetReadDeadline(start.Add(s.readTimeout))
		}
	}
	if s.writeTimeout > 0 {
		_ = c.SetWriteDeadline(start.Add(s.writeTimeout))
	}
	r := &http.Request{
		Method: http.MethodPost, URL: &url.URL{Path: s.target}, RequestURI: s.target,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h.header, Body: b, ContentLength: h.contentLength, Host: h.host,
		RemoteAddr: fc.remote, Close: h.close,
	}
	w := &response{header: make(http.Header, 4)}
	s.handler.ServeHTTP(w, r)
	s.count(OutcomeServed)
	unread := !b.done()
	if unread && !h.close && !w.closes() && b.discard(maxDiscard) {
		unread = false // drained: the connection can serve another request
	}
	closing := h.close || w.closes() || unread || s.closing.Load()
	fc.out = w.appendTo(fc.out[:0], time.Now(), closing)
	_, err := c.Write(fc.out)
	if cap(fc.out) > 4<<10 {
		fc.out = nil // keep no large answer between requests
	}
	if err != nil {
		return false, false
	}
	if unread {
		closeWriteAndWait(c)
	}
	return !closing, false
}

// maxDiscard is how much of a body its handler did not read is read and
// thrown away so that the connection can serve the next request, as
// net/http does; a longer rest closes the connection.
const maxDiscard = 256 << 10

// rstAvoidanceDelay is how long a connection whose request body was not
// read stays half-open after the answer, so that the client reads the
// answer before the unread bytes make the kernel reset the connection
// (net/http waits the same).
const rstAvoidanceDelay = 500 * time.Millisecond

func closeWriteAndWait(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		time.Sleep(rstAvoidanceDelay)
	}
}
