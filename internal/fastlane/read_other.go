//go:build !unix

package fastlane

import "net"

func (s *Server) readFirst(c net.Conn) (buf *[HeadBuffer]byte, n int, ok bool) {
	return s.readFirstByte(c)
}
