package imports

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/logging"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// Path is where files are imported; GET Path/{id} reads a status.
const Path = "/imports"

// gcEvery is how many results of a large file are validated between
// collections.
const gcEvery = 1000

// ParseTokens splits IMPORT_TOKENS: comma-separated, blanks dropped.
func ParseTokens(s string) []string {
	var out []string
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// JetStream is what the handler needs of JetStream: publish with an ack,
// and the ghas_imports bucket. jetstream.JetStream implements it.
type JetStream interface {
	PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
	KeyValue(ctx context.Context, bucket string) (jetstream.KeyValue, error)
}

// Options configure a Handler.
type Options struct {
	// Tokens are the accepted bearer tokens (rotation: any of them).
	Tokens []string
	// MaxBodyBytes is the largest file, after decompression (413 above).
	MaxBodyBytes int64
	// MaxConcurrent bounds the imports read at once (their bodies are
	// held in memory); others wait up to Wait, then get 503. Zero means 2.
	MaxConcurrent int
	Wait          time.Duration
	// PublishTimeout bounds the JetStream ack; zero means 10 s.
	PublishTimeout time.Duration
	Now            func() time.Time
}

// Handler serves POST /imports and GET /imports/{id}.
type Handler struct {
	logger *slog.Logger
	js     JetStream
	opts   Options
	slots  chan struct{}

	mu sync.Mutex
	kv jetstream.KeyValue
}

// NewHandler returns the imports handler.
func NewHandler(logger *slog.Logger, js JetStream, opts Options) *Handler {
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 2
	}
	if opts.Wait <= 0 {
		opts.Wait = 10 * time.Second
	}
	if opts.PublishTimeout <= 0 {
		opts.PublishTimeout = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Handler{logger: logger, js: js, opts: opts, slots: make(chan struct{}, opts.MaxConcurrent)}
}

// Routes mounts the handler beside next (the rest of the public surface):
// Path and Path/… go to h; with no tokens (h nil) they are 404 like any
// unknown path.
func Routes(next http.Handler, h *Handler) http.Handler {
	if h == nil || len(h.opts.Tokens) == 0 {
		return next
	}
	mux := http.NewServeMux()
	mux.Handle(Path, h)
	mux.Handle(Path+"/", h)
	mux.Handle("/", next)
	return mux
}

// httpError is an answer other than 2xx.
type httpError struct {
	status int
	msg    string
	line   int
}

func (e *httpError) Error() string { return e.msg }

func fail(status int, format string, args ...any) *httpError {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

type errorBody struct {
	Error string `json:"error"`
	Line  int    `json:"line,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var err *httpError
	switch {
	case !h.authorized(r):
		w.Header().Set("WWW-Authenticate", `Bearer realm="imports"`)
		err = fail(http.StatusUnauthorized, "missing or wrong bearer token")
	case r.URL.Path == Path && r.Method == http.MethodPost:
		err = h.post(w, r)
	case strings.HasPrefix(r.URL.Path, Path+"/") && r.Method == http.MethodGet:
		err = h.get(w, r, strings.TrimPrefix(r.URL.Path, Path+"/"))
	case r.URL.Path == Path:
		w.Header().Set("Allow", http.MethodPost)
		err = fail(http.StatusMethodNotAllowed, "method not allowed")
	default:
		w.Header().Set("Allow", http.MethodGet)
		err = fail(http.StatusMethodNotAllowed, "method not allowed")
	}
	if err == nil {
		return
	}
	level := slog.LevelWarn
	if err.status >= 500 {
		level = slog.LevelError
	}
	h.logger.LogAttrs(r.Context(), level, "import rejected", slog.Int(logging.KeyStatus, err.status), slog.String(logging.KeyError, err.msg))
	writeJSON(w, err.status, errorBody{Error: err.msg, Line: err.line})
}

// authorized compares the bearer token with every configured token in
// constant time.
func (h *Handler) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return false
	}
	match := 0
	for _, t := range h.opts.Tokens {
		match |= subtle.ConstantTimeCompare([]byte(tok), []byte(t))
	}
	return match == 1
}

func (h *Handler) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.kv != nil {
		return h.kv, nil
	}
	kv, err := h.js.KeyValue(ctx, stream.ImportsBucket)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", stream.ImportsBucket, err)
	}
	h.kv = kv
	return kv, nil
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request, id string) *httpError {
	if !validID(id) {
		return fail(http.StatusNotFound, "unknown import")
	}
	kv, err := h.bucket(r.Context())
	if err != nil {
		return fail(http.StatusServiceUnavailable, "import status unavailable")
	}
	st, ok, err := GetStatus(r.Context(), kv, id)
	if err != nil {
		return fail(http.StatusServiceUnavailable, "import status unavailable")
	}
	if !ok {
		return fail(http.StatusNotFound, "unknown import")
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// formatOf is the default format of a content type.
func formatOf(contentType string) (string, *httpError) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", fail(http.StatusUnsupportedMediaType, "content type %q: want application/sarif+json, application/json or text/csv", contentType)
	}
	switch mt {
	case "application/sarif+json", "application/json":
		return FormatSARIF, nil
	case "text/csv":
		return FormatCSV, nil
	}
	return "", fail(http.StatusUnsupportedMediaType, "content type %q: want application/sarif+json, application/json or text/csv", mt)
}

type accepted struct {
	Import  string `json:"import"`
	Status  string `json:"status"`
	Results int    `json:"results"`
}

func (h *Handler) post(w http.ResponseWriter, r *http.Request) *httpError {
	format, herr := formatOf(r.Header.Get("Content-Type"))
	if herr != nil {
		return herr
	}
	p, err := ParseQuery(r.URL.Query(), format)
	if err != nil {
		return fail(http.StatusBadRequest, "%v", err)
	}
	// A slot bounds the bodies held at once.
	wait := time.NewTimer(h.opts.Wait)
	defer wait.Stop()
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	case <-wait.C:
		w.Header().Set("Retry-After", "5")
		return fail(http.StatusServiceUnavailable, "too many imports at once; retry later")
	case <-r.Context().Done():
		return fail(http.StatusServiceUnavailable, "request ended")
	}
	body, herr := h.readBody(r)
	if herr != nil {
		return herr
	}
	id := ID(p, body)
	kv, kvErr := h.bucket(r.Context())
	if kvErr == nil {
		// Known already (even past JetStream's duplicate window): answered
		// before the file is read again.
		if st, ok, err := GetStatus(r.Context(), kv, id); err == nil && ok {
			writeJSON(w, http.StatusAccepted, accepted{Import: id, Status: StatusDuplicate, Results: st.Results})
			return nil
		}
	}
	// Validation decodes every result; on a large file their garbage is
	// collected as it goes, so the receiver's peak memory stays near the
	// body's size instead of growing to the collector's next goal.
	n := 0
	large := len(body) > 4<<20
	sum, err := Parse(p.Format, body, func(Result) error {
		if n++; large && n%gcEvery == 0 {
			runtime.GC()
		}
		return nil
	})
	if err != nil {
		he := fail(http.StatusBadRequest, "%v", err)
		var pe *ParseError
		if errors.As(err, &pe) {
			he.msg, he.line = pe.Msg, pe.Line
		}
		return he
	}
	now := h.opts.Now()
	// Defaults from the file, then the receive time.
	if p.Tool == "" {
		p.Tool = sum.Tool
	}
	if p.Tool == "" {
		return fail(http.StatusBadRequest, "parameter tool is required: the file does not name its tool")
	}
	p.Organization = sum.Organization
	if p.Category == "" {
		p.Category = sum.Category
	}
	if p.Commit == "" {
		p.Commit = sum.Commit
	}
	if p.Ref == "" && sum.Ref != "" {
		p.Ref = sum.Ref
		if !strings.HasPrefix(p.Ref, "refs/") {
			p.Ref = "refs/heads/" + p.Ref
		}
	}
	if p.ScannedAt == "" {
		if t, err := time.Parse(time.RFC3339Nano, sum.ScannedAt); err == nil {
			p.ScannedAt = t.UTC().Format(time.RFC3339)
		} else {
			p.ScannedAt = now.UTC().Format(time.RFC3339)
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.PublishTimeout)
	defer cancel()
	msg := Message(id, p, compress(body), now)
	msg.Header.Set(HeaderEncoding, "gzip")
	body = nil // only the compressed copy is needed now
	ack, err := h.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(stream.EventsStream))
	if err != nil {
		h.logger.Error("import not stored", slog.String(logging.KeyImport, id), logging.Err(err))
		return fail(http.StatusServiceUnavailable, "import not stored: JetStream unavailable")
	}
	status := StatusAccepted
	if ack.Duplicate {
		status = StatusDuplicate
	}
	if kvErr == nil {
		err = CreateStatus(ctx, kv, Status{Import: id, Status: StatusAccepted, Format: p.Format, Repository: p.Repository,
			Tool: p.Tool, Results: sum.Results, ReceivedAt: now.UTC().Format(time.RFC3339)})
	} else {
		err = kvErr
	}
	if err != nil {
		// Stored: the processor will record the outcome.
		h.logger.Warn("import status not recorded", slog.String(logging.KeyImport, id), logging.Err(err))
	}
	h.logger.Info("import "+status, slog.String(logging.KeyImport, id), slog.String(logging.KeyFormat, p.Format), slog.Int(logging.KeyResults, sum.Results))
	writeJSON(w, http.StatusAccepted, accepted{Import: id, Status: status, Results: sum.Results})
	return nil
}

// readBody reads the body, decompressing gzip, refusing more than
// MaxBodyBytes after decompression while it streams (a gzip bomb stops at
// the limit). A body with a Content-Length is read into one buffer of
// that size.
func (h *Handler) readBody(r *http.Request) ([]byte, *httpError) {
	max := h.opts.MaxBodyBytes
	if r.ContentLength > max && r.Header.Get("Content-Encoding") == "" {
		return nil, fail(http.StatusRequestEntityTooLarge, "body larger than %d bytes", max)
	}
	var src io.Reader = http.MaxBytesReader(nil, r.Body, max+1)
	size := int64(64 << 10)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		if r.ContentLength > 0 {
			size = r.ContentLength + bytes.MinRead
		}
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, fail(http.StatusBadRequest, "gzip: %v", err)
		}
		defer zr.Close()
		src = zr
		if r.ContentLength > 0 {
			size = min(4*r.ContentLength, max+1)
		}
	default:
		return nil, fail(http.StatusUnsupportedMediaType, "content encoding %q: want gzip or none", enc)
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	n, err := buf.ReadFrom(io.LimitReader(src, max+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fail(http.StatusRequestEntityTooLarge, "body larger than %d bytes", max)
		}
		if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fail(http.StatusBadRequest, "gzip: %v", err)
		}
		return nil, fail(http.StatusBadRequest, "read body: %v", err)
	}
	if n > max {
		return nil, fail(http.StatusRequestEntityTooLarge, "body larger than %d bytes (after decompression)", max)
	}
	return buf.Bytes(), nil
}
