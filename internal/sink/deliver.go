package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/logging"
	"github.com/ghas-relay/ghas-relay/internal/retry"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// class is how a sink answer is handled.
type class int

const (
	classDelivered class = iota // 2xx
	classTransient              // retry: 408, 429, 5xx, anything not 2xx or 4xx, network errors
	classPermanent              // dead-letter: other 4xx
)

// classify maps an HTTP status to its handling. Only 4xx other than 408
// and 429 are permanent; an unexpected 1xx or 3xx is retried rather than
// dead-lettered, because losing a finding is worse than delaying it. A 3xx
// reaches classify because the client never follows redirects (see
// noRedirects): it is a failed attempt, never a delivery.
func classify(status int) class {
	switch {
	case status >= 200 && status < 300:
		return classDelivered
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests:
		return classTransient
	case status >= 400 && status < 500:
		return classPermanent
	}
	return classTransient
}

// result is the outcome of one POST.
type result struct {
	class      class
	status     int           // 0 for a network error
	retryAfter time.Duration // from Retry-After, 0 if absent
	detail     string        // short reason for logs and Ghas-Error
}

// findingKeyOf is the finding key of a message: header Ghas-Finding-Key,
// else the document's findingKey, else "".
func findingKeyOf(msg jetstream.Msg) string {
	if k := msg.Headers().Get(stream.HeaderFindingKey); k != "" {
		return k
	}
	var doc struct {
		FindingKey string `json:"findingKey"`
	}
	if json.Unmarshal(msg.Data(), &doc) == nil {
		return doc.FindingKey
	}
	return ""
}

// handle delivers one message and settles it with exactly one of ack or
// nak. It never acks a message the sink did not accept, except one it
// dead-lettered or one a newer version supersedes.
func (f *Forwarder) handle(ctx context.Context, cl *claims, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		f.logger.Error("sink: message without metadata", logging.Err(err))
		_ = msg.Term() // not a JetStream message: nothing to redeliver
		return
	}
	// A delete or purge of a KV ghas_findings key (by an operator; the
	// processor never deletes) is copied to GHAS_FINDINGS like any revision,
	// with an empty body: it is not a finding.
	if msg.Headers().Get("KV-Operation") != "" {
		f.settle(f.logger, msg, OutcomeSkipped)
		return
	}
	key := findingKeyOf(msg)
	log := f.logger.With(slog.String(logging.KeyFindingKey, key), slog.Uint64(logging.KeyStreamSeq, meta.Sequence.Stream),
		slog.Uint64(logging.KeyDelivered, meta.NumDelivered))
	if ctx.Err() != nil {
		f.requeue(msg, 0)
		return
	}
	if key == "" {
		f.deadLetter(ctx, log, nil, msg, meta, nil, "message has no Ghas-Finding-Key header and no findingKey")
		return
	}

	c, v, err := cl.acquire(ctx, key, meta.Sequence.Stream)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			log.Warn("sink: claim failed, requeued", logging.Err(err))
		}
		f.requeue(msg, f.cfg.BusyDelay)
		return
	case v == verdictSuperseded:
		log.Debug("sink: superseded by a newer version, not sent")
		f.settle(log, msg, OutcomeSuperseded)
		return
	case v == verdictDelivered:
		log.Debug("sink: delivered before, not sent again")
		f.settle(log, msg, OutcomeDuplicate)
		return
	case v == verdictBusy:
		log.Debug("sink: an older version is being delivered elsewhere, waiting")
		f.requeue(msg, f.cfg.BusyDelay)
		return
	}
	body, err := f.body(msg, meta)
	if err != nil {
		// The same message never converts: a poison message.
		f.deadLetter(ctx, log, cl, msg, meta, &c, err.Error())
		return
	}

	// In-process retry, bounded by RetryFor: the POST is idempotent
	// (Idempotency-Key), and retrying here keeps the message at the head of
	// its lane, so later versions of the same finding wait behind it. After
	// RetryFor, or for a Retry-After longer than RetryMax, JetStream takes
	// over (NakWithDelay) and the lane moves on; the claim then keeps an
	// older version from overwriting a newer one.
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = f.cfg.RetryInitial
	b.MaxInterval = f.cfg.RetryMax
	b.MaxElapsedTime = f.cfg.RetryFor
	b.Reset()
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			ok, err := cl.renew(ctx, &c)
			if err != nil || !ok {
				// Lost the key (lease ran out while the sink kept failing),
				// or could not renew it (shutdown, NATS away): let JetStream
				// bring the message back to decide again. A claim still
				// held is given up, or a restarted forwarder would wait a
				// whole lease for this key.
				if err != nil {
					f.release(cl, c)
				}
				log.Debug("sink: claim lost, requeued", logging.Err(err))
				f.requeue(msg, 0)
				return
			}
		}
		res := f.post(ctx, msg, key, body)
		switch res.class {
		case classDelivered:
			f.finish(cl, c, log)
			f.settle(log, msg, OutcomeDelivered)
			if attempt > 1 || meta.NumDelivered > 1 {
				log.Info("sink: delivered after retries", slog.Int(logging.KeyAttempts, attempt))
			}
			return
		case classPermanent:
			f.deadLetter(ctx, log, cl, msg, meta, &c, res.detail)
			return
		}
		if ctx.Err() != nil {
			f.release(cl, c)
			f.requeue(msg, 0)
			return
		}
		next := b.NextBackOff()
		wait := max(next, res.retryAfter)
		if next == backoff.Stop || wait > f.cfg.RetryMax {
			delay := max(res.retryAfter, f.cfg.RetryMax)
			if next != backoff.Stop {
				delay = wait
			}
			log.Warn("sink: not accepted, requeued", slog.String(logging.KeyReason, res.detail),
				slog.Int(logging.KeyAttempts, attempt), slog.Duration(logging.KeyRetryIn, delay))
			f.release(cl, c)
			f.requeue(msg, delay)
			return
		}
		log.Debug("sink: not accepted, retrying", slog.String(logging.KeyReason, res.detail), slog.Duration(logging.KeyRetryIn, wait))
		if !sleep(ctx, wait) {
			f.release(cl, c)
			f.requeue(msg, 0)
			return
		}
	}
}

