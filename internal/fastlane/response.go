package fastlane

import (
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// response is the http.ResponseWriter of a fast-lane request. The handler's
// answer is small (a status and a line of JSON or text), so it is buffered
// whole and written with one system call, with a Content-Length.
type response struct {
	header      http.Header
	status      int
	body        []byte
	wroteHeader bool
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if w.wroteHeader || code < 200 || code > 999 {
		return // 1xx interim answers are not sent; net/http's own lane does that
	}
	w.status, w.wroteHeader = code, true
}

func (w *response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	w.body = append(w.body, p...)
	return len(p), nil
}

// closes reports whether the handler asked to close the connection.
func (w *response) closes() bool {
	return strings.EqualFold(w.header.Get("Connection"), "close")
}

// appendTo appends the whole HTTP/1.1 response to b, as net/http would
// write it: status line, the handler's headers (CR and LF in values turned
// into spaces), Date, Content-Length, and Connection: close when the
// connection closes after it.
func (w *response) appendTo(b []byte, now time.Time, closing bool) []byte {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(w.status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(w.status)...)
	b = append(b, "\r\n"...)
	var keys [8]string
	ks := keys[:0]
	for k := range w.header {
		switch k {
		case "Content-Length", "Date", "Connection", "Transfer-Encoding":
			continue // set below
		}
		ks = append(ks, k)
	}
	slices.Sort(ks)
	for _, k := range ks {
		for _, v := range w.header[k] {
			b = appendField(b, k, v)
		}
	}
	b = append(b, "Date: "...)
	b = now.UTC().AppendFormat(b, http.TimeFormat)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(w.body)), 10)
	b = append(b, "\r\n"...)
	if closing {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, "\r\n"...)
	return append(b, w.body...)
}

func appendField(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, ": "...)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		b = append(b, c)
	}
	return append(b, "\r\n"...)
}

// body is a fast-lane request's body: the bytes that arrived with the head,
// then the rest read from the connection, Content-Length bytes in all.
type body struct {
	pre    []byte
	conn   io.Reader
	remain int64 // bytes still to read from conn
	err    error
}

func (b *body) Read(p []byte) (int, error) {
	if len(b.pre) > 0 {
		n := copy(p, b.pre)
		b.pre = b.pre[n:]
		return n, nil
	}
	if b.err != nil {
		return 0, b.err
	}
	if b.remain == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	n, err := b.conn.Read(p)
	b.remain -= int64(n)
	if err == io.EOF && b.remain > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

func (b *body) Close() error { return nil }

// done reports whether the whole body was read.
func (b *body) done() bool { return len(b.pre) == 0 && b.remain == 0 }

// discard reads and throws away the rest of the body when at most max
// bytes of it are still on the connection (the bytes already read cost
// nothing to drop), within the connection's read deadline. It reports
// whether the whole body is now read.
func (b *body) discard(max int64) bool {
	b.pre = nil
	if b.err != nil || b.remain > max {
		return false
	}
	_, err := io.Copy(io.Discard, b)
	return err == nil && b.done()
}
