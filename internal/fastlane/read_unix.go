//go:build unix

package fastlane

import (
	"net"
	"syscall"
)

// readFirst waits until c has bytes to read and reads them into a buffer
// from s.bufs that it takes only then, so a connection waiting for its
// next request holds no buffer, and a request that came in one piece costs
// one read system call. ok is false when the connection failed or closed.
func (s *Server) readFirst(c net.Conn) (buf *[HeadBuffer]byte, n int, ok bool) {
	sc, isSys := c.(syscall.Conn)
	if !isSys {
		return s.readFirstByte(c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, 0, false
	}
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		buf = s.bufs.Get().(*[HeadBuffer]byte)
		for {
			n, rerr = syscall.Read(int(fd), buf[:])
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			s.bufs.Put(buf)
			buf = nil
			return false // wait until readable (or the read deadline)
		}
		return true
	})
	if err != nil || rerr != nil || n <= 0 {
		if buf != nil {
			s.bufs.Put(buf)
		}
		return nil, 0, false
	}
	return buf, n, true
}
