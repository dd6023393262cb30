package webhook

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/logging"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// Publisher publishes a message to JetStream and waits for its ack.
// jetstream.JetStream implements it.
type Publisher interface {
	PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Metrics are the receiver's Prometheus metrics (docs/contract.md lists
// every metric of ghas-relay).
type Metrics struct {
	// Deliveries counts answered requests by event and result (accepted,
	// duplicate, ignored, bad_request, unauthorized, method_not_allowed,
	// too_large, unsupported_media_type, unavailable).
	Deliveries *metrics.CounterVec
	// Duration is the time from request start to answer.
	Duration *metrics.Histogram
	// Connections is the public listener's open connections, in any state
	// (Listen counts them).
	Connections *metrics.Gauge
	// WaitingForBody is the webhook requests whose head arrived and whose
	// body's first byte has not: they hold no body buffer and no slot of
	// MaxInFlight.
	WaitingForBody *metrics.Gauge
	// InFlight is the webhook requests counted against MaxInFlight.
	InFlight *metrics.Gauge
}

// NewMetrics registers the receiver metrics on reg.
func NewMetrics(reg *metrics.Registry) *Metrics {
	return &Metrics{
		Deliveries:     reg.NewCounterVec("ghas_receiver_deliveries_total", "Webhook requests answered, by event and result.", "event", "result"),
		Duration:       reg.NewHistogram("ghas_receiver_request_duration_seconds", "Time to answer a webhook request, including the JetStream ack.", metrics.DefaultBuckets),
		Connections:    reg.NewGauge("ghas_receiver_connections", "Open connections of the public listener, in any state."),
		WaitingForBody: reg.NewGauge("ghas_receiver_requests_waiting_for_body", "Webhook requests whose head arrived and whose body has not started to."),
		InFlight:       reg.NewGauge("ghas_receiver_requests_in_flight", "Webhook requests counted against MAX_IN_FLIGHT: their body started to arrive."),
	}
}

// Options configure a Handler.
type Options struct {
	// Secrets are the webhook secrets; a signature made with any of them
	// verifies (rotation).
	Secrets [][]byte
	// MaxBodyBytes is the largest accepted body (413 above).
	MaxBodyBytes int64
	// PublishTimeout bounds the wait for the JetStream ack (503 after it);
	// zero means 5 s.
	PublishTimeout time.Duration
	// Now is the clock for Ghas-Received-At; nil means time.Now.
	Now func() time.Time
	// MaxBodyMemory bounds the bytes of body buffers held at once by all
	// requests; zero means four times MaxBodyBytes. A body's buffer grows as
	// its bytes arrive and each growth is reserved first, so the budget is
	// spent on bytes received, not on a Content-Length a client announced.
	// A delivery that cannot reserve its next growth within BudgetWait is
	// answered 503.
	MaxBodyMemory int64
	// BudgetWait is how long a delivery waits for memory; zero means 10 s.
	BudgetWait time.Duration
	// MaxInFlight caps the requests being handled at once. A request counts
	// from its body's first byte (or, with no body, not at all): one that
	// waits for its body holds no buffer and no slot, so connections that
	// send a head and nothing more cannot lock deliveries out. A request
	// over the cap is answered 503 at once, the rest of its body unread.
	// Zero means DefaultMaxInFlight.
	MaxInFlight int
	// BodyTimeout is how long a request's body may take to arrive, from the
	// moment the handler starts waiting for it; zero means
	// DefaultBodyTimeout. It shortens the listener's ReadTimeout for
	// /webhook only.
	BodyTimeout time.Duration
}

// DefaultMaxInFlight is the default cap on requests handled at once.
const DefaultMaxInFlight = 2048

// DefaultBodyTimeout bounds how long a webhook body may take: GitHub gives
// up on a delivery after 10 s, so a body still arriving after twice that
// is read for nobody, and a client that stalls holds its connection a
// third of the listener's ReadTimeout.
const DefaultBodyTimeout = 20 * time.Second

// Handler is the POST /webhook handler.
type Handler struct {
	logger   *slog.Logger
	pub      Publisher
	metrics  *Metrics
	opts     Options
	budget   *memBudget
	waiting  *level // requests waiting for their body's first byte
	inFlight *level // requests counted against MaxInFlight
	verifier *verifier
	bufs     sync.Pool              // of *[firstBuffer]byte: first buffers of bodies
	subjects map[string]string      // handled event → subject, built once
	pubOpts  []jetstream.PublishOpt // the same for every publish
}

// NewHandler returns the webhook handler publishing through pub.
func NewHandler(logger *slog.Logger, pub Publisher, m *Metrics, opts Options) *Handler {
	if opts.PublishTimeout <= 0 {
		opts.PublishTimeout = defaultPublishTimeoutSec * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxBodyMemory <= 0 {
		opts.MaxBodyMemory = 4 * opts.MaxBodyBytes
	}
	// Any single body must fit (the +1 covers a chunked body's overflow byte).
	opts.MaxBodyMemory = max(opts.MaxBodyMemory, opts.MaxBodyBytes+1)
	if opts.BudgetWait <= 0 {
		opts.BudgetWait = 10 * time.Second
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = DefaultMaxInFlight
	}
	if opts.BodyTimeout <= 0 {
		opts.BodyTimeout = DefaultBodyTimeout
	}
	subjects := map[string]string{stream.EventPing: stream.WebhookSubject(stream.EventPing)}
	for _, e := range stream.HandledEvents() {
		subjects[e] = stream.WebhookSubject(e)
	}
	return &Handler{
		logger: logger, pub: pub, metrics: m, opts: opts, budget: newMemBudget(opts.MaxBodyMemory),
		waiting: newLevel(m.WaitingForBody), inFlight: newLevel(m.InFlight),
		verifier: newVerifier(opts.Secrets),
		subjects: subjects,
		pubOpts:  []jetstream.PublishOpt{jetstream.WithExpectStream(stream.EventsStream)},
	}
}

// ServeHTTP answers one delivery: 202 only once JetStream acknowledged it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	event, id := header(r.Header, keyEvent), header(r.Header, keyDelivery)
	verified := false
	result := "accepted"
	defer func() {
		h.metrics.Deliveries.Inc(eventLabel(event, verified), result)
		h.metrics.Duration.Observe(time.Since(start).Seconds())
	}()
	// fail answers err's status; cause, when set, is the underlying error
	// that is logged instead of err.
	fail := func(err error, res string, cause error) {
		result = res
		status := statusOf(err)
		logErr := err
		if cause != nil {
			logErr = cause
		}
		level := slog.LevelWarn
		switch {
		case status >= 500:
			level = slog.LevelError
		case err == errBodyRead:
			// A client that went away or stalled past the read timeout:
			// one line each would let slow clients flood the log; the
			// metric counts them (result "bad_request").
			level = slog.LevelDebug
		}
		h.logger.LogAttrs(r.Context(), level, "webhook rejected",
			slog.String(logging.KeyDeliveryID, logValue(id)), slog.String(logging.KeyEvent, logValue(event)),
			slog.Int(logging.KeyStatus, status), logging.Err(logErr))
		msg := "error"
		if se, ok := err.(*statusError); ok {
			msg = se.msg
		}
		http.Error(w, msg, status)
	}

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		fail(&statusError{http.StatusMethodNotAllowed, "method not allowed"}, "method_not_allowed", nil)
		return
	}
	// Cheap checks first, so a bad request costs no body read.
	mt, err := mediaType(header(r.Header, keyContentType))
	if err != nil {
		fail(err, "unsupported_media_type", nil)
		return
	}
	if err := checkHeaders(r.Header); err != nil {
		fail(err, "bad_request", nil)
		return
	}
	body, held, err := h.readBody(w, r)
	defer h.done(held)
	if err == errOverloaded {
		// Closing the connection frees its goroutine and buffers too, and
		// leaves the rest of the body unread. Not logged one by one: under
		// overload that would add work where there is too much already;
		// ghas_receiver_deliveries_total counts them.
		result = "unavailable"
		w.Header().Set("Connection", "close")
		w.Header().Set("Retry-After", "1")
		http.Error(w, errOverloaded.msg, errOverloaded.status)
		return
	}
	if err != nil {
		fail(err, resultOf(err), nil)
		return
	}
	d, err := parseChecked(r.Header, mt, body, h.verifier)
	if err != nil {
		fail(err, resultOf(err), nil)
		return
	}
	verified = true
	if !Handled(d.Event) {
		result = StatusIgnored
		h.answer(w, r, d, StatusIgnored)
		return
	}
	dup, err := h.publish(r.Context(), d)
	if err != nil {
		fail(errUnavailable, "unavailable", fmt.Errorf("publish: %w", err))
		return
	}
	if dup {
		result = StatusDuplicate
	}
	h.answer(w, r, d, result)
}

