package imports

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ghas-relay/ghas-relay/internal/logging/loggingtest"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// rawPost sends a request head by hand (the client would refuse a
// Content-Length it cannot send), then body, then closes its side; it
// returns the status line's code.
func rawPost(t *testing.T, addr, head string, body []byte) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write(body)
	_ = c.(*net.TCPConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer (the receiver is down?): %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func allocated() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

// TestNoClaimSizesABuffer: whatever the Content-Encoding (identity
// included), a Content-Length over MAX_BODY_BYTES is 413 before anything
// is read, and a Content-Length within it sizes nothing: what is
// allocated follows the bytes that arrived. The receiver answers
// afterwards.
func TestNoClaimSizesABuffer(t *testing.T) {
	e := newHandlerEnv(t, Options{MaxBodyBytes: 1 << 30})
	addr := strings.TrimPrefix(e.ts.URL, "http://")
	head := func(encoding string, length int64) string {
		return fmt.Sprintf("POST %s?repository=o/r HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer old-token\r\nContent-Type: application/json\r\n"+
			"Content-Encoding: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", Path, encoding, length)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(`{"version":"2.1.0","runs":[`))
	_ = zw.Flush()
	for _, c := range []struct {
		name     string
		encoding string
		length   int64
		body     []byte
		status   int
	}{
		{"identity claims 128 TiB", "identity", 140737488355328, []byte("{"), http.StatusRequestEntityTooLarge},
		{"gzip claims 128 TiB", "gzip", 140737488355328, gz.Bytes(), http.StatusRequestEntityTooLarge},
		{"gzip claims just over the limit", "gzip", 1<<30 + 1, gz.Bytes(), http.StatusRequestEntityTooLarge},
		// Within the limit, sending a few bytes of what it claims: the
		// upload breaks off, and no buffer of the claimed size (or four
		// times it, for gzip) was made.
		{"identity claims the limit, sends 1 byte", "identity", 1 << 30, []byte("{"), http.StatusBadRequest},
		{"gzip claims a quarter, sends a few", "gzip", 1 << 28, gz.Bytes(), http.StatusBadRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := allocated()
			if status := rawPost(t, addr, head(c.encoding, c.length), c.body); status != c.status {
				t.Fatalf("status %d, want %d", status, c.status)
			}
			if grown := allocated() - before; grown > 64<<20 {
				t.Errorf("%d MiB allocated for a request of %d bytes", grown>>20, len(c.body))
			}
		})
	}
	if status, m := e.post(q("repository", "o/r"), "application/sarif+json", "old-token", readSample(t, "codeql.sarif"), nil); status != http.StatusAccepted {
		t.Fatalf("after the claims: %d %v", status, m)
	}
}

// TestTooLargeStreamed: a chunked body (no Content-Length) is stopped at
// MAX_BODY_BYTES while it streams, identity or gzip.
func TestTooLargeStreamed(t *testing.T) {
	e := newHandlerEnv(t, Options{MaxBodyBytes: 64 << 10})
	big := append([]byte(`{"version":"2.1.0","runs":[]`), bytes.Repeat([]byte(" "), 100<<10)...)
	big = append(big, '}')
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(big)
	_ = zw.Close()
	for _, c := range []struct {
		name string
		body []byte
		hdr  map[string]string
	}{{"identity", big, nil}, {"gzip", gz.Bytes(), map[string]string{"Content-Encoding": "gzip"}}} {
		req, _ := http.NewRequest(http.MethodPost, e.ts.URL+Path+"?repository=o/r", io.MultiReader(bytes.NewReader(c.body))) // no length: chunked
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer old-token")
		for k, v := range c.hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.ContentLength == 0 || resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("%s: %d, want 413", c.name, resp.StatusCode)
		}
	}
	if n := e.stored(); n != 0 {
		t.Errorf("%d stored", n)
	}
}

