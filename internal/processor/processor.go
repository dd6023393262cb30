// Package processor owns the processing of GHAS_EVENTS: a durable
// pull consumer shared by every processor instance turns each raw event into
// finding documents, keeps the current state of every finding in KV
// ghas_findings under compare-and-set, publishes each change on
// GHAS_FINDINGS, and moves poison events to GHAS_DLQ. A message is acked only
// after all of its effects are durable.
package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/logging"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/scope"
	"github.com/ghas-relay/ghas-relay/internal/state"
	"github.com/ghas-relay/ghas-relay/internal/stream"
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
}

// New returns a processor consuming events through js and keeping finding
// state in the findings bucket, written through stateJS (it may be js; a
// connection of its own lets the server read the two in parallel).
// enricher may be nil (ENRICH=never).
func New(logger *slog.Logger, js, stateJS jetstream.JetStream, findings jetstream.KeyValue, maps MapSource, enricher Enricher, m *Metrics, cfg Config) *Processor {
	cfg = cfg.withDefaults()
	return &Processor{
		logger:   logger,
		js:       js,
		store:    state.New(stateJS, findings, 16384),
		maps:     maps,
		enricher: enricher,
		metrics:  m,
		cfg:      cfg,
	}
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

// Run consumes until ctx ends. Messages being processed when ctx ends are
// finished or left unacked (redelivered after AckWait), never half-applied
// and acked. A consumer that goes away (deleted, a JetStream restart, a
// leader change) is created again: Run only returns when ctx ends.
func (p *Processor) Run(ctx context.Context) error {
	msgs := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	for range p.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for msg := range msgs {
				// An event taken is finished even when shutdown begins,
				// within AckWait; what is not taken stays unacked and is
				// redelivered to another instance.
				mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.AckWait)
				p.Handle(mctx, msg)
				cancel()
			}
		}()
	}
	defer func() {
		close(msgs)
		wg.Wait()
	}()
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := p.consume(ctx, msgs)
		if ctx.Err() != nil {
			break
		}
		p.logger.Warn("event consumer stopped, starting it again", logging.Err(err), slog.Duration("retry_in", delay))
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
	return nil
}

