package fastlane

import (
	"net/http"
	"net/textproto"
	"strings"
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
// the request line reqLine (requestLine: "POST <target> HTTP/1.1"), CRLF line ends, header names that are tokens,
// values of visible ASCII, spaces and tabs, exactly one Host and one
// Content-Length of digits, and no Transfer-Encoding, Expect, Upgrade, TE,
// Trailer or Connection other than close or keep-alive. Anything else is
// false: the connection goes to net/http, which answers it as it always
// did. So the lane never decides what a request means where parsers are
// known to disagree (smuggling lives there); the fuzz test holds every head
// it accepts to net/http's reading of the same bytes.
//
// The head is turned into one string, and every header name and value is a
// piece of it: a delivery's dozen headers cost a few allocations, not three
// each.
func parseHead(b []byte, reqLine string) (head, bool) {
	var h head
	hs := string(b)
	line, rest, ok := cutLine(hs)
	if !ok || line != reqLine {
		return h, false
	}
	hasLength, hasHost := false, false
	h.header = make(http.Header, 16)
	vals := make([]string, 0, 16) // backing array of the one-value slices
	for {
		line, rest, ok = cutLine(rest)
		if !ok {
			return h, false
		}
		if len(line) == 0 {
			break
		}
		colon := strings.IndexByte(line, ':')
		if colon <= 0 {
			return h, false
		}
		name, value := line[:colon], trimSpace(line[colon+1:])
		if !token(name) || !fieldValue(value) {
			return h, false
		}
		key := canonicalKey(name)
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
			h.host, hasHost = value, true
			continue // net/http moves Host out of the header map
		case "Connection":
			switch {
			case strings.EqualFold(value, "close"):
				h.close = true
			case strings.EqualFold(value, "keep-alive"):
			default:
				return h, false
			}
		case "Transfer-Encoding", "Expect", "Upgrade", "Te", "Trailer":
			return h, false
		}
		if prev, dup := h.header[key]; dup {
			h.header[key] = append(prev, value)
			continue
		}
		vals = append(vals, value)
		n := len(vals)
		h.header[key] = vals[n-1 : n : n]
	}
	if len(rest) != 0 || !hasLength || !hasHost {
		return h, false
	}
	return h, true
}

// canonicalKey is textproto.CanonicalMIMEHeaderKey of a token: a name
// already in canonical form is returned as it is, and GitHub's own headers
// (X-GitHub-…, X-Hub-…) are returned as constants, so neither allocates.
func canonicalKey(name string) string {
	var buf [64]byte
	if len(name) > len(buf) {
		return textproto.CanonicalMIMEHeaderKey(name)
	}
	b := buf[:len(name)]
	upper, same := true, true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		same = same && c == name[i]
		b[i] = c
		upper = c == '-'
	}
	if same {
		return name
	}
	switch string(b) {
	case "X-Github-Event":
		return "X-Github-Event"
	case "X-Github-Delivery":
		return "X-Github-Delivery"
	case "X-Github-Hook-Id":
		return "X-Github-Hook-Id"
	case "X-Github-Hook-Installation-Target-Id":
		return "X-Github-Hook-Installation-Target-Id"
	case "X-Github-Hook-Installation-Target-Type":
		return "X-Github-Hook-Installation-Target-Type"
	case "X-Hub-Signature-256":
		return "X-Hub-Signature-256"
	case "X-Hub-Signature":
		return "X-Hub-Signature"
	}
	return string(b)
}

// cutLine splits s at its first CRLF; a lone CR or LF before it is refused.
func cutLine(s string) (line, rest string, ok bool) {
	i := strings.IndexByte(s, '\n')
	if i < 1 || s[i-1] != '\r' {
		return "", "", false
	}
	line = s[:i-1]
	if strings.IndexByte(line, '\r') >= 0 {
		return "", "", false
	}
	return line, s[i+1:], true
}

// requestLine is the one request line the lane serves for target.
func requestLine(target string) string { return "POST " + target + " HTTP/1.1" }

// token reports whether s is an HTTP token: letters, digits and !#$%&'*+-.^_`|~.
func token(s string) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !tchar(s[i]) {
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
func fieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c > '~' {
			return false
		}
	}
	return true
}

// hostValue allows what a host name, an IPv4 or a bracketed IPv6 address
// and a port are made of.
func hostValue(s string) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']', c == '_':
		default:
			return false
		}
	}
	return true
}

// digits parses a Content-Length: ASCII digits only, at most 18.
func digits(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, n <= maxContentLength
}

// trimSpace trims the optional white space around a field value (SP, HTAB).
func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
