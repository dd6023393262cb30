package imports

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/logging"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/tokens"
)

// Path is where files are imported; GET Path/{id} reads a status.
const Path = "/imports"

// JetStream is what the handler needs of JetStream: publish with an ack,
// and the ghas_imports bucket. jetstream.JetStream implements it.
type JetStream interface {
	PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
	KeyValue(ctx context.Context, bucket string) (jetstream.KeyValue, error)
}

// Options configure a Handler.
type Options struct {
	// Tokens are the accepted bearer tokens (rotation: any of them), each
	// with its name and the repositories it may import into.
	Tokens tokens.Set
	// MaxBodyBytes is the largest file, after decompression (413 above).
	MaxBodyBytes int64
	// MaxConcurrent bounds the imports read at once (each holds its
	// compressed copy); others wait up to Wait, then get 503. Zero means 2.
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
	if h == nil || h.opts.Tokens.Len() == 0 {
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
	tok, ok := h.token(r)
	switch {
	case !ok:
		w.Header().Set("WWW-Authenticate", `Bearer realm="imports"`)
		err = fail(http.StatusUnauthorized, "missing or wrong bearer token")
	case r.URL.Path == Path && r.Method == http.MethodPost:
		err = h.post(w, r, tok)
	case strings.HasPrefix(r.URL.Path, Path+"/") && r.Method == http.MethodGet:
		err = h.get(w, r, tok, strings.TrimPrefix(r.URL.Path, Path+"/"))
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
	attrs := []slog.Attr{slog.Int(logging.KeyStatus, err.status), slog.String(logging.KeyError, err.msg)}
	if ok {
		attrs = append(attrs, slog.String(logging.KeyBy, tok.Name))
	}
	h.logger.LogAttrs(r.Context(), level, "import rejected", attrs...)
	writeJSON(w, err.status, errorBody{Error: err.msg, Line: err.line})
}

// token finds the request's bearer token among the configured ones (in
// constant time: tokens.Set.Lookup).
func (h *Handler) token(r *http.Request) (tokens.Token, bool) {
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return tokens.Token{}, false
	}
	return h.opts.Tokens.Lookup(bearer)
}

// forbidden answers a token that may not act on repo; it names neither
// the token's globs nor any other token.
func forbidden(repo string) *httpError {
	return fail(http.StatusForbidden, "this token may not import into repository %s", repo)
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

func (h *Handler) get(w http.ResponseWriter, r *http.Request, tok tokens.Token, id string) *httpError {
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
	if !tok.Allows(st.Repository) {
		return forbidden(st.Repository)
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

func (h *Handler) post(w http.ResponseWriter, r *http.Request, tok tokens.Token) *httpError {
	received := h.opts.Now()
	if r.ContentLength > h.opts.MaxBodyBytes {
		return fail(http.StatusRequestEntityTooLarge, "body larger than %d bytes", h.opts.MaxBodyBytes)
	}
	format, herr := formatOf(r.Header.Get("Content-Type"))
	if herr != nil {
		return herr
	}
	p, err := ParseQuery(r.URL.Query(), format, received)
	if err != nil {
		return fail(http.StatusBadRequest, "%v", err)
	}
	if !tok.Allows(p.Repository) {
		return forbidden(p.Repository)
	}
	// A slot bounds the uploads read at once.
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
	// The content id covers the body and the parameters as requested
	// (before the file's defaults): a retried upload has the same.
	in, herr := openBody(w, r, h.opts.MaxBodyBytes, contentHash(p))
	if herr != nil {
		return herr
	}
	sum, err := ParseReader(p.Format, in, func(Result) error { return nil })
	if herr := in.finish(err == nil); herr != nil {
		return herr // the body, not the file, is at fault
	}
	if err != nil {
		he := fail(http.StatusBadRequest, "%v", err)
		var pe *ParseError
		if errors.As(err, &pe) {
			he.msg, he.line = pe.Msg, pe.Line
		}
		return he
	}
	content := sumID(in.hash)
	scans, herr := plan(&p, sum, received)
	if herr != nil {
		return herr
	}
	p.By = tok.Name
	return h.store(w, r, p, scans, content, in.compressed(), sum.Results, received)
}

// plan resolves an import's parameters (as the request gave them) against
// its file and groups its runs into scans. What the request gave applies
// to every run; the rest comes from each run (scans.go). p then names the
// first scan's scope (an older processor applies it to every run, as it
// did) and how many scans there are: the processor finds a delivery of an
// import it applied already from the first scan's record, without reading
// the file.
func plan(p *Params, sum Summary, received time.Time) ([]Scan, *httpError) {
	p.FromFile = FromFile{Tool: p.Tool == "", Category: p.Category == ""}
	if !p.FromFile.Tool && p.Format == FormatSARIF {
		if err := oneTool(sum); err != nil {
			return nil, fail(http.StatusBadRequest, "%v", err)
		}
	}
	if herr := resolve(p, sum, received); herr != nil {
		return nil, herr
	}
	scans, err := Scans(*p, sum)
	if err != nil {
		return nil, fail(http.StatusBadRequest, "%v", err)
	}
	p.Tool, p.Organization, p.Category, p.Scans = scans[0].Tool, scans[0].Organization, scans[0].Category, len(scans)
	return scans, nil
}

// resolve fills the parameters the request left out from the file, and
// the scan time from the receive time when neither states one.
func resolve(p *Params, sum Summary, received time.Time) *httpError {
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
	if p.ScannedAt == "" && sum.ScannedAt != "" {
		t, err := scanTime("SARIF invocations[].endTimeUtc", sum.ScannedAt, received)
		if err != nil {
			return fail(http.StatusBadRequest, "%v", err)
		}
		p.ScannedAt = t
	}
	if p.ScannedAt == "" {
		p.ScannedAt = receiveScanTime(received)
	}
	return nil
}

// store answers a validated import: a duplicate when it repeats the
// latest import of every scope it scans, else a new import stored in
// JetStream and recorded as each scope's latest (latest.go).
func (h *Handler) store(w http.ResponseWriter, r *http.Request, p Params, scans []Scan, content string, body []byte, results int, received time.Time) *httpError {
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.PublishTimeout)
	defer cancel()
	kv, err := h.bucket(ctx)
	if err != nil {
		h.logger.Error("import not stored", logging.Err(err))
		return fail(http.StatusServiceUnavailable, "import not stored: JetStream unavailable")
	}
	keys := make([]string, len(scans))
	latest := make([]*latestImport, len(scans))
	for i, sc := range scans {
		keys[i] = latestKey(p.Repository, sc.Scope)
		l, err := getLatest(ctx, kv, keys[i])
		if err != nil {
			// Without the scope's latest import a retry cannot be told
			// from a new scan.
			h.logger.Error("import not stored", logging.Err(err))
			return fail(http.StatusServiceUnavailable, "import not stored: JetStream unavailable")
		}
		latest[i] = l
	}
	answer := func(id, status string) {
		h.logger.Info("import "+status, slog.String(logging.KeyImport, id), slog.String(logging.KeyFormat, p.Format),
			slog.Int(logging.KeyResults, results), slog.String(logging.KeyBy, p.By))
		writeJSON(w, http.StatusAccepted, accepted{Import: id, Status: status, Results: results})
	}
	if id, ok := retried(content, latest); ok {
		answer(id, StatusDuplicate) // a retried upload
		return nil
	}
	id := nextID(content, latest)
	msg := Message(id, p, body, received)
	msg.Header.Set(HeaderEncoding, "gzip")
	ack, err := h.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(stream.EventsStream))
	if err != nil {
		h.logger.Error("import not stored", slog.String(logging.KeyImport, id), logging.Err(err))
		return fail(http.StatusServiceUnavailable, "import not stored: JetStream unavailable")
	}
	status := StatusAccepted
	if ack.Duplicate {
		status = StatusDuplicate // a retry that raced its first attempt
	}
	// Both records are best effort: the import is stored, the processor
	// records its outcome, and without the latest record an identical
	// post is taken for a new scan (applied again: no harm).
	for _, key := range keys {
		if err := putLatest(ctx, kv, key, latestImport{Import: id, Content: content, ReceivedAt: received.UTC().Format(time.RFC3339Nano)}); err != nil {
			h.logger.Warn("latest import of the scope not recorded", slog.String(logging.KeyImport, id), logging.Err(err))
		}
	}
	if err := CreateStatus(ctx, kv, Status{Import: id, Status: StatusAccepted, Format: p.Format, Repository: p.Repository,
		Tool: Tools(scans), Results: results, By: p.By, ReceivedAt: received.UTC().Format(time.RFC3339)}); err != nil {
		h.logger.Warn("import status not recorded", slog.String(logging.KeyImport, id), logging.Err(err))
	}
	answer(id, status)
	return nil
}
