package decisions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/logging"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/tokens"
)

// Path is where decisions are posted; GET Path/{id} reads a status.
const Path = "/decisions"

// JetStream is what the handler needs of JetStream: publish (with an ack,
// many at once) and the buckets ghas_decisions and ghas_findings.
// jetstream.JetStream implements it.
type JetStream interface {
	PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error)
	KeyValue(ctx context.Context, bucket string) (jetstream.KeyValue, error)
}

// Options configure a Handler.
type Options struct {
	// Tokens are the accepted bearer tokens (DECISION_TOKENS), each with
	// its name and the repositories it may decide on.
	Tokens tokens.Set
	// PublishTimeout bounds storing a request's decisions and their
	// records; zero means 10 s.
	PublishTimeout time.Duration
	Now            func() time.Time
}

// Handler serves POST /decisions and GET /decisions/{id}.
type Handler struct {
	logger *slog.Logger
	js     JetStream
	opts   Options

	mu      sync.Mutex
	buckets map[string]jetstream.KeyValue
}

// NewHandler returns the decisions handler.
func NewHandler(logger *slog.Logger, js JetStream, opts Options) *Handler {
	if opts.PublishTimeout <= 0 {
		opts.PublishTimeout = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Handler{logger: logger, js: js, opts: opts, buckets: map[string]jetstream.KeyValue{}}
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
	field  string
}

func fail(status int, format string, args ...any) *httpError {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
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
		w.Header().Set("WWW-Authenticate", `Bearer realm="decisions"`)
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
	h.logger.LogAttrs(r.Context(), level, "decision rejected", attrs...)
	writeJSON(w, err.status, errorBody{Error: err.msg, Field: err.field})
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

func (h *Handler) bucket(ctx context.Context, name string) (jetstream.KeyValue, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if kv := h.buckets[name]; kv != nil {
		return kv, nil
	}
	kv, err := h.js.KeyValue(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", name, err)
	}
	h.buckets[name] = kv
	return kv, nil
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request, tok tokens.Token, id string) *httpError {
	if !ValidID(id) {
		return fail(http.StatusNotFound, "unknown decision")
	}
	kv, err := h.bucket(r.Context(), stream.DecisionsBucket)
	if err != nil {
		return fail(http.StatusServiceUnavailable, "decision status unavailable")
	}
	rec, _, ok, err := Get(r.Context(), kv, id)
	if err != nil {
		return fail(http.StatusServiceUnavailable, "decision status unavailable")
	}
	if !ok {
		return fail(http.StatusNotFound, "unknown decision")
	}
	// A scoped token reads the decisions on its repositories; one whose
	// repository is not known (an unknown finding), only its own.
	if len(tok.Globs()) > 0 && (rec.Repository == "" && rec.By != tok.Name || rec.Repository != "" && !tok.Allows(rec.Repository)) {
		return fail(http.StatusForbidden, "this token may not read decision %s", id)
	}
	writeJSON(w, http.StatusOK, rec.Status)
	return nil
}

type accepted struct {
	Decision string `json:"decision"`
	Status   string `json:"status"`
}

type acceptedBatch struct {
	Decisions []accepted `json:"decisions"`
}

func (h *Handler) post(w http.ResponseWriter, r *http.Request, tok tokens.Token) *httpError {
	received := h.opts.Now().UTC()
	if r.ContentLength > MaxBodyBytes {
		return fail(http.StatusRequestEntityTooLarge, "body larger than %d bytes", MaxBodyBytes)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fail(http.StatusRequestEntityTooLarge, "body larger than %d bytes", MaxBodyBytes)
		}
		return fail(http.StatusBadRequest, "reading the body: %v", err)
	}
	reqs, batch, err := Parse(body)
	if err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return &httpError{status: http.StatusBadRequest, msg: fe.Msg, field: fe.Field}
		}
		return fail(http.StatusBadRequest, "%v", err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.PublishTimeout)
	defer cancel()
	repos, herr := h.authorize(ctx, tok, reqs, batch)
	if herr != nil {
		return herr
	}
	ds := make([]Decision, len(reqs))
	for i, q := range reqs {
		ds[i] = Decision{ID: NewID(), Request: q, By: tok.Name, Repositories: tok.Globs(), ReceivedAt: received.Format(time.RFC3339Nano)}
	}
	if herr := h.store(ctx, ds, repos); herr != nil {
		return herr
	}
	out := make([]accepted, len(ds))
	for i, d := range ds {
		out[i] = accepted{Decision: d.ID, Status: StatusAccepted}
		h.logger.Info("decision accepted", slog.String(logging.KeyDecision, d.ID), slog.String(logging.KeyFindingKey, d.FindingKey),
			slog.String(logging.KeyAction, d.Decision), slog.String(logging.KeyReason, d.Reason), slog.String(logging.KeyScope, d.Scope),
			slog.String(logging.KeyBy, d.By))
	}
	if !batch {
		writeJSON(w, http.StatusAccepted, out[0])
		return nil
	}
	writeJSON(w, http.StatusAccepted, acceptedBatch{Decisions: out})
	return nil
}