// TestScopedTokens: a named token acts only on the repositories of its
// globs (403 otherwise, for a POST and for the GET of another
// repository's import); its name, never the token, is the status's "by"
// and is in the log line of the request.
func TestScopedTokens(t *testing.T) {
	logs := &loggingtest.Buffer{}
	e := newLoggedHandlerEnv(t, Options{Tokens: mustTokens(t, "ci-octo tok-octo-0123456789 Octo-Org/*\nadmin tok-admin-0123456789\n", true)},
		slog.New(slog.NewTextHandler(logs, nil)))
	body := readSample(t, "codeql.sarif")
	status, m := e.post(q("repository", "other-org/app"), "application/sarif+json", "tok-octo-0123456789", body, nil)
	if status != http.StatusForbidden || !strings.Contains(fmt.Sprint(m["error"]), "other-org/app") || strings.Contains(fmt.Sprint(m), "admin") {
		t.Errorf("outside the globs: %d %v, want 403 naming the repository only", status, m)
	}
	status, m = e.post(q("repository", "octo-org/hello"), "application/sarif+json", "tok-octo-0123456789", body, nil)
	if status != http.StatusAccepted {
		t.Fatalf("inside the globs: %d %v", status, m)
	}
	mine := m["import"].(string)
	if status, st := e.get(mine, "tok-octo-0123456789"); status != http.StatusOK || st["by"] != "ci-octo" {
		t.Errorf("GET own import: %d %v, want by ci-octo", status, st)
	}
	status, m = e.post(q("repository", "other-org/app"), "application/sarif+json", "tok-admin-0123456789", body, nil)
	if status != http.StatusAccepted {
		t.Fatalf("unscoped token: %d %v", status, m)
	}
	theirs := m["import"].(string)
	if status, st := e.get(theirs, "tok-octo-0123456789"); status != http.StatusForbidden {
		t.Errorf("GET of another repository's import: %d %v, want 403", status, st)
	}
	if status, st := e.get(theirs, "tok-admin-0123456789"); status != http.StatusOK || st["by"] != "admin" {
		t.Errorf("GET by the unscoped token: %d %v", status, st)
	}
	// The processor keeps "by": it comes with the message.
	raw, err := e.lastImport(t)
	if err != nil || raw.Header.Get(HeaderBy) != "admin" {
		t.Errorf("stored message by %q (%v), want admin", raw.Header.Get(HeaderBy), err)
	}
	out := logs.String()
	if !strings.Contains(out, "by=ci-octo") || !strings.Contains(out, "by=admin") || strings.Contains(out, "tok-") {
		t.Errorf("logs must name the tokens, never hold one:\n%s", out)
	}
}

// TestNoScanFromTheFuture: a scanned_at, or a SARIF endTimeUtc used as the
// scan time, more than 5 minutes after the receive time is 400 naming the
// field; up to 5 minutes is clock skew and accepted. Without either the
// scan time is the receive time to the millisecond.
func TestNoScanFromTheFuture(t *testing.T) {
	// The samples' endTimeUtc is 2026-11-21T08:30:00Z.
	now := time.Date(2026, 11, 21, 8, 20, 0, 123456789, time.UTC)
	e := newHandlerEnv(t, Options{Now: func() time.Time { return now }})
	sarif := readSample(t, "claude-security.sarif")
	status, m := e.post(q("repository", "o/r"), "application/sarif+json", "old-token", sarif, nil)
	if status != http.StatusBadRequest || !strings.Contains(fmt.Sprint(m["error"]), "endTimeUtc") {
		t.Errorf("endTimeUtc 10 min ahead: %d %v, want 400 naming endTimeUtc", status, m)
	}
	status, m = e.post(q("repository", "o/r", "scanned_at", "2026-11-21T08:25:00.5Z"), "application/sarif+json", "old-token", sarif, nil)
	if status != http.StatusBadRequest || !strings.Contains(fmt.Sprint(m["error"]), "scanned_at") {
		t.Errorf("scanned_at 5 min 0.4 s ahead: %d %v, want 400 naming scanned_at", status, m)
	}
	status, m = e.post(q("repository", "o/r", "scanned_at", "2026-11-21T10:24:59.250+02:00"), "application/sarif+json", "old-token", sarif, nil)
	if status != http.StatusAccepted {
		t.Fatalf("scanned_at 4 min 59 s ahead: %d %v", status, m)
	}
	if raw, _ := e.lastImport(t); raw.Header.Get(HeaderScannedAt) != "2026-11-21T08:24:59.25Z" {
		t.Errorf("scan time %q, want the parameter in UTC with its fraction", raw.Header.Get(HeaderScannedAt))
	}
	csv := []byte("title,path\nx,a.go\n")
	if status, m := e.post(q("repository", "o/r", "tool", "T"), "text/csv", "old-token", csv, nil); status != http.StatusAccepted {
		t.Fatalf("csv: %d %v", status, m)
	}
	if raw, _ := e.lastImport(t); raw.Header.Get(HeaderScannedAt) != "2026-11-21T08:20:00.123Z" {
		t.Errorf("scan time %q, want the receive time to the millisecond", raw.Header.Get(HeaderScannedAt))
	}
}

