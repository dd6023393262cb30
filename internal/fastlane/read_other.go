//go:build !unix

package fastlane

import "net"

// firstReader waits for a connection's next request: without sockets'
// readiness, by reading one byte.
type firstReader struct {
	s *Server
	c net.Conn
}

func (s *Server) newFirstReader(c net.Conn) *firstReader { return &firstReader{s: s, c: c} }

func (r *firstReader) read() (buf *[HeadBuffer]byte, n int, ok bool) {
	return r.s.readFirstByte(r.c)
}
