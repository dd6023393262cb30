// Package sink owns the HTTP sink forwarder: a durable pull
// consumer (default "ghas-sink") on stream GHAS_FINDINGS, filtered to
// ghas.findings.>, that POSTs every finding document to SINK_URL with
// headers Idempotency-Key (the message's Nats-Msg-Id) and Authorization:
// Bearer. A 2xx acks the message; 408, 429, 5xx and network errors are
// retried with exponential backoff honouring Retry-After; any other 4xx
// sends the message to GHAS_DLQ on ghas.dlq.sink. A sink outage delays
// findings and never loses them: the consumer has no delivery limit.
//
// Per-key order holds across instances: claims in KV bucket ghas_state
// (keys "sink.<durable>.<finding key>") make sure an older version of a
// finding never reaches the sink after a newer one (see claims).
//
// Config.Format ocsf (SINK_FORMAT) POSTs each revision's OCSF 1.6.0 event
// instead of the document, with the same guarantees; a document that
// cannot be converted is dead-lettered (see format.go).
package sink

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/logging"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/retry"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// DefaultDurable is the durable consumer name of the sink forwarder.
const DefaultDurable = "ghas-sink"

// DLQEvent is the event token of the sink's dead-letter subject
// (stream.DLQSubject(DLQEvent) = "ghas.dlq.sink").
const DLQEvent = "sink"

// HeaderOriginalMsgID carries the Nats-Msg-Id of the finding message on its
// dead-letter copy, whose own Nats-Msg-Id makes the DLQ publish idempotent.
const HeaderOriginalMsgID = "Ghas-Original-Msg-Id"

// Metric names.
const (
	MetricRequests = "ghas_sink_requests_total"
	MetricMessages = "ghas_sink_messages_total"
)

// Request results (label result of ghas_sink_requests_total).
const (
	ResultDelivered = "delivered" // 2xx
	ResultRetry     = "retry"     // 408, 429, 5xx or another non-2xx, non-4xx status
	ResultError     = "error"     // network error or timeout
	ResultRejected  = "rejected"  // other 4xx: dead-lettered
)

// Message outcomes (label outcome of ghas_sink_messages_total).
const (
	OutcomeDelivered  = "delivered"  // POSTed and acked
	OutcomeDLQ        = "dlq"        // dead-lettered and acked
	OutcomeSuperseded = "superseded" // a newer version owns the key: acked without POST
	OutcomeDuplicate  = "duplicate"  // delivered before, ack was lost: acked without POST
	OutcomeRequeued   = "requeued"   // nak with delay: retried later by JetStream
	OutcomeSkipped    = "skipped"    // a KV delete or purge marker, not a finding: acked
)

// Config configures a Forwarder. URL is required; zero values elsewhere
// take the defaults documented on each field.
type Config struct {
	// URL is the sink endpoint (http or https).
	URL string
	// Token is the bearer token; empty sends no Authorization header. It is
	// never logged.
	Token string
	// Durable is the consumer name; default DefaultDurable. Instances with
	// the same durable share the work.
	Durable string
	// Lanes is the number of concurrent deliveries per instance; messages of
	// one finding key always use the same lane, in stream order. Default 4.
	Lanes int
	// MaxInFlight bounds the messages one instance holds; default 64.
	MaxInFlight int
	// MaxAckPending bounds the unacknowledged messages of the consumer over
	// all instances; default 1024.
	MaxAckPending int
	// AckWait is the consumer's ack deadline; held messages are kept alive
	// with InProgress every AckWait/3. Default 30s.
	AckWait time.Duration
	// RetryFor bounds the in-process retries of one message (exponential
	// backoff from RetryInitial up to RetryMax); after it the message is
	// nak'ed with delay and JetStream redelivers it. Default 1m.
	RetryFor time.Duration
	// RetryInitial is the first backoff interval; default 500ms.
	RetryInitial time.Duration
	// RetryMax caps one backoff interval; default 15s. A Retry-After longer
	// than RetryMax is honoured by nak'ing with that delay instead of
	// sleeping.
	RetryMax time.Duration
	// MaxRetryAfter caps a Retry-After the sink asks for; default 1h.
	MaxRetryAfter time.Duration
	// RequestTimeout bounds one POST, on top of the client's own timeout;
	// default 20s.
	RequestTimeout time.Duration
	// BusyDelay is how long a message waits when another instance is
	// delivering an older version of its finding; default 1s.
	BusyDelay time.Duration
	// Lease is how long a claim on a finding key survives without renewal
	// (a crashed instance blocks the key at most this long); default 1m.
	Lease time.Duration
	// FetchWait is the longest a fetch waits for messages; default 5s.
	FetchWait time.Duration
	// Format is what the POST carries: FormatDocument (default) or
	// FormatOCSF (see format.go).
	Format string
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(n *int, v int) {
		if *n <= 0 {
			*n = v
		}
	}
	if c.Durable == "" {
		c.Durable = DefaultDurable
	}
	defInt(&c.Lanes, 4)
	defInt(&c.MaxInFlight, 64)
	defInt(&c.MaxAckPending, 1024)
	def(&c.AckWait, 30*time.Second)
	def(&c.RetryFor, time.Minute)
	def(&c.RetryInitial, 500*time.Millisecond)
	def(&c.RetryMax, 15*time.Second)
	def(&c.MaxRetryAfter, time.Hour)
	def(&c.RequestTimeout, 20*time.Second)
	def(&c.BusyDelay, time.Second)
	def(&c.Lease, time.Minute)
	def(&c.FetchWait, 5*time.Second)
	c.MaxInFlight = max(c.MaxInFlight, c.Lanes)
	// A holder renews its claim before every attempt; one attempt plus one
	// backoff interval must fit in the lease, or a live holder loses it.
	c.Lease = max(c.Lease, 2*(c.RequestTimeout+c.RetryMax))
	return c
}

