package imports

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
	"github.com/ghas-relay/ghas-relay/internal/tokens"
)

type handlerEnv struct {
	t   *testing.T
	srv *streamtest.Server
	js  jetstream.JetStream
	ts  *httptest.Server
}

func newHandlerEnv(t *testing.T, opts Options) *handlerEnv {
	t.Helper()
	return newLoggedHandlerEnv(t, opts, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func newLoggedHandlerEnv(t *testing.T, opts Options, logger *slog.Logger) *handlerEnv {
	t.Helper()
	srv := streamtest.Run(t)
	_, js := srv.Connect()
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.Tokens.Len() == 0 {
		opts.Tokens = mustTokens(t, "old-token, new-token", false)
	}
	opts.PublishTimeout = 2 * time.Second
	h := NewHandler(logger, js, opts)
	notFound := http.NotFoundHandler()
	ts := httptest.NewServer(Routes(notFound, h))
	t.Cleanup(ts.Close)
	return &handlerEnv{t: t, srv: srv, js: js, ts: ts}
}

func (e *handlerEnv) post(query url.Values, contentType, token string, body []byte, header map[string]string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+Path+"?"+query.Encode(), bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func (e *handlerEnv) get(id, token string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.ts.URL+Path+"/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// stored is the number of import messages in GHAS_EVENTS.
func (e *handlerEnv) stored() uint64 {
	e.t.Helper()
	st, err := e.js.Stream(context.Background(), stream.EventsStream)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(stream.ImportPrefix+">"))
	if err != nil {
		e.t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

func q(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

// TestPostStoresAndAnswers: a valid file is stored with its parameters in
// headers, answered 202 with its id; the same again is a duplicate with
// the same id; GET gives the status.
func TestPostStoresAndAnswers(t *testing.T) {
	e := newHandlerEnv(t, Options{})
	body := readSample(t, "claude-security.sarif")
	status, m := e.post(q("repository", "https://github.com/octocat/Hello-World.git"), "application/sarif+json", "old-token", body, nil)
	if status != http.StatusAccepted || m["status"] != "accepted" || m["results"] != 3.0 {
		t.Fatalf("first post: %d %v", status, m)
	}
	id := m["import"].(string)
	msg, err := e.js.Stream(context.Background(), stream.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := msg.GetLastMsgForSubject(context.Background(), stream.ImportSubject(FormatSARIF))
	if err != nil {
		t.Fatal(err)
	}
	gotID, p := FromHeaders(raw.Header)
	stored, err := BodyOf(raw.Header, raw.Data)
	if err != nil || len(raw.Data) >= len(body) {
		t.Errorf("stored body: %v, %d bytes for a %d-byte file: want it compressed", err, len(raw.Data), len(body))
	}
	if gotID != id || p.Repository != "octocat/Hello-World" || p.Tool != "Claude Security" || p.Organization != "Anthropic" ||
		p.Category != "claude-security/full-scan/" || p.ScannedAt != "2026-11-21T08:30:00Z" || !p.Complete || !bytes.Equal(stored, body) {
		t.Errorf("stored message: id %q params %+v", gotID, p)
	}
	status, m = e.post(q("repository", "octocat/Hello-World"), "application/json", "new-token", body, nil)
	if status != http.StatusAccepted || m["status"] != "duplicate" || m["import"] != id {
		t.Errorf("same body and parameters again: %d %v, want duplicate of %s", status, m, id)
	}
	if n := e.stored(); n != 1 {
		t.Errorf("%d import messages stored, want 1", n)
	}
	status, m = e.post(q("repository", "octocat/Hello-World", "complete", "false"), "application/json", "new-token", body, nil)
	if status != http.StatusAccepted || m["status"] != "accepted" || m["import"] == id {
		t.Errorf("other parameters: %d %v, want a new import", status, m)
	}
	status, m = e.get(id, "new-token")
	if status != http.StatusOK || m["status"] != "accepted" || m["repository"] != "octocat/Hello-World" || m["tool"] != "Claude Security" {
		t.Errorf("GET: %d %v", status, m)
	}
	if status, _ := e.get(strings.Repeat("0", 32), "new-token"); status != http.StatusNotFound {
		t.Errorf("GET unknown: %d", status)
	}
	if status, _ := e.get(id, "wrong"); status != http.StatusUnauthorized {
		t.Errorf("GET with a wrong token: %d", status)
	}
}

// TestPostRefusals: every refusal has its status and stores nothing.
func TestPostRefusals(t *testing.T) {
	e := newHandlerEnv(t, Options{MaxBodyBytes: 64 << 10})
	sarif := readSample(t, "codeql.sarif")
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	_, _ = zw.Write(bytes.Repeat([]byte(" "), 8<<20)) // 8 MiB of spaces: ~8 KiB compressed
	_ = zw.Close()
	repo := q("repository", "octocat/Hello-World")
	for _, c := range []struct {
		name        string
		query       url.Values
		contentType string
		token       string
		body        []byte
		header      map[string]string
		status      int
		line        float64
	}{
		{"no token", repo, "application/json", "", sarif, nil, 401, 0},
		{"wrong token", repo, "application/json", "nope", sarif, nil, 401, 0},
		{"bad JSON", repo, "application/json", "old-token", []byte("{\"version\":\"2.1.0\",\n\"runs\": [}"), nil, 400, 2},
		{"SARIF 2.0", repo, "application/json", "old-token", []byte(`{"version":"2.0.0","runs":[]}`), nil, 400, 1},
		{"missing column", q("repository", "o/r", "format", "codex-csv"), "text/csv", "old-token", []byte("occurrence_id,title\n1,x\n"), nil, 400, 1},
		{"csv row", q("repository", "o/r", "tool", "X"), "text/csv", "old-token", []byte("title,path\nx,a.go\ny,\n"), nil, 400, 3},
		{"csv without tool", repo, "text/csv", "old-token", []byte("title,path\nx,a.go\n"), nil, 400, 0},
		{"no repository", q("tool", "x"), "application/json", "old-token", sarif, nil, 400, 0},
		{"bad repository", q("repository", "just-a-name"), "application/json", "old-token", sarif, nil, 400, 0},
		{"unknown format", q("repository", "o/r", "format", "xml"), "application/json", "old-token", sarif, nil, 400, 0},
		{"bad scanned_at", q("repository", "o/r", "scanned_at", "yesterday"), "application/json", "old-token", sarif, nil, 400, 0},
		{"content type", repo, "application/xml", "old-token", sarif, nil, 415, 0},
		{"too large", repo, "application/json", "old-token", append(bytes.Repeat([]byte(" "), 70<<10), sarif...), nil, 413, 0},
		{"gzip bomb", repo, "application/json", "old-token", bomb.Bytes(), map[string]string{"Content-Encoding": "gzip"}, 413, 0},
		{"bad gzip", repo, "application/json", "old-token", []byte("not gzip"), map[string]string{"Content-Encoding": "gzip"}, 400, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, m := e.post(c.query, c.contentType, c.token, c.body, c.header)
			if status != c.status {
				t.Fatalf("status %d %v, want %d", status, m, c.status)
			}
			if m["error"] == nil || m["error"] == "" {
				t.Errorf("no error message: %v", m)
			}
			if c.line > 0 && m["line"] != c.line {
				t.Errorf("line %v, want %v (%v)", m["line"], c.line, m["error"])
			}
		})
	}
	if n := e.stored(); n != 0 {
		t.Errorf("%d import messages stored after refusals, want 0", n)
	}
	// A gzip body within the limit is accepted.
	var ok bytes.Buffer
	zw = gzip.NewWriter(&ok)
	_, _ = zw.Write(sarif)
	_ = zw.Close()
	if status, m := e.post(repo, "application/sarif+json", "old-token", ok.Bytes(), map[string]string{"Content-Encoding": "gzip"}); status != 202 || m["results"] != 3.0 {
		t.Errorf("gzip SARIF: %d %v", status, m)
	}
}

// TestNoTokens: without IMPORT_TOKENS the path does not exist.
func TestNoTokens(t *testing.T) {
	ts := httptest.NewServer(Routes(http.NotFoundHandler(), NewHandler(slog.New(slog.NewTextHandler(io.Discard, nil)), nil, Options{})))
	defer ts.Close()
	resp, err := http.Post(ts.URL+Path+"?repository=o/r", "application/json", bytes.NewReader(readSample(t, "codeql.sarif")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("status %d, want 404", resp.StatusCode)
	}
}

func mustTokens(t *testing.T, text string, fileForm bool) tokens.Set {
	t.Helper()
	s, err := tokens.Parse(text, fileForm)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestUnavailable: with JetStream down the answer is 503, never 202.
func TestUnavailable(t *testing.T) {
	e := newHandlerEnv(t, Options{})
	e.srv.Shutdown()
	status, m := e.post(q("repository", "o/r"), "application/json", "old-token", readSample(t, "codeql.sarif"), nil)
	if status != http.StatusServiceUnavailable {
		t.Errorf("status %d %v, want 503", status, m)
	}
}
