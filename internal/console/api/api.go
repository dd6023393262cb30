// Package api owns the console's JSON API: GET /api/summary,
// /api/findings (filters, sort, cursor paging), /api/findings/{key} (the
// document and its revisions), /api/changes and /api/assets, answered
// from the index; documents and revisions are read from NATS through a
// Store. A bad parameter is answered 400 with
// {"error": "...", "parameter": "<name>"}.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/console/index"
	"github.com/ghas-relay/ghas-relay/internal/logging"
)

// Limits of the list endpoints.
const (
	DefaultLimit        = 50
	MaxLimit            = 1000
	DefaultChangesLimit = 1000
	MaxChangesLimit     = 100000
	// MaxRevisionDocuments is how many of a finding's revisions (the
	// newest) carry their document in /api/findings/{key}.
	MaxRevisionDocuments = 100
)

// Store reads what the index does not hold: a finding's current document
// (KV ghas_findings) and a stored revision (GHAS_FINDINGS, by sequence).
type Store interface {
	Document(ctx context.Context, key string) (json.RawMessage, bool, error)
	Revision(ctx context.Context, seq uint64) (json.RawMessage, bool, error)
}

// API answers the JSON routes.
type API struct {
	logger *slog.Logger
	ix     *index.Index
	store  Store
	now    func() time.Time

	mu             sync.Mutex
	summaryBody    []byte
	summaryVersion uint64
	summaryAt      time.Time
}

// New returns the API over ix and store; now is the clock.
func New(logger *slog.Logger, ix *index.Index, store Store, now func() time.Time) *API {
	return &API{logger: logger, ix: ix, store: store, now: now}
}

// Register adds the routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/summary", a.summary)
	mux.HandleFunc("GET /api/findings", a.findings)
	mux.HandleFunc("GET /api/findings/{key}", a.finding)
	mux.HandleFunc("GET /api/changes", a.changes)
	mux.HandleFunc("GET /api/assets", a.assets)
	// Anything else under /api/ is answered in JSON too: 405 with Allow
	// for a route asked with another method than GET or HEAD (the mux
	// would otherwise match this catch-all first and say 404), else 404.
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			get := r.Clone(r.Context())
			get.Method = http.MethodGet
			if _, pattern := mux.Handler(get); pattern != "/api/" {
				w.Header().Set("Allow", "GET, HEAD")
				writeError(w, http.StatusMethodNotAllowed, errors.New(r.Method+" is not allowed: the API only reads (GET)"), "")
				return
			}
		}
		writeError(w, http.StatusNotFound, errors.New("no such endpoint"), "")
	})
}

// summaryMaxAge bounds how long an encoded summary is answered again
// while the index does not change: it names the time and counts fixes of
// the last 90 days.
const summaryMaxAge = time.Second

func (a *API) summary(w http.ResponseWriter, r *http.Request) {
	if _, err := readParams(r.URL.Query()); err != nil {
		a.fail(w, err)
		return
	}
	// Many dashboards asking at once get the same answer: encode it once
	// per change of the index (and at most a second old).
	v, now := a.ix.Version(), a.now()
	a.mu.Lock()
	body := a.summaryBody
	if a.summaryVersion != v || now.Sub(a.summaryAt) >= summaryMaxAge || now.Before(a.summaryAt) {
		body = nil
	}
	a.mu.Unlock()
	if body == nil {
		s, err := a.ix.Summary()
		if err != nil {
			a.fail(w, err)
			return
		}
		b, err := json.Marshal(s)
		if err != nil {
			a.fail(w, err)
			return
		}
		body = append(b, '\n')
		a.mu.Lock()
		a.summaryBody, a.summaryVersion, a.summaryAt = body, v, now
		a.mu.Unlock()
	}
	writeBody(w, http.StatusOK, body)
}

func (a *API) findings(w http.ResponseWriter, r *http.Request) {
	p, err := readParams(r.URL.Query(), append(slices.Clone(FilterParams), "sort", "limit", "cursor")...)
	if err != nil {
		a.fail(w, err)
		return
	}
	var q index.Query
	if q.Filter, err = ReadFilter(r.URL.Query()); err != nil {
		a.fail(w, err)
		return
	}
	if q.Sort, err = p.oneOf("sort", index.Sorts); err != nil {
		a.fail(w, err)
		return
	}
	if q.Limit, err = p.limit("limit", DefaultLimit, MaxLimit); err != nil {
		a.fail(w, err)
		return
	}
	q.Cursor = p.get("cursor")
	page, err := a.ix.Findings(q)
	if err != nil {
		a.fail(w, err)
		return
	}
	buf := getBuffer()
	*buf = appendPage((*buf)[:0], page)
	writeBody(w, http.StatusOK, *buf)
	putBuffer(buf)
}

// FindingAnswer is /api/findings/{key}: the current document and the
// revisions of the last 30 days, oldest first.
type FindingAnswer struct {
	FindingKey string            `json:"findingKey"`
	Document   json.RawMessage   `json:"document"`
	Summary    *index.Item       `json:"summary,omitempty"`
	Revisions  []RevisionWithDoc `json:"revisions"`
}

// RevisionWithDoc is a stored revision and, for the newest ones, its
// document.
type RevisionWithDoc struct {
	index.Revision
	Document json.RawMessage `json:"document,omitempty"`
}