// consume creates (or updates) the durable consumer and hands its messages
// to the workers until ctx ends or the iterator fails.
func (p *Processor) consume(ctx context.Context, msgs chan<- jetstream.Msg) error {
	cons, err := p.js.CreateOrUpdateConsumer(ctx, stream.EventsStream, p.ConsumerConfig())
	if err != nil {
		return fmt.Errorf("create consumer %s: %w", ConsumerName, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * p.cfg.Workers))
	if err != nil {
		return fmt.Errorf("consume %s: %w", ConsumerName, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		msg, err := it.Next()
		if err != nil {
			return fmt.Errorf("next event: %w", err)
		}
		select {
		case msgs <- msg:
		case <-ctx.Done():
			return ctx.Err() // not taken: redelivered after AckWait
		}
	}
}

// Handle processes one message and acks, naks or dead-letters it.
func (p *Processor) Handle(ctx context.Context, msg jetstream.Msg) {
	event := eventName(msg)
	// Built only when there is something to log: this is the hot path.
	log := func() *slog.Logger {
		return p.logger.With(slog.String(logging.KeyEvent, event), slog.String(logging.KeyDeliveryID, msg.Headers().Get(stream.HeaderMsgID)))
	}
	result, err := p.process(ctx, msg, event)
	if err == nil {
		// Every effect is durable (each publish and KV write waited for its
		// ack), so a plain ack is enough: if it is lost, the redelivery
		// changes nothing.
		if aerr := msg.Ack(); aerr != nil {
			// The effects are durable and idempotent; the redelivery
			// that follows changes nothing.
			log().Warn("ack failed", logging.Err(aerr))
		}
		p.metrics.Events.Inc(event, result)
		return
	}
	if ctx.Err() != nil {
		return // out of time: leave unacked for redelivery
	}
	md, _ := msg.Metadata()
	poison := errors.Is(err, transform.ErrInvalid)
	if !poison && md != nil && md.NumDelivered < uint64(p.cfg.MaxDeliver) {
		log().Warn("event failed, will retry", logging.Err(err), slog.Uint64("delivered", md.NumDelivered))
		p.metrics.Events.Inc(event, "retry")
		_ = msg.NakWithDelay(p.cfg.RetryDelay * time.Duration(min(md.NumDelivered, 30)))
		return
	}
	if derr := p.deadLetter(ctx, msg, event, err); derr != nil {
		log().Error("dead-letter failed, will retry", logging.Err(derr))
		_ = msg.NakWithDelay(p.cfg.RetryDelay)
		return
	}
	log().Warn("event dead-lettered", logging.Err(err))
	p.metrics.Events.Inc(event, "dlq")
	if aerr := msg.DoubleAck(ctx); aerr != nil {
		log().Warn("ack failed", logging.Err(aerr))
	}
}

// deadLetter copies msg to GHAS_DLQ with the reason and waits for the ack.
func (p *Processor) deadLetter(ctx context.Context, msg jetstream.Msg, event string, reason error) error {
	out := &nats.Msg{Subject: stream.DLQSubject(event), Header: nats.Header{}, Data: msg.Data()}
	for k, v := range msg.Headers() {
		// Nats-* headers are the server's; copied into a publish they
		// would be obeyed again (an expected sequence, a message id).
		if strings.HasPrefix(k, "Nats-") {
			continue
		}
		out.Header[k] = v
	}
	out.Header.Set(stream.HeaderError, truncate(reason.Error(), 1024))
	out.Header.Set(stream.HeaderOriginalSubject, msg.Subject())
	out.Header.Set(stream.HeaderOriginalStream, stream.EventsStream)
	if md, err := msg.Metadata(); err == nil {
		out.Header.Set(stream.HeaderOriginalSequence, fmt.Sprint(md.Sequence.Stream))
		out.Header.Set(stream.HeaderMsgID, fmt.Sprintf("events:%d", md.Sequence.Stream))
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := p.js.PublishMsg(pctx, out); err != nil {
		return fmt.Errorf("publish dlq: %w", err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// eventName is the GitHub event of a message: its GitHub-Event header, else
// the last token of its subject.
func eventName(msg jetstream.Msg) string {
	if e := msg.Headers().Get(stream.HeaderEvent); e != "" {
		return e
	}
	s := msg.Subject()
	return s[strings.LastIndexByte(s, '.')+1:]
}

// origin is where a message came from, by subject.
func origin(msg jetstream.Msg) string {
	switch s := msg.Subject(); {
	case strings.HasPrefix(s, stream.ReconcilePrefix):
		return stream.OriginReconcile
	case strings.HasPrefix(s, stream.RedeliveryPrefix):
		return stream.OriginRedelivery
	}
	return stream.OriginWebhook
}

// receivedAt is when the event entered the system: header Ghas-Received-At,
// else the stream's timestamp.
func receivedAt(msg jetstream.Msg) time.Time {
	if v := msg.Headers().Get(stream.HeaderReceivedAt); v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t
		}
	}
	if md, err := msg.Metadata(); err == nil {
		return md.Timestamp
	}
	return time.Time{}
}

func (p *Processor) process(ctx context.Context, msg jetstream.Msg, event string) (string, error) {
	ev := transform.Event{Name: event, Payload: msg.Data(), Origin: origin(msg), ReceivedAt: receivedAt(msg)}
	switch event {
	case "code_scanning_alert", "dependabot_alert", "secret_scanning_alert":
		return p.alert(ctx, ev, snapshotRevision(msg), removedReason(msg))
	case "repository":
		return p.repositoryEvent(ctx, ev) // assets.go
	case "custom_property_values":
		return p.customPropertyValues(ctx, ev) // assets.go
	case "installation", "installation_repositories":
		return p.installation(ctx, ev)
	case "sarif", "codex-csv", "csv": // ghas.import.<format> (imports.go)
		return p.importFile(ctx, msg)
	}
	return "ignored", nil
}

// snapshotRevision is a reconciler event's Ghas-Snapshot-Revision: the
// last revision of ghas_findings before GitHub's data in it was read (0:
// none; the event is then ordered like any other).
func snapshotRevision(msg jetstream.Msg) uint64 {
	if origin(msg) != stream.OriginReconcile {
		return 0
	}
	n, _ := strconv.ParseUint(msg.Headers().Get(stream.HeaderSnapshotRevision), 10, 64)
	return n
}

// removedReason is the removedReason of a reconciler removal event.
func removedReason(msg jetstream.Msg) string {
	if r := msg.Headers().Get(stream.HeaderRemovedReason); r != "" {
		return r
	}
	return finding.RemovedAbsent
}

// alert applies one alert event. snap is the event's snapshot revision,
// reason the removedReason of a removal.
func (p *Processor) alert(ctx context.Context, ev transform.Event, snap uint64, reason string) (string, error) {
	dataset := transform.DatasetOf(ev.Name)
	// Routing facts are parsed apart only when needed: a removal can only
	// come from the reconciler, enrichment only concerns code scanning. A
	// plain webhook is parsed once, by the transform.
	if ev.Origin == stream.OriginReconcile || (dataset == finding.SAST && p.enricher != nil) {
		meta, err := transform.Inspect(ev)
		if err != nil {
			return "", err
		}
		if meta.Action == transform.ActionReconcileRemoved {
			o, err := p.markRemoved(ctx, meta.Key(), ev.ReceivedAt, snap, reason)
			return o.String(), err
		}
		if meta.Dataset == finding.SAST && !meta.HasSecuritySeverity && p.enricher != nil {
			level, err := p.enricher.SecuritySeverity(ctx, meta)
			if err != nil {
				// Publish with what the webhook had; the reconciler corrects it.
				p.logger.Warn("enrichment failed", logging.Err(err), slog.String(logging.KeyFindingKey, meta.Key()))
			}
			ev.RuleSeverity = level
		}
	}
	doc, err := p.maps.Current().Alert(ev, p.cfg.Now())
	if err != nil {
		return "", err
	}
	sc, err := p.scopeOf(ev, &doc)
	if err != nil {
		return "", err
	}
	o, err := p.store.Apply(ctx, doc.FindingKey, sc.wrap(func(stored *finding.Document, rev uint64) (*finding.Document, error) {
		if stored != nil && !state.Authoritative(rev, snap) && !state.Newer(&doc, stored) {
			return nil, nil
		}
		return &doc, nil
	}))
	if err != nil {
		return "", err
	}
	if o == state.Written {
		p.metrics.Published.Inc(dataset)
	}
	return sc.result(o), nil
}

// markRemoved marks one stored finding REMOVED as of at, for reason. A
// finding that is not stored is left alone: there is nothing to remove. A
// stored revision up to snapshotRev (the reconciler's proof that GitHub no
// longer has the alert) is removed whatever its date; a later one only if
// it is not dated after at.
func (p *Processor) markRemoved(ctx context.Context, key string, at time.Time, snapshotRev uint64, reason string) (state.Outcome, error) {
	now := p.cfg.Now()
	o, err := p.store.Apply(ctx, key, func(stored *finding.Document, rev uint64) (*finding.Document, error) {
		if stored == nil || stored.Finding() == nil {
			return nil, nil
		}
		if !state.Authoritative(rev, snapshotRev) && state.EventTime(stored).After(at) {
			return nil, nil // a newer event already spoke about it
		}
		d := *stored
		d.Findings = append([]finding.Finding(nil), stored.Findings...)
		f := &d.Findings[0]
		if f.FindingStatus == finding.StatusRemoved && f.RemovedReason == reason {
			return stored, nil
		}
		f.FindingStatus = finding.StatusRemoved
		f.RemovedReason = reason
		ts := at.UTC().Format(time.RFC3339)
		f.LastFoundOn = &ts
		d.ObservedAt = now.UTC().Format(time.RFC3339)
		return &d, nil
	})
	if err != nil {
		return 0, err
	}
	if o == state.Written {
		ds, _, _, _ := finding.ParseKey(key)
		p.metrics.Published.Inc(ds)
	}
	return o, nil
}

// removeRepository marks every stored finding of a repository REMOVED.
func (p *Processor) removeRepository(ctx context.Context, repositoryID int64, at time.Time, reason string) (string, error) {
	keys, err := p.store.KeysOfRepository(ctx, repositoryID)
	if err != nil {
		return "", err
	}
	result := "unchanged"
	for _, k := range keys {
		o, err := p.markRemoved(ctx, k, at, 0, reason)
		if err != nil {
			return "", err
		}
		if o == state.Written {
			result = "processed"
		}
	}
	return result, nil
}

type repoEvent struct {
	Action     string          `json:"action"`
	Repository json.RawMessage `json:"repository"`
}

type repoIdentity struct {
	ID        int64  `json:"id"`
	UpdatedAt string `json:"updated_at"`
}

func (p *Processor) repository(ctx context.Context, ev transform.Event) (string, error) {
	var re repoEvent
	if err := json.Unmarshal(ev.Payload, &re); err != nil {
		return "", fmt.Errorf("%w: repository event: %v", transform.ErrInvalid, err)
	}
	var id repoIdentity
	if len(re.Repository) == 0 || json.Unmarshal(re.Repository, &id) != nil || id.ID == 0 {
		return "", fmt.Errorf("%w: repository event without repository.id", transform.ErrInvalid)
	}
	if re.Action == "deleted" {
		return p.removeRepository(ctx, id.ID, ev.ReceivedAt, finding.RemovedRepositoryDeleted)
	}
	maps := p.maps.Current()
	asset, err := maps.Asset(finding.SAST, re.Repository, p.cfg.Now())
	if err != nil {
		return "", err
	}
	if err := p.publishAsset(ctx, id.ID, asset); err != nil {
		return "", err
	}
	keys, err := p.store.KeysOfRepository(ctx, id.ID)
	if err != nil {
		return "", err
	}
	result := "unchanged"
	for _, k := range keys {
		ds, _, _, _ := finding.ParseKey(k)
		a, err := maps.Asset(ds, re.Repository, p.cfg.Now())
		if err != nil {
			return "", err
		}
		o, err := p.store.Apply(ctx, k, func(stored *finding.Document, _ uint64) (*finding.Document, error) {
			if stored == nil {
				return nil, nil
			}
			// An older repository event never overwrites a newer asset.
			if a.AssetDetail.SourceUpdatedAt != "" && stored.AssetDetail.SourceUpdatedAt > a.AssetDetail.SourceUpdatedAt {
				return nil, nil
			}
			d := *stored
			d.ExternalAssetID = a.ExternalAssetID
			d.VendorAssetID = a.VendorAssetID
			d.AssetDetail = a.AssetDetail
			d.ObservedAt = a.ObservedAt
			d.Origin = ev.Origin
			return &d, nil
		})
		if err != nil {
			return "", err
		}
		if o == state.Written {
			result = "processed"
			p.metrics.Published.Inc(ds)
		}
	}
	return result, nil
}

// publishAsset publishes the repository asset on ghas.assets.repository.<id>.
func (p *Processor) publishAsset(ctx context.Context, repositoryID int64, asset finding.Document) error {
	asset.Findings = nil
	data, err := json.Marshal(asset)
	if err != nil {
		return fmt.Errorf("marshal asset %d: %w", repositoryID, err)
	}
	msg := &nats.Msg{Subject: stream.AssetSubject(repositoryID), Header: nats.Header{}, Data: data}
	msg.Header.Set(stream.HeaderMsgID, fmt.Sprintf("asset.%d:%s", repositoryID, asset.ContentHash()))
	if _, err := p.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish asset %d: %w", repositoryID, err)
	}
	return nil
}

type installationEvent struct {
	Action              string         `json:"action"`
	Repositories        []repoIdentity `json:"repositories"`
	RepositoriesRemoved []repoIdentity `json:"repositories_removed"`
}

// installation handles installation and installation_repositories events:
// repositories that left the installation (or the whole installation, when
// the App is uninstalled) have their findings marked REMOVED.
func (p *Processor) installation(ctx context.Context, ev transform.Event) (string, error) {
	var ie installationEvent
	if err := json.Unmarshal(ev.Payload, &ie); err != nil {
		return "", fmt.Errorf("%w: %s event: %v", transform.ErrInvalid, ev.Name, err)
	}
	var gone []repoIdentity
	switch {
	case ev.Name == "installation_repositories" && ie.Action == "removed":
		gone = ie.RepositoriesRemoved
	case ev.Name == "installation" && ie.Action == "deleted":
		gone = ie.Repositories
	default:
		return "ignored", nil
	}
	result := "unchanged"
	for _, r := range gone {
		if r.ID == 0 {
			continue
		}
		res, err := p.removeRepository(ctx, r.ID, ev.ReceivedAt, finding.RemovedRepositoryRemoved)
		if err != nil {
			return "", err
		}
		if res == "processed" {
			result = res
		}
	}
	return result, nil
}