// Forwarder forwards finding messages to the HTTP sink.
type Forwarder struct {
	logger   *slog.Logger
	js       jetstream.JetStream
	client   *http.Client
	cfg      Config
	url      string
	holder   string
	requests *metrics.CounterVec
	messages *metrics.CounterVec
}

// New returns a Forwarder. It registers ghas_sink_requests_total{result}
// and ghas_sink_messages_total{outcome} on reg. client should have a
// timeout; a copy of it that never follows redirects is used for every POST
// (client itself is not changed). A token that is not a valid HTTP header
// value is an error.
func New(logger *slog.Logger, js jetstream.JetStream, client *http.Client, reg *metrics.Registry, cfg Config) (*Forwarder, error) {
	if logger == nil || js == nil || client == nil || reg == nil {
		return nil, errors.New("new sink: logger, jetstream, client and registry are required")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("new sink: SINK_URL %q is not an http(s) URL", redactURL(cfg.URL))
	}
	if err := CheckToken(cfg.Token); err != nil {
		return nil, fmt.Errorf("new sink: %w", err)
	}
	if err := CheckFormat(cfg.Format); err != nil {
		return nil, fmt.Errorf("new sink: %w", err)
	}
	var id [6]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("new sink: holder id: %w", err)
	}
	cfg = cfg.withDefaults()
	return &Forwarder{
		logger:   logger.With(slog.String(logging.KeyComponent, "sink")),
		js:       js,
		client:   noRedirects(client),
		cfg:      cfg,
		url:      u.String(),
		holder:   hex.EncodeToString(id[:]),
		requests: reg.NewCounterVec(MetricRequests, "HTTP requests to the finding sink by result.", "result"),
		messages: reg.NewCounterVec(MetricMessages, "Finding messages handled by the sink forwarder by outcome.", "outcome"),
	}, nil
}

// ConsumerConfig is the durable consumer the forwarder creates or updates.
func (f *Forwarder) ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:     f.cfg.Durable,
		Description: "HTTP sink forwarder",
		// Findings, and findings an operator replays for the sink only.
		FilterSubjects: []string{stream.FindingsPrefix + ">", stream.SinkReplayPrefix + ">"},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        f.cfg.AckWait,
		MaxDeliver:     -1, // an outage must never drop a finding
		MaxAckPending:  f.cfg.MaxAckPending,
	}
}