// Finding reads a finding's answer; false when there is no such finding.
func (a *API) Finding(ctx context.Context, key string) (FindingAnswer, bool, error) {
	doc, ok, err := a.store.Document(ctx, key)
	if err != nil {
		return FindingAnswer{}, false, err
	}
	if !ok {
		return FindingAnswer{}, false, nil
	}
	ans := FindingAnswer{FindingKey: key, Document: doc, Revisions: []RevisionWithDoc{}}
	if it, ok := a.ix.Get(key); ok {
		ans.Summary = &it
	}
	revs := a.ix.Revisions(key)
	for i, rv := range revs {
		rd := RevisionWithDoc{Revision: rv}
		if len(revs)-i <= MaxRevisionDocuments {
			if d, ok, err := a.store.Revision(ctx, rv.Sequence); err == nil && ok {
				rd.Document = d
			} else if err != nil {
				a.logger.Debug("read a revision", slog.Uint64(logging.KeyRevision, rv.Sequence), logging.Err(err))
			}
		}
		ans.Revisions = append(ans.Revisions, rd)
	}
	return ans, true, nil
}

func (a *API) finding(w http.ResponseWriter, r *http.Request) {
	if _, err := readParams(r.URL.Query()); err != nil {
		a.fail(w, err)
		return
	}
	key := r.PathValue("key")
	ans, ok, err := a.Finding(r.Context(), key)
	if err != nil {
		a.fail(w, err)
		return
	}
	if !ok {
		writeError(w, http.StatusNotFound, errors.New("no finding "+key), "")
		return
	}
	writeJSON(w, http.StatusOK, ans)
}

func (a *API) changes(w http.ResponseWriter, r *http.Request) {
	p, err := readParams(r.URL.Query(), "since", "until", "limit")
	if err != nil {
		a.fail(w, err)
		return
	}
	now := a.now()
	since, err := p.moment("since", now, now.Add(-24*time.Hour))
	if err != nil {
		a.fail(w, err)
		return
	}
	// Without until the window is open: every change stored since, even
	// one GHAS_FINDINGS stamped a moment ahead of this clock.
	until, end := now, OpenEnd()
	if p.get("until") != "" {
		if until, err = p.moment("until", now, now); err != nil {
			a.fail(w, err)
			return
		}
		if until.Before(since) {
			a.fail(w, &ParamError{"until", fmt.Sprintf("%s is before since (%s)", until.UTC().Format(time.RFC3339Nano), since.UTC().Format(time.RFC3339Nano))})
			return
		}
		end = until
	}
	limit, err := p.limit("limit", DefaultChangesLimit, MaxChangesLimit)
	if err != nil {
		a.fail(w, err)
		return
	}
	if !a.ix.Ready() {
		a.fail(w, index.ErrNotLoaded)
		return
	}
	// Written by hand under the index's read lock into one buffer (never to
	// the network while the lock is held): 100,000 changes are about 20 MB.
	buf := getBuffer()
	defer putBuffer(buf)
	b := appendChangesHead((*buf)[:0], since.UTC().Format(time.RFC3339Nano), until.UTC().Format(time.RFC3339Nano))
	n := 0
	counts, total := a.ix.EachChange(since, end, limit, func(v *index.ChangeView) {
		if n > 0 {
			b = append(b, ',')
		}
		b = appendChangeView(b, v)
		n++
	})
	*buf = appendChangesTail(b, counts, total, n < total)
	writeBody(w, http.StatusOK, *buf)
}

// OpenEnd is the end of a window of changes without until: after any
// change stored.
func OpenEnd() time.Time { return time.UnixMilli(math.MaxInt64) }

// buffers are reused answer buffers: under load the answers are most of
// what the console allocates, and each collection marks the whole index.
var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 32<<10); return &b }}

// maxPooled bounds the buffers kept: a list of 100,000 changes (20 MB)
// is not kept for the next small answer.
const maxPooled = 1 << 20

func getBuffer() *[]byte { return buffers.Get().(*[]byte) }

func putBuffer(b *[]byte) {
	if cap(*b) <= maxPooled {
		buffers.Put(b)
	}
}

func (a *API) assets(w http.ResponseWriter, r *http.Request) {
	p, err := readParams(r.URL.Query(), "source", "only")
	if err != nil {
		a.fail(w, err)
		return
	}
	only, err := p.boolean("only")
	if err != nil {
		a.fail(w, err)
		return
	}
	list, err := a.ix.Assets(index.AssetQuery{Source: p.get("source"), Only: only})
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"assets": list, "bySource": a.ix.AssetsBySource()})
}

// fail answers err: 400 naming a bad parameter, 503 while loading, 500
// otherwise (logged; the body says nothing of the cause).
func (a *API) fail(w http.ResponseWriter, err error) {
	var pe *ParamError
	switch {
	case errors.As(err, &pe):
		writeError(w, http.StatusBadRequest, errors.New(pe.Msg), pe.Parameter)
	case errors.Is(err, index.ErrBadCursor), errors.Is(err, index.ErrCursorExpired):
		writeError(w, http.StatusBadRequest, err, "cursor")
	case errors.Is(err, index.ErrNotLoaded):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, err, "")
	default:
		a.logger.Error("console request failed", logging.Err(err))
		writeError(w, http.StatusInternalServerError, errors.New("internal error"), "")
	}
}

// ErrorBody is the JSON of every error answer.
type ErrorBody struct {
	Error     string `json:"error"`
	Parameter string `json:"parameter,omitempty"`
}

func writeError(w http.ResponseWriter, status int, err error, parameter string) {
	writeJSON(w, status, ErrorBody{Error: err.Error(), Parameter: parameter})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"internal error"}` + "\n")
	}
	writeBody(w, status, buf.Bytes())
}

// writeBody answers a JSON body.
func writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
