package fastlane

import (
	"net"
	"sync"
	"time"
)

// handoff is the net.Listener net/http serves: it yields the connections
// the fast lane handed over.
type handoff struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newHandoff(addr net.Addr) *handoff {
	return &handoff{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *handoff) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *handoff) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *handoff) Addr() net.Addr { return l.addr }

// give hands c to net/http, or closes it once net/http stopped accepting.
func (l *handoff) give(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.closed:
		_ = c.Close()
	}
}

// replayConn is a connection whose first bytes were already read by the
// fast lane: net/http reads them again first, so it sees the connection
// exactly as the client sent it.
type replayConn struct {
	net.Conn
	prefix []byte
}

// handOver clears the lane's deadlines (net/http sets its own) and gives c,
// with the bytes already read from it, to net/http.
func handOver(l *handoff, c net.Conn, read []byte) {
	_ = c.SetDeadline(time.Time{})
	if len(read) > 0 {
		c = &replayConn{Conn: c, prefix: append([]byte(nil), read...)}
	}
	l.give(c)
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.prefix) == 0 {
		return c.Conn.Read(p)
	}
	n := copy(p, c.prefix)
	c.prefix = c.prefix[n:]
	if len(c.prefix) == 0 {
		c.prefix = nil
	}
	return n, nil
}