// Run creates or updates the durable consumer (retrying until JetStream
// answers) and forwards findings until ctx ends. Messages still being
// retried when ctx ends are nak'ed, never acked. Run returns nil after a
// clean stop; it returns an error only when it cannot start.
func (f *Forwarder) Run(ctx context.Context) error {
	cons, kv, err := f.setup(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	cl := &claims{
		kv:     kv,
		prefix: "sink." + stream.Token(f.cfg.Durable) + ".",
		holder: f.holder,
		lease:  f.cfg.Lease,
		now:    time.Now,
	}
	f.logger.Info("sink forwarder started", slog.String(logging.KeyDurable, f.cfg.Durable), slog.String(logging.KeyURL, redactURL(f.url)))

	held := newHeld(f.cfg.MaxInFlight)
	lanes := make([]chan jetstream.Msg, f.cfg.Lanes)
	var wg sync.WaitGroup
	for i := range lanes {
		lanes[i] = make(chan jetstream.Msg, f.cfg.MaxInFlight)
		wg.Add(1)
		go func(ch <-chan jetstream.Msg) {
			defer wg.Done()
			for msg := range ch {
				f.handle(ctx, cl, msg)
				held.remove(msg)
			}
		}(lanes[i])
	}
	keepCtx, stopKeep := context.WithCancel(context.Background())
	var keepWG sync.WaitGroup
	keepWG.Go(func() { held.keepAlive(keepCtx, f.cfg.AckWait/3) })

	f.fetchLoop(ctx, cons, held, lanes)

	for _, ch := range lanes {
		close(ch)
	}
	wg.Wait()
	stopKeep()
	keepWG.Wait()
	f.logger.Info("sink forwarder stopped")
	return nil
}

func (f *Forwarder) setup(ctx context.Context) (jetstream.Consumer, jetstream.KeyValue, error) {
	var cons jetstream.Consumer
	var kv jetstream.KeyValue
	err := retry.Restart(ctx, retry.Policy{Initial: 200 * time.Millisecond, Max: 5 * time.Second}, func(ctx context.Context) error {
		var err error
		cons, kv, err = f.trySetup(ctx)
		return err
	}, func(err error, wait time.Duration) {
		f.logger.Warn("sink consumer not ready, retrying", logging.Err(err), slog.Duration(logging.KeyRetryIn, wait))
	})
	if err != nil {
		return nil, nil, fmt.Errorf("start sink: %w", err)
	}
	return cons, kv, nil
}

func (f *Forwarder) trySetup(ctx context.Context) (jetstream.Consumer, jetstream.KeyValue, error) {
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cons, err := f.js.CreateOrUpdateConsumer(tctx, stream.FindingsStream, f.ConsumerConfig())
	if err != nil {
		return nil, nil, fmt.Errorf("ensure consumer %s: %w", f.cfg.Durable, err)
	}
	kv, err := f.js.KeyValue(tctx, stream.StateBucket)
	if err != nil {
		return nil, nil, fmt.Errorf("open bucket %s: %w", stream.StateBucket, err)
	}
	return cons, kv, nil
}

// fetchLoop pulls as many messages as there are free slots and hands each
// to the lane of its finding key, until ctx ends.
func (f *Forwarder) fetchLoop(ctx context.Context, cons jetstream.Consumer, held *held, lanes []chan jetstream.Msg) {
	errDelay := 100 * time.Millisecond
	for ctx.Err() == nil {
		free, err := held.waitFree(ctx)
		if err != nil {
			return
		}
		fctx, cancel := context.WithTimeout(ctx, f.cfg.FetchWait)
		batch, err := cons.Fetch(free, jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				return
			}
			f.logger.Debug("sink fetch failed", logging.Err(err))
			sleep(ctx, errDelay)
			errDelay = min(errDelay*2, 2*time.Second)
			continue
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			held.add(msg)
			lanes[laneOf(findingKeyOf(msg), len(lanes))] <- msg
		}
		err = batch.Error()
		cancel()
		if err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, jetstream.ErrNoMessages) {
			f.logger.Debug("sink fetch ended", logging.Err(err))
			if n == 0 {
				sleep(ctx, errDelay)
				errDelay = min(errDelay*2, 2*time.Second)
			}
			continue
		}
		errDelay = 100 * time.Millisecond
	}
}

func laneOf(key string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// held is the set of messages this instance holds (queued or being
// delivered). keepAlive tells JetStream they are in progress, so AckWait
// never moves a message to another instance while this one is alive.
type held struct {
	mu    sync.Mutex
	msgs  map[jetstream.Msg]struct{}
	limit int
	freed chan struct{}
}

func newHeld(limit int) *held {
	return &held{msgs: map[jetstream.Msg]struct{}{}, limit: limit, freed: make(chan struct{}, 1)}
}

func (h *held) add(m jetstream.Msg) {
	h.mu.Lock()
	h.msgs[m] = struct{}{}
	h.mu.Unlock()
}

func (h *held) remove(m jetstream.Msg) {
	h.mu.Lock()
	delete(h.msgs, m)
	h.mu.Unlock()
	select {
	case h.freed <- struct{}{}:
	default:
	}
}

// waitFree waits until at least one slot is free and returns how many are.
func (h *held) waitFree(ctx context.Context) (int, error) {
	for {
		h.mu.Lock()
		free := h.limit - len(h.msgs)
		h.mu.Unlock()
		if free > 0 {
			return free, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-h.freed:
		}
	}
}

func (h *held) keepAlive(ctx context.Context, every time.Duration) {
	t := time.NewTicker(max(every, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.mu.Lock()
		msgs := make([]jetstream.Msg, 0, len(h.msgs))
		for m := range h.msgs {
			msgs = append(msgs, m)
		}
		h.mu.Unlock()
		for _, m := range msgs {
			_ = m.InProgress() // best effort: fails only for acked messages or a lost connection
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// redactURL drops user info and query from a URL for logs and errors.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "<invalid url>"
	}
	u.User = nil
	u.RawQuery = ""
	u.Fragment = ""
	return u.String()
}