// post sends one POST of body (the message's, in the configured format)
// to the sink.
func (f *Forwarder) post(ctx context.Context, msg jetstream.Msg, key string, body []byte) result {
	rctx, cancel := context.WithTimeout(ctx, f.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, f.url, bytes.NewReader(body))
	if err != nil {
		// The URL was validated in New; nothing a retry would fix, but
		// never drop a finding for our own bug either.
		f.requests.Inc(ResultError)
		return result{class: classTransient, detail: "build request: " + err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ghas-relay-sink")
	if id := msg.Headers().Get(stream.HeaderMsgID); id != "" {
		req.Header.Set("Idempotency-Key", id)
	}
	req.Header.Set(stream.HeaderFindingKey, key)
	if f.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+f.cfg.Token)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		f.requests.Inc(ResultError)
		return result{class: classTransient, detail: "post: " + scrubError(err, f.url)}
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // reuse the connection
	res := result{
		class:      classify(resp.StatusCode),
		status:     resp.StatusCode,
		retryAfter: min(retry.ParseAfter(resp.Header.Get("Retry-After"), time.Now()), f.cfg.MaxRetryAfter),
		detail:     "sink answered " + resp.Status,
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		res.detail += " (redirects are not followed)"
	}
	switch res.class {
	case classDelivered:
		f.requests.Inc(ResultDelivered)
	case classPermanent:
		f.requests.Inc(ResultRejected)
		if s := strings.TrimSpace(strings.ToValidUTF8(string(snippet), "")); s != "" {
			res.detail += ": " + strings.Join(strings.Fields(s), " ")
		}
	default:
		f.requests.Inc(ResultRetry)
	}
	return res
}

// deadLetter publishes the message to ghas.dlq.sink with the reason, waits
// for the stream's ack, then acks the original. If the DLQ publish fails
// the original is nak'ed, never acked.
func (f *Forwarder) deadLetter(ctx context.Context, log *slog.Logger, cl *claims, msg jetstream.Msg, meta *jetstream.MsgMetadata, c *claim, reason string) {
	out := nats.NewMsg(stream.DLQSubject(DLQEvent))
	for k, vs := range msg.Headers() {
		// Nats-* headers are the server's (a stored KV revision keeps its
		// Nats-Expected-Last-Subject-Sequence, for one): copied into a
		// publish they would be obeyed again.
		if strings.HasPrefix(k, "Nats-") {
			continue
		}
		for _, v := range vs {
			out.Header.Add(k, v)
		}
	}
	if id := msg.Headers().Get(stream.HeaderMsgID); id != "" {
		out.Header.Set(HeaderOriginalMsgID, id)
	}
	// One DLQ copy per original message, however often this is retried.
	out.Header.Set(stream.HeaderMsgID, fmt.Sprintf("sink:%s:%d", meta.Stream, meta.Sequence.Stream))
	out.Header.Set(stream.HeaderError, reason)
	out.Header.Set(stream.HeaderOriginalSubject, msg.Subject())
	out.Header.Set(stream.HeaderOriginalStream, meta.Stream)
	out.Header.Set(stream.HeaderOriginalSequence, strconv.FormatUint(meta.Sequence.Stream, 10))
	out.Data = msg.Data()

	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := f.js.PublishMsg(pctx, out); err != nil {
		log.Error("sink: dead-letter publish failed, requeued", logging.Err(err), slog.String(logging.KeyReason, reason))
		if c != nil {
			f.release(cl, *c)
		}
		f.requeue(msg, f.cfg.BusyDelay)
		return
	}
	log.Warn("sink: rejected, dead-lettered", slog.String(logging.KeyReason, reason), slog.String(logging.KeySubject, stream.DLQSubject(DLQEvent)))
	if c != nil {
		f.finish(cl, *c, log)
	}
	f.settle(log, msg, OutcomeDLQ)
}

// finish marks a claim done after the message was delivered or
// dead-lettered. It runs even when ctx has ended: the POST happened.
func (f *Forwarder) finish(cl *claims, c claim, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.done(ctx, c); err != nil {
		// Harmless: the claim's lease runs out, and a redelivered copy is
		// POSTed again under the same Idempotency-Key.
		log.Warn("sink: marking claim done failed", logging.Err(err))
	}
}

// release gives a claim up so that the key is free at once, also when
// ctx has ended (shutdown).
func (f *Forwarder) release(cl *claims, c claim) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.release(ctx, c); err != nil {
		f.logger.Debug("sink: releasing claim failed; its lease runs out", logging.Err(err))
	}
}