func (h *Handler) answer(w http.ResponseWriter, r *http.Request, d Delivery, status string) {
	// {"delivery":"<id>","status":"<status>"}: the id is printable ASCII
	// (checkHeaders), which strconv quotes as valid JSON.
	b := make([]byte, 0, 48+len(d.ID))
	b = append(b, `{"delivery":`...)
	b = strconv.AppendQuote(b, d.ID)
	b = append(b, `,"status":"`...)
	b = append(b, status...)
	b = append(b, "\"}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(b)
	if h.logger.Enabled(r.Context(), slog.LevelDebug) {
		h.logger.LogAttrs(r.Context(), slog.LevelDebug, "webhook "+status,
			slog.String(logging.KeyDeliveryID, d.ID), slog.String(logging.KeyEvent, d.Event))
	}
}

// held is what a request holds while it is handled, from its body's first
// byte until it is answered.
type held struct {
	reserved int64              // bytes of the body budget
	pooled   *[firstBuffer]byte // the pooled first buffer, when it still holds the body
	inFlight bool               // counted against MaxInFlight
}

// done releases what a request held once it is answered: its slot, its body
// budget and its pooled first buffer (the payload was copied by the
// publish).
func (h *Handler) done(hd held) {
	if hd.inFlight {
		h.inFlight.add(-1)
	}
	h.budget.release(hd.reserved)
	if hd.pooled != nil {
		h.bufs.Put(hd.pooled)
	}
}

// publish stores d in GHAS_EVENTS and reports whether JetStream already had
// it (same Nats-Msg-Id within the duplicate window).
func (h *Handler) publish(ctx context.Context, d Delivery) (duplicate bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, h.opts.PublishTimeout)
	defer cancel()
	subject, ok := h.subjects[d.Event]
	if !ok {
		subject = stream.WebhookSubject(d.Event)
	}
	// The header map is built directly (nats headers are case-sensitive and
	// stored as given), with every value in one backing array.
	vals := [...]string{d.ID, d.Event, d.ID, h.opts.Now().UTC().Format(time.RFC3339Nano), stream.OriginWebhook, d.HookID, d.InstallationTargetID}
	hdr := make(nats.Header, len(vals))
	hdr[stream.HeaderMsgID] = vals[0:1:1]
	hdr[stream.HeaderEvent] = vals[1:2:2]
	hdr[stream.HeaderDelivery] = vals[2:3:3]
	hdr[stream.HeaderReceivedAt] = vals[3:4:4]
	hdr[stream.HeaderOrigin] = vals[4:5:5]
	if d.HookID != "" {
		hdr[stream.HeaderHookID] = vals[5:6:6]
	}
	if d.InstallationTargetID != "" {
		hdr[stream.HeaderInstallationTarget] = vals[6:7:7]
	}
	ack, err := h.pub.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: d.Payload, Header: hdr}, h.pubOpts...)
	if err != nil {
		return false, err
	}
	return ack.Duplicate, nil
}

func resultOf(err error) string {
	switch statusOf(err) {
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	case http.StatusServiceUnavailable:
		return "unavailable"
	}
	return "bad_request"
}

// eventLabel bounds the cardinality of the event label: unauthenticated
// requests could send any header value.
func eventLabel(event string, verified bool) string {
	if Handled(event) {
		return event
	}
	if verified && len(event) <= 64 && isLowerSnake(event) {
		return event
	}
	return "other"
}

func isLowerSnake(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

// logValue keeps unauthenticated header values short and printable in logs.
func logValue(s string) string {
	if printable(s) {
		return s
	}
	return strconv.QuoteToASCII(s[:min(len(s), 64)])
}
