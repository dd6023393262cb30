package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/logging"
	"github.com/ghas-relay/ghas-relay/internal/retry"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/transform"
)

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
	// Re-scoring after a change of the priority table (rescore.go).
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.watchPriority(ctx)
	}()
	// Decisions have a consumer of their own (decisions.go).
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.runDecisions(ctx)
	}()
	restart := retry.Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second}
	_ = retry.Restart(ctx, restart, func(ctx context.Context) error { return p.consume(ctx, msgs) },
		func(err error, wait time.Duration) {
			p.logger.Warn("event consumer stopped, starting it again", logging.Err(err), slog.Duration(logging.KeyRetryIn, wait))
		})
	return nil // Restart only returns when ctx ends: consume never returns nil
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
		log().Warn("event failed, will retry", logging.Err(err), slog.Uint64(logging.KeyDelivered, md.NumDelivered))
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
	if strings.HasPrefix(s, stream.DecisionPrefix) {
		return "decision" // applied by the decisions consumer (decisions.go)
	}
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
	case stream.EventCodeScanningAlert, stream.EventDependabotAlert, stream.EventSecretScanningAlert:
		return p.alert(ctx, ev, snapshotRevision(msg), removedReason(msg))
	case stream.EventRepository:
		return p.repositoryEvent(ctx, ev) // assets.go
	case stream.EventCustomPropertyValues:
		return p.customPropertyValues(ctx, ev) // assets.go
	case stream.EventInstallation, stream.EventInstallationRepositories:
		return p.installation(ctx, ev)
	case "sarif", "codex-csv", "csv": // ghas.import.<format> (imports.go)
		return p.importFile(ctx, msg)
	}
	return "ignored", nil
}