// settle acks a message that needs no further delivery.
func (f *Forwarder) settle(log *slog.Logger, msg jetstream.Msg, outcome string) {
	if err := msg.Ack(); err != nil {
		// JetStream redelivers it; the claim then acks it without a POST.
		log.Warn("sink: ack failed", logging.Err(err))
	}
	f.messages.Inc(outcome)
}

// requeue hands a message back to JetStream for redelivery after delay.
func (f *Forwarder) requeue(msg jetstream.Msg, delay time.Duration) {
	var err error
	if delay > 0 {
		err = msg.NakWithDelay(delay)
	} else {
		err = msg.Nak()
	}
	if err != nil {
		f.logger.Debug("sink: nak failed; AckWait redelivers", logging.Err(err))
	}
	f.messages.Inc(OutcomeRequeued)
}

// noRedirects returns a copy of client whose requests never follow a
// redirect: a 3xx comes back as the response. Following one would send the
// finding, and the bearer token, to a host other than SINK_URL's.
func noRedirects(client *http.Client) *http.Client {
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// CheckToken refuses a bearer token that cannot be sent as an HTTP header
// value: control characters (a newline would split the header) and DEL.
func CheckToken(tok string) error {
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c < ' ' || c == 0x7f {
			return fmt.Errorf("token has a control character at byte %d; it is not a valid HTTP header value", i)
		}
	}
	return nil
}

// scrubError is a network error's text without the URL (which may carry
// credentials in user info or query).
func scrubError(err error, u string) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner.Error()
		}
	}
	return strings.ReplaceAll(err.Error(), u, redactURL(u))
}
