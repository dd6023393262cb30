package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/decisions"
	"github.com/ghas-relay/ghas-relay/internal/logging"
	"github.com/ghas-relay/ghas-relay/internal/retry"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// Decisions (POST /decisions, stored on ghas.decision.<type>) are applied
// by a durable consumer of their own, ghas-decisions: an update of a GitHub
// alert is paced (WRITE_BACK_INTERVAL) and may wait out a rate limit, and
// such waits must not hold the workers of GitHub's events. The events
// consumer acks decision messages as ignored.
//
// Each decision is applied once, whatever the redeliveries: its record in
// KV ghas_decisions fixes the findings it reaches before anything is
// changed, marks a GitHub alert as sent before its update goes out, and
// holds every finding's result before the message is acked. A redelivered
// decision skips the findings with a result; for one marked sent (the
// processor died between the update and its record) it reads the alert
// first and sends nothing when the alert already is as the decision asks.

// DecisionsConsumer is the durable consumer of decisions every processor
// instance shares.
const DecisionsConsumer = "ghas-decisions"

// defaultDecisionWorkers is how many decisions one processor applies at
// once; the pace of updates, not the workers, bounds the rate.
const defaultDecisionWorkers = 8

// decider is the processor's state for decisions: the records' bucket,
// the pace of updates, the repositories' installations.
type decider struct {
	once    sync.Once
	pace    *pacer
	locator repoLocator

	mu sync.Mutex
	kv jetstream.KeyValue
}

func (p *Processor) decisionPacer() *pacer {
	p.decide.once.Do(func() { p.decide.pace = &pacer{interval: p.cfg.WriteInterval} })
	return p.decide.pace
}

func (p *Processor) decisionsKV(ctx context.Context) (jetstream.KeyValue, error) {
	p.decide.mu.Lock()
	defer p.decide.mu.Unlock()
	if p.decide.kv != nil {
		return p.decide.kv, nil
	}
	kv, err := p.js.KeyValue(ctx, stream.DecisionsBucket)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", stream.DecisionsBucket, err)
	}
	p.decide.kv = kv
	return kv, nil
}

// DecisionsConsumerConfig is the decisions consumer's configuration.
func (p *Processor) DecisionsConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       DecisionsConsumer,
		Description:   "ghas-relay processors: triage decisions to GitHub and to imported findings",
		FilterSubject: stream.DecisionPrefix + ">",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       p.cfg.AckWait,
		MaxDeliver:    -1, // counted here: a decision that keeps failing is recorded failed
		MaxAckPending: 1024,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// runDecisions consumes decisions until ctx ends; the consumer is created
// again when it goes away, like the events consumer.
func (p *Processor) runDecisions(ctx context.Context) {
	workers := p.cfg.DecisionWorkers
	if workers <= 0 {
		workers = defaultDecisionWorkers
	}
	// A message is fetched only for a free worker: one waiting in a
	// client buffer would not have its ack deadline pushed back, and once
	// redelivered two workers could hold the same decision.
	msgs := make(chan jetstream.Msg)
	free := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for range workers {
		free <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for msg := range msgs {
				// Taken is finished (or left unacked for a redelivery):
				// never half-recorded and acked.
				p.handleDecision(context.WithoutCancel(ctx), ctx, msg)
				free <- struct{}{}
			}
		}()
	}
	defer func() {
		close(msgs)
		wg.Wait()
	}()
	restart := retry.Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second}
	_ = retry.Restart(ctx, restart, func(ctx context.Context) error {
		cons, err := p.js.CreateOrUpdateConsumer(ctx, stream.EventsStream, p.DecisionsConsumerConfig())
		if err != nil {
			return fmt.Errorf("create consumer %s: %w", DecisionsConsumer, err)
		}
		for {
			// As many messages as workers are free, at least one.
			n := 0
			select {
			case <-free:
				n++
			case <-ctx.Done():
				return ctx.Err()
			}
			for more := true; more && n < workers; {
				select {
				case <-free:
					n++
				default:
					more = false
				}
			}
			batch, err := cons.Fetch(n, jetstream.FetchMaxWait(time.Second))
			if err != nil {
				for range n {
					free <- struct{}{}
				}
				return fmt.Errorf("fetch decisions: %w", err)
			}
			for msg := range batch.Messages() {
				msgs <- msg // a worker is free: taken at once
				n--
			}
			for range n {
				free <- struct{}{}
			}
			if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
				return fmt.Errorf("fetch decisions: %w", err)
			}
		}
	}, func(err error, wait time.Duration) {
		p.logger.Warn("decisions consumer stopped, starting it again", logging.Err(err), slog.Duration(logging.KeyRetryIn, wait))
	})
}