// authorize holds each decision's repository to a scoped token's globs:
// the repository is read from the finding in KV ghas_findings (its key
// holds only the repository's id, the globs name owner/name). A finding
// the relay does not hold is accepted here and fails in its status
// ("unknown finding"); the processor holds every finding a decision
// reaches to the token's globs, so nothing outside them is touched. A
// token without globs may decide on every repository: nothing is read.
// It returns each decision's repository ("" where not read or unknown).
func (h *Handler) authorize(ctx context.Context, tok tokens.Token, reqs []Request, batch bool) ([]string, *httpError) {
	repos := make([]string, len(reqs))
	if len(tok.Globs()) == 0 {
		return repos, nil
	}
	kv, err := h.bucket(ctx, stream.FindingsBucket)
	if err != nil {
		h.logger.Error("decision not checked", logging.Err(err))
		return nil, fail(http.StatusServiceUnavailable, "decision not stored: JetStream unavailable")
	}
	names := map[int64]string{} // repository id → owner/name, "" while unknown
	for i, q := range reqs {
		_, _, repoID, _ := KindOf(q.FindingKey) // validated
		name, seen := names[repoID]
		if !seen || name == "" {
			e, err := kv.Get(ctx, q.FindingKey)
			switch {
			case errors.Is(err, jetstream.ErrKeyNotFound):
			case err != nil:
				h.logger.Error("decision not checked", logging.Err(err))
				return nil, fail(http.StatusServiceUnavailable, "decision not stored: JetStream unavailable")
			default:
				if d, derr := finding.Decode(e.Value()); derr == nil && d.AssetDetail.FullName != "" {
					name = d.AssetDetail.FullName
				}
			}
			names[repoID] = name
		}
		if name != "" && !tok.Allows(name) {
			field := "findingKey"
			if batch {
				field = fmt.Sprintf("decisions[%d].findingKey", i)
			}
			return nil, &httpError{status: http.StatusForbidden, msg: fmt.Sprintf("this token may not decide on repository %s", name), field: field}
		}
		repos[i] = name
	}
	return repos, nil
}

// store publishes every decision on GHAS_EVENTS and waits for their acks,
// then records each as accepted in KV ghas_decisions. A request is
// answered 202 only when every decision is stored; a record is best
// effort (the processor writes it too).
func (h *Handler) store(ctx context.Context, ds []Decision, repos []string) *httpError {
	futures := make([]jetstream.PubAckFuture, len(ds))
	for i, d := range ds {
		m, err := Message(d)
		if err != nil {
			return fail(http.StatusBadRequest, "%v", err)
		}
		if futures[i], err = h.js.PublishMsgAsync(m, jetstream.WithExpectStream(stream.EventsStream)); err != nil {
			h.logger.Error("decision not stored", slog.String(logging.KeyDecision, d.ID), logging.Err(err))
			return fail(http.StatusServiceUnavailable, "decision not stored: JetStream unavailable")
		}
	}
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			h.logger.Error("decision not stored", slog.String(logging.KeyDecision, ds[i].ID), logging.Err(err))
			return fail(http.StatusServiceUnavailable, "decision not stored: JetStream unavailable")
		case <-ctx.Done():
			h.logger.Error("decision not stored", slog.String(logging.KeyDecision, ds[i].ID), logging.Err(ctx.Err()))
			return fail(http.StatusServiceUnavailable, "decision not stored: JetStream unavailable")
		}
	}
	kv, err := h.bucket(ctx, stream.DecisionsBucket)
	if err != nil {
		h.logger.Warn("decision status not recorded", logging.Err(err))
		return nil
	}
	// Records are written a few at a time: a batch of 1,000 is answered
	// within a round trip or two per 16 of them.
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i, d := range ds {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			rec := NewRecord(d)
			rec.Repository = repos[i]
			if err := Create(ctx, kv, rec); err != nil {
				h.logger.Warn("decision status not recorded", slog.String(logging.KeyDecision, d.ID), logging.Err(err))
			}
		}()
	}
	wg.Wait()
	return nil
}
