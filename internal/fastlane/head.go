package fastlane

import (
	"bytes"
	"net/http"
	"net/textproto"
)

// head is a request head the fast lane serves.
type head struct {
	header        http.Header // canonical keys, Host excluded (as net/http does)
	host          string
	contentLength int64
	close         bool // Connection: close
}

// maxContentLength keeps the parsed length well inside int64 (18 digits).
const maxContentLength = 1e18 - 1

// parseHead parses b, a request head that ends with its blank line
// ("\r\n\r\n"), and reports whether it is one the fast lane serves: exactly
// "POST <target> HTTP/1.1", CRLF line ends, header names that are tokens,
// values of visible ASCII, spaces and tabs, exactly one Host and one
// Content-Length of digits, and no Transfer-Encoding, Expect, Upgrade, TE,
// Trailer or Connection other than close or keep-alive. Anything else is
// false: the connection goes to net/http, which answers it as it always
// did. So the lane never decides what a request means where parsers are
// known to disagree (smuggling lives there); the fuzz test holds every head
// it accepts to net/http's reading of the same bytes.
func parseHead(b []byte, target string) (head, bool) {
	var h head
	line, rest, ok := cutLine(b)
	if !ok || !requestLine(line, target) {
		return h, false
	}
	hasLength, hasHost := false, false
	h.header = make(http.Header, 8)
	for {
		line, rest, ok = cutLine(rest)
		if !ok {
			return h, false
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return h, false
		}
		name, value := line[:colon], trimSpace(line[colon+1:])
		if !token(name) || !fieldValue(value) {
			return h, false
		}
		key := textproto.CanonicalMIMEHeaderKey(string(name))
		switch key {
		case "Content-Length":
			n, ok := digits(value)
			if !ok || hasLength {
				return h, false
			}
			h.contentLength, hasLength = n, true
		case "Host":
			if hasHost || !hostValue(value) {
				return h, false
			}
			h.host, hasHost = string(value), true
			continue // net/http moves Host out of the header map
		case "Connection":
			switch {
			case bytes.EqualFold(value, []byte("close")):
				h.close = true
			case bytes.EqualFold(value, []byte("keep-alive")):
			default:
				return h, false
			}
		case "Transfer-Encoding", "Expect", "Upgrade", "Te", "Trailer":
			return h, false
		}
		h.header[key] = append(h.header[key], string(value))
	}
	if len(rest) != 0 || !hasLength || !hasHost {
		return h, false
	}
	return h, true
}

// cutLine splits b at its first CRLF; a lone CR or LF before it is refused.
func cutLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 1 || b[i-1] != '\r' {
		return nil, nil, false
	}
	line = b[:i-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, nil, false
	}
	return line, b[i+1:], true
}

func requestLine(line []byte, target string) bool {
	const method, proto = "POST ", " HTTP/1.1"
	return len(line) == len(method)+len(target)+len(proto) &&
		string(line[:len(method)]) == method &&
		string(line[len(method):len(method)+len(target)]) == target &&
		string(line[len(method)+len(target):]) == proto
}

// token reports whether b is an HTTP token (RFC 9110 §5.6.2).
func token(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tchar(c) {
			return false
		}
	}
	return true
}

func tchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// fieldValue allows visible ASCII, space and tab: no control bytes and,
// to keep the lane narrow, no bytes above 0x7e either.
func fieldValue(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c > '~' {
			return false
		}
	}
	return true
}

// hostValue allows what a host name, an IPv4 or a bracketed IPv6 address
// and a port are made of.
func hostValue(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']', c == '_':
		default:
			return false
		}
	}
	return true
}

// digits parses a Content-Length: ASCII digits only, at most 18.
func digits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, n <= maxContentLength
}

// trimSpace trims the optional white space around a field value (SP, HTAB).
func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