// handleDecision applies one decision message and acks it, or naks it
// for a redelivery when something may heal. work carries the effects (it
// outlives a shutdown so that a result is recorded whole); stop ends the
// wait for a pace slot or a retry, leaving the message to a redelivery.
func (p *Processor) handleDecision(work, stop context.Context, msg jetstream.Msg) {
	// The message stays ours while it waits for its pace slot or a rate
	// limit: its ack deadline is pushed back as long as it is worked on.
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(max(p.cfg.AckWait/3, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	ctx, cancel := context.WithCancel(work)
	defer cancel()
	unstop := context.AfterFunc(stop, cancel)
	defer unstop()

	d, err := decisions.FromMessage(msg.Data())
	if err != nil {
		// Not a decision the receiver wrote: kept aside with the reason.
		p.logger.Warn("decision dead-lettered", logging.Err(err))
		if derr := p.deadLetter(work, msg, "decision", err); derr != nil {
			_ = msg.NakWithDelay(p.cfg.RetryDelay)
			return
		}
		p.metrics.Events.Inc("decision", "dlq")
		_ = msg.DoubleAck(work)
		return
	}
	log := p.logger.With(slog.String(logging.KeyDecision, d.ID), slog.String(logging.KeyFindingKey, d.FindingKey))
	md, _ := msg.Metadata()
	last := md != nil && md.NumDelivered >= uint64(p.cfg.MaxDeliver)
	rec, err := p.applyDecision(ctx, d, last)
	switch {
	case err == nil:
		log.Info("decision "+rec.Status.Status, slog.String(logging.KeyAction, d.Decision), slog.String(logging.KeyBy, d.By),
			slog.Int(logging.KeyFindings, len(rec.Results)))
		p.metrics.Events.Inc("decision", rec.Status.Status)
		if aerr := msg.DoubleAck(work); aerr != nil {
			log.Warn("ack failed", logging.Err(aerr)) // recorded: a redelivery changes nothing
		}
	case ctx.Err() != nil:
		// Stopping: a redelivery, here or at another instance, goes on.
	default:
		log.Warn("decision failed, will retry", logging.Err(err))
		p.metrics.Events.Inc("decision", "retry")
		n := uint64(1)
		if md != nil {
			n = md.NumDelivered
		}
		_ = msg.NakWithDelay(p.cfg.RetryDelay * time.Duration(min(n, 30)))
	}
}

// applyDecision applies d to every finding it reaches that has no result
// yet and records each result before the next; last is the final delivery
// the processor allows, on which an error that might heal is recorded as
// the findings' failure instead. It returns the final record, or an error
// to be retried.
func (p *Processor) applyDecision(ctx context.Context, d decisions.Decision, last bool) (decisions.Record, error) {
	kv, err := p.decisionsKV(ctx)
	if err != nil {
		return decisions.Record{}, err
	}
	rec, rev, ok, err := decisions.Get(ctx, kv, d.ID)
	if err != nil {
		return decisions.Record{}, err
	}
	if !ok {
		rec = decisions.NewRecord(d) // the receiver's record was lost: ours
	}
	if rec.Final() {
		return rec, nil // applied before: a redelivery
	}
	save := func() error {
		n, err := decisions.Put(ctx, kv, rec, rev)
		if err != nil {
			return err // another instance works on it: retried later
		}
		rev = n
		return nil
	}
	if rec.Targets == nil {
		targets, repo, err := p.decisionTargets(ctx, d)
		if err != nil {
			return rec, err
		}
		rec.Targets, rec.Repository = targets, repo
		if len(targets) == 0 {
			rec.Targets = []string{}
			rec.Results = []decisions.Result{{FindingKey: d.FindingKey, Status: decisions.StatusFailed, Error: "unknown finding"}}
		}
		if err := save(); err != nil {
			return rec, err
		}
	}
	for _, key := range rec.Targets {
		if _, done := rec.Result(key); done {
			continue
		}
		res, err := p.applyTo(ctx, d, key, &rec, save)
		if err != nil {
			if !last || ctx.Err() != nil {
				return rec, err
			}
			res = decisions.Result{FindingKey: key, Status: decisions.StatusFailed, Error: err.Error()}
		}
		rec.Results = append(rec.Results, res)
		rec.Sent = slices.DeleteFunc(rec.Sent, func(k string) bool { return k == key })
		if err := save(); err != nil {
			return rec, err
		}
	}
	rec.Status.Status = decisions.StatusApplied
	for _, r := range rec.Results {
		if r.Status != decisions.StatusApplied {
			rec.Status.Status = decisions.StatusFailed
		}
	}
	rec.FinishedAt = p.cfg.Now().UTC().Format(time.RFC3339)
	if err := save(); err != nil {
		return rec, err
	}
	return rec, nil
}

// decisionTargets are the findings d reaches, the named one first, and
// the named one's repository: nil when the relay does not hold it. With
// scope correlated, every other stored finding of the repository with the
// same correlationKey follows in key order (one listing of the
// repository's keys: breadth costs only when asked for).
func (p *Processor) decisionTargets(ctx context.Context, d decisions.Decision) ([]string, string, error) {
	named, _, err := p.store.Get(ctx, d.FindingKey)
	if err != nil {
		return nil, "", err
	}
	if named == nil || named.Finding() == nil {
		return nil, "", nil
	}
	targets := []string{d.FindingKey}
	ck := named.Finding().CorrelationKey
	if d.Scope != decisions.ScopeCorrelated || ck == "" {
		return targets, named.AssetDetail.FullName, nil
	}
	_, _, repoID, _ := decisions.KindOf(d.FindingKey) // validated
	keys, err := p.store.KeysOfRepository(ctx, repoID)
	if err != nil {
		return nil, "", err
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k == d.FindingKey {
			continue
		}
		if _, _, _, err := decisions.KindOf(k); err != nil {
			continue
		}
		doc, _, err := p.store.Get(ctx, k)
		if err != nil {
			return nil, "", err
		}
		if doc == nil {
			continue
		}
		if f := doc.Finding(); f != nil && f.CorrelationKey == ck {
			targets = append(targets, k)
		}
	}
	return targets, named.AssetDetail.FullName, nil
}

// errWriteBackOff fails a decision on a GitHub alert when the processor
// does not write to GitHub.
var errWriteBackOff = errors.New("write-back is off: the processor updates GitHub's alerts only with WRITE_BACK=true (and the App's write permissions)")

// failed is a result that failed for reason.
func failed(key string, reason error) decisions.Result {
	msg := reason.Error()
	msg = strings.TrimSpace(msg)
	return decisions.Result{FindingKey: key, Status: decisions.StatusFailed, Error: msg}
}
