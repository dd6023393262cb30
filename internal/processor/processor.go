// Package processor owns the processing of GHAS_EVENTS: a durable
// pull consumer shared by every processor instance turns each raw event into
// finding documents, keeps the current state of every finding in KV
// ghas_findings under compare-and-set, publishes each change on
// GHAS_FINDINGS, and moves poison events to GHAS_DLQ. A message is acked only
// after all of its effects are durable.
package processor

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/scope"
	"github.com/ghas-relay/ghas-relay/internal/state"
	"github.com/ghas-relay/ghas-relay/internal/transform"
)

// ConsumerName is the durable consumer every processor instance shares.
const ConsumerName = "ghas-processor"

// MapSource gives the transformation maps in use; the KV watcher is one.
type MapSource interface {
	Current() *transform.Maps
}

// Enricher finds a code scanning rule's security severity level that a
// webhook lacks. It returns "" when unknown; it never blocks long.
type Enricher interface {
	SecuritySeverity(ctx context.Context, meta transform.Meta) (string, error)
}

// Config tunes the processor.
type Config struct {
	Workers    int           // messages processed at once by this instance
	MaxDeliver int           // deliveries before an event that keeps failing goes to the DLQ
	AckWait    time.Duration // redelivery after a processor died holding a message
	RetryDelay time.Duration // delay of a redelivery after a transient failure
	Now        func() time.Time
	// Scope decides which findings are kept and gives assets their
	// ownership and tags (assets.go); nil keeps everything.
	Scope *scope.Filter
	// Repositories resolves, through the GitHub App, a repository an
	// import names that no stored finding knows (imports.go); nil: such
	// an import fails. It does not depend on enrichment.
	Repositories RepositoryLister
	// WriteBack updates GitHub's alerts as decisions ask (WRITE_BACK);
	// nil: decisions on GitHub's alerts fail (decisions.go).
	WriteBack AlertWriter
	// WriteInterval is the least time between two alert updates of this
	// instance (WRITE_BACK_INTERVAL); zero: no pace.
	WriteInterval time.Duration
	// DecisionWorkers are the decisions applied at once; zero means 8.
	DecisionWorkers int
	// NoPriority writes documents without priority and corroboration
	// (priority.go): only for measuring what they cost.
	NoPriority bool
}

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = 8
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 10
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Metrics are the processor's metrics (docs/contract.md lists them).
type Metrics struct {
	Events    *metrics.CounterVec // ghas_processor_events_total{event,result}
	Published *metrics.CounterVec // ghas_processor_findings_published_total{type}
}

// NewMetrics registers the processor's metrics on reg.
func NewMetrics(reg *metrics.Registry) *Metrics {
	return &Metrics{
		Events:    reg.NewCounterVec("ghas_processor_events_total", "Events processed, by event and result (processed, unchanged, stale, ignored, dlq, retry).", "event", "result"),
		Published: reg.NewCounterVec("ghas_processor_findings_published_total", "Finding changes published on GHAS_FINDINGS, by type.", "type"),
	}
}

// Processor consumes GHAS_EVENTS.
type Processor struct {
	logger   *slog.Logger
	js       jetstream.JetStream
	store    *state.Store
	maps     MapSource
	enricher Enricher
	metrics  *Metrics
	cfg      Config
	decide   decider // decisions.go
	// corr holds the bucket of the correlation index once looked up
	// (correlate.go).
	corr struct {
		mu    sync.Mutex
		kv    jetstream.KeyValue
		cache indexCache
	}
}

// New returns a processor consuming events through js and keeping finding
// state in the findings bucket, written through stateJS (it may be js; a
// connection of its own lets the server read the two in parallel).
// enricher may be nil (ENRICH=never).
func New(logger *slog.Logger, js, stateJS jetstream.JetStream, findings jetstream.KeyValue, maps MapSource, enricher Enricher, m *Metrics, cfg Config) *Processor {
	cfg = cfg.withDefaults()
	p := &Processor{
		logger:   logger,
		js:       js,
		maps:     maps,
		enricher: enricher,
		metrics:  m,
		cfg:      cfg,
	}
	var finish func(string) state.Finisher
	if !cfg.NoPriority {
		finish = p.newFinisher // priority.go
	}
	p.store = state.NewFinishing(stateJS, findings, 16384, finish)
	return p
}

// ConsumerConfig is the durable consumer's configuration.
func (p *Processor) ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Description:   "ghas-relay processors: raw events to findings",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       p.cfg.AckWait,
		MaxDeliver:    -1, // we count deliveries ourselves and dead-letter with the reason
		MaxAckPending: 4096,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}