// TestReimportIsAScan: only a post identical to the latest import of its
// scope is a duplicate (same id, nothing stored); after another import
// of the scope the same file is a new scan with an id of its own, which
// JetStream stores (its Nats-Msg-Id is new too).
func TestReimportIsAScan(t *testing.T) {
	e := newHandlerEnv(t, Options{})
	x := []byte("id,title,path\n1,a,a.go\n2,b,b.go\n")
	y := []byte("id,title,path\n2,b,b.go\n3,c,c.go\n")
	scope := q("repository", "o/r", "tool", "T")
	post := func(body []byte, want string) string {
		t.Helper()
		status, m := e.post(scope, "text/csv", "old-token", body, nil)
		if status != http.StatusAccepted || m["status"] != want {
			t.Fatalf("%d %v, want %s", status, m, want)
		}
		return m["import"].(string)
	}
	x1 := post(x, StatusAccepted)
	if again := post(x, StatusDuplicate); again != x1 {
		t.Errorf("retry answered %s, want %s", again, x1)
	}
	// Another scope in between does not make the retry a scan.
	if status, _ := e.post(q("repository", "o/r", "tool", "Other"), "text/csv", "old-token", y, nil); status != http.StatusAccepted {
		t.Fatal(status)
	}
	if again := post(x, StatusDuplicate); again != x1 {
		t.Errorf("retry after another scope answered %s, want %s", again, x1)
	}
	y1 := post(y, StatusAccepted)
	x2 := post(x, StatusAccepted)
	if x2 == x1 || x2 == y1 {
		t.Errorf("X again after Y has id %s: want a new one (X %s, Y %s)", x2, x1, y1)
	}
	if again := post(x, StatusDuplicate); again != x2 {
		t.Errorf("retry of the second X answered %s, want %s", again, x2)
	}
	if n := e.stored(); n != 4 {
		t.Errorf("%d stored, want 4 (X, the other scope, Y, X)", n)
	}
}

// lastImport is the last import message stored.
func (e *handlerEnv) lastImport(t *testing.T) (*jetstreamRaw, error) {
	t.Helper()
	st, err := e.js.Stream(context.Background(), stream.EventsStream)
	if err != nil {
		return &jetstreamRaw{}, err
	}
	var last *jetstreamRaw
	for _, f := range Formats() {
		m, err := st.GetLastMsgForSubject(context.Background(), stream.ImportSubject(f))
		if err == nil && (last == nil || m.Sequence > last.Sequence) {
			last = &jetstreamRaw{Header: m.Header, Sequence: m.Sequence}
		}
	}
	if last == nil {
		return &jetstreamRaw{}, fmt.Errorf("no import stored")
	}
	return last, nil
}

type jetstreamRaw struct {
	Header   nats.Header
	Sequence uint64
}

// TestValidationMemoryBounded: a 36 MiB SARIF upload of 100,000 results
// is validated as it streams: the receiver's live heap stays far below
// the file's size (it holds the compressed copy and one result at a
// time, never the file).
func TestValidationMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("a 36 MiB upload")
	}
	e := newHandlerEnv(t, Options{MaxBodyBytes: 64 << 20})
	size, _ := io.Copy(io.Discard, sarifStream(100))
	runtime.GC()
	stop := make(chan struct{})
	peak := heapPeak(stop)
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+Path+"?repository=o/r", sarifStream(100))
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/sarif+json")
	req.Header.Set("Authorization", "Bearer old-token")
	resp, err := http.DefaultClient.Do(req)
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	p := <-peak
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d", resp.StatusCode)
	}
	t.Logf("%d MiB uploaded; peak heap %d MiB, peak live heap %d MiB", size>>20, p[0]>>20, p[1]>>20)
	if p[1] > 24<<20 {
		t.Errorf("peak live heap %d MiB for a %d MiB upload: the file is held", p[1]>>20, size>>20)
	}
}
