//go:build unix

package fastlane

import (
	"net"
	"syscall"
)

// firstReader waits for a connection's next request. It is made once per
// connection, so waiting for a request allocates nothing.
type firstReader struct {
	s    *Server
	c    net.Conn
	rc   syscall.RawConn // nil when c is not a socket
	buf  *[HeadBuffer]byte
	n    int
	rerr error
	fn   func(fd uintptr) bool // r.readable, bound once
}

func (s *Server) newFirstReader(c net.Conn) *firstReader {
	r := &firstReader{s: s, c: c}
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			r.rc = rc
		}
	}
	r.fn = r.readable
	return r
}

// read waits until the connection has bytes to read and reads them into a
// buffer from s.bufs that it takes only then, so a connection waiting for
// its next request holds no buffer, and a request that came in one piece
// costs one read system call. ok is false when the connection failed or
// closed.
func (r *firstReader) read() (buf *[HeadBuffer]byte, n int, ok bool) {
	if r.rc == nil {
		return r.s.readFirstByte(r.c)
	}
	r.buf, r.n, r.rerr = nil, 0, nil
	err := r.rc.Read(r.fn)
	buf, n = r.buf, r.n
	r.buf = nil
	if err != nil || r.rerr != nil || n <= 0 {
		if buf != nil {
			r.s.bufs.Put(buf)
		}
		return nil, 0, false
	}
	return buf, n, true
}

// readable is called by the runtime's poller: it reads what is there, or
// reports that there is nothing yet (EAGAIN) without holding a buffer.
func (r *firstReader) readable(fd uintptr) bool {
	r.buf = r.s.bufs.Get().(*[HeadBuffer]byte)
	for {
		r.n, r.rerr = syscall.Read(int(fd), r.buf[:])
		if r.rerr != syscall.EINTR {
			break
		}
	}
	if r.rerr == syscall.EAGAIN {
		r.s.bufs.Put(r.buf)
		r.buf = nil
		return false // wait until readable (or the read deadline)
	}
	return true
}
