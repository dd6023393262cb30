// Package stream owns the NATS layout of ghas-relay (docs/contract.md): the
// streams GHAS_EVENTS, GHAS_FINDINGS and GHAS_DLQ, the KV buckets
// ghas_findings, ghas_state, ghas_maps, ghas_imports and ghas_decisions,
// their subjects and header names,
// and the connection settings every binary shares.
package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/logging"
)

// Stream and bucket names (contract: docs/contract.md).
const (
	EventsStream   = "GHAS_EVENTS"
	FindingsStream = "GHAS_FINDINGS"
	DLQStream      = "GHAS_DLQ"

	FindingsBucket = "ghas_findings"
	StateBucket    = "ghas_state"
	MapsBucket     = "ghas_maps"
	// ImportsBucket holds the status of every import (import.<id>) for
	// ImportsMaxAge.
	ImportsBucket = "ghas_imports"
	// DecisionsBucket holds the status of every triage decision
	// (decision.<id>) for DecisionsMaxAge.
	DecisionsBucket = "ghas_decisions"
)

// FindingsKVStream is the stream behind KV ghas_findings, and
// FindingsKVPrefix the subject prefix of its keys. GHAS_FINDINGS sources it.
const (
	FindingsKVStream = "KV_" + FindingsBucket
	FindingsKVPrefix = "$KV." + FindingsBucket + "."
)

// Subject prefixes (contract: docs/contract.md). A full subject appends the event
// name (events, DLQ) or type and repository id (findings).
const (
	WebhookPrefix    = "ghas.webhook."
	ReconcilePrefix  = "ghas.reconcile."
	RedeliveryPrefix = "ghas.redelivery."
	ImportPrefix     = "ghas.import."
	DecisionPrefix   = "ghas.decision."
	FindingsPrefix   = "ghas.findings."
	AssetsPrefix     = "ghas.assets.repository."
	DLQPrefix        = "ghas.dlq."
	// SinkReplayPrefix is where an operator republishes a finding for the
	// sink forwarder only (deploy/dlq-replay.sh); stored in GHAS_FINDINGS.
	SinkReplayPrefix = "ghas.sink.replay."
)

// Header names (contract: docs/contract.md).
const (
	HeaderMsgID              = jetstream.MsgIDHeader // "Nats-Msg-Id"
	HeaderEvent              = "GitHub-Event"
	HeaderDelivery           = "GitHub-Delivery"
	HeaderHookID             = "GitHub-Hook-ID"
	HeaderInstallationTarget = "GitHub-Installation-Target-ID"
	HeaderReceivedAt         = "Ghas-Received-At"
	HeaderOrigin             = "Ghas-Origin"
	HeaderError              = "Ghas-Error"
	HeaderFindingKey         = "Ghas-Finding-Key"
	HeaderInstallationID     = "Ghas-Installation-ID"
	HeaderOriginalSubject    = "Ghas-Original-Subject"
	HeaderOriginalStream     = "Ghas-Original-Stream"
	HeaderOriginalSequence   = "Ghas-Original-Sequence"
	// HeaderPreviousRevision on a finding message is the KV revision of
	// the finding this revision replaced ("0" for a new finding).
	HeaderPreviousRevision = "Ghas-Previous-Revision"
	// HeaderPreviousStatus on a finding message is the findingStatus of
	// the revision it replaced (absent for a new finding).
	HeaderPreviousStatus = "Ghas-Previous-Status"
	// HeaderContentHash on a finding message is the document's content
	// hash (finding.Document.ContentHash).
	HeaderContentHash = "Ghas-Content-Hash"
	// HeaderSnapshotRevision on a reconciler event is the last revision of
	// KV ghas_findings before the reconciler read GitHub's data for it:
	// the event replaces any stored revision up to it.
	HeaderSnapshotRevision = "Ghas-Snapshot-Revision"
	// HeaderRemovedReason on a reconciler removal event is the finding's
	// removedReason.
	HeaderRemovedReason = "Ghas-Removed-Reason"
)

// Origins of an event, in header Ghas-Origin and the finding's origin field.
const (
	OriginWebhook    = "webhook"
	OriginReconcile  = "reconcile"
	OriginRedelivery = "redelivery"
	OriginImport     = "import"
)

// Layout limits. The duplicate window is where JetStream drops a second
// publish with the same Nats-Msg-Id; the contract asks for at least 10
// minutes.
const (
	EventsDuplicateWindow   = time.Hour
	EventsMaxAge            = 7 * 24 * time.Hour
	FindingsDuplicateWindow = time.Hour
	FindingsMaxAge          = 30 * 24 * time.Hour
	DLQMaxAge               = 30 * 24 * time.Hour
	// ImportsMaxAge keeps an import's status for a day past the week the
	// contract promises.
	ImportsMaxAge = 8 * 24 * time.Hour
	// DecisionsMaxAge keeps a decision's status for five days past the 30
	// the contract promises (every update of a status starts its age
	// again).
	DecisionsMaxAge = 35 * 24 * time.Hour
)

// Token returns s made safe for use as one subject token: characters NATS
// reserves in subjects ('.', '*', '>', white space) become '_'; an empty
// string becomes "unknown".
func Token(s string) string {
	if s == "" {
		return "unknown"
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '*', '>', ' ', '\t', '\r', '\n':
			return '_'
		}
		return r
	}, s)
}

// WebhookSubject is the subject of a webhook delivery of event.
func WebhookSubject(event string) string { return WebhookPrefix + Token(event) }

// ReconcileSubject is the subject of an event the reconciler synthesised.
func ReconcileSubject(event string) string { return ReconcilePrefix + Token(event) }

// RedeliverySubject is the subject of a missed delivery the reconciler recovered.
func RedeliverySubject(event string) string { return RedeliveryPrefix + Token(event) }

// ImportSubject is the subject of an imported file of format (sarif,
// codex-csv, csv).
func ImportSubject(format string) string { return ImportPrefix + Token(format) }

// DecisionSubject is the subject of a triage decision on a finding of typ
// (sast, sca, secret).
func DecisionSubject(typ string) string { return DecisionPrefix + Token(typ) }

// DLQSubject is the dead-letter subject of a poison event of event.
func DLQSubject(event string) string { return DLQPrefix + Token(event) }

// FindingSubject is the subject of a finding of typ ("sast", "sca", "secret")
// in the repository with the given id.
func FindingSubject(typ string, repositoryID int64) string {
	return fmt.Sprintf("%s%s.%d", FindingsPrefix, Token(typ), repositoryID)
}

// AssetSubject is the subject of a repository asset update.
func AssetSubject(repositoryID int64) string {
	return fmt.Sprintf("%s%d", AssetsPrefix, repositoryID)
}

// Layout holds the settings of Ensure that differ between deployments.
type Layout struct {
	// Replicas of every stream and bucket: 1 for a single server, 3 in a
	// production cluster.
	Replicas int
	// EventsMaxBytes, FindingsMaxBytes and DLQMaxBytes limit the size of
	// GHAS_EVENTS, GHAS_FINDINGS and GHAS_DLQ; when a stream is full its
	// oldest messages go. 0 is no limit but the server's store.
	EventsMaxBytes   int64
	FindingsMaxBytes int64
	DLQMaxBytes      int64
	// CreateOnly makes Ensure and WaitEnsure create what is missing and
	// leave what exists as it is: the receiver and the reconciler never
	// change the layout (the processor, or the setup step, does).
	CreateOnly bool
	// LookOnly makes WaitEnsure create and update nothing, only wait until
	// the layout exists: a binary that only reads (the console) never
	// shapes the layout, even on a server that would let it.
	LookOnly bool
	// StartTimeout bounds how long WaitEnsure retries: a binary whose NATS
	// stays unreachable that long at start gives up (exits non-zero with
	// the cause) instead of waiting silently forever. 0: no bound.
	StartTimeout time.Duration
}

// maxBytes is n as a stream's MaxBytes: 0 (no limit) is -1 there.
func maxBytes(n int64) int64 {
	if n <= 0 {
		return -1
	}
	return n
}

// StreamConfigs returns the stream configurations of the layout.
func (l Layout) StreamConfigs() []jetstream.StreamConfig {
	r := max(l.Replicas, 1)
	return []jetstream.StreamConfig{
		{
			Name:        EventsStream,
			Description: "raw GitHub deliveries and reconciler corrections",
			Subjects:    []string{WebhookPrefix + ">", ReconcilePrefix + ">", RedeliveryPrefix + ">", ImportPrefix + ">", DecisionPrefix + ">"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    r,
			MaxAge:      EventsMaxAge,
			Duplicates:  EventsDuplicateWindow,
			Discard:     jetstream.DiscardOld,
			MaxBytes:    maxBytes(l.EventsMaxBytes),
		},
		{
			Name:        FindingsStream,
			Description: "normalized findings and repository assets, one message per change",
			// Finding messages are not published to the stream: every
			// revision written to KV ghas_findings is copied by the server,
			// in revision order, to ghas.findings.<type>.<repository_id> (so
			// the state and its message are one write), and republished on
			// that subject for core NATS subscribers.
			Subjects:  []string{AssetsPrefix + ">", SinkReplayPrefix + ">"},
			RePublish: &jetstream.RePublish{Source: FindingsPrefix + ">", Destination: FindingsPrefix + ">"},
			Sources: []*jetstream.StreamSource{{
				Name: FindingsKVStream,
				// GitHub's findings have keys <type>.<repository_id>.<number>,
				// imported ones <type>.<repository_id>.<tool>.<id>: both go
				// to ghas.findings.<type>.<repository_id>.
				SubjectTransforms: []jetstream.SubjectTransformConfig{{
					Source:      FindingsKVPrefix + "*.*.*",
					Destination: FindingsPrefix + "{{wildcard(1)}}.{{wildcard(2)}}",
				}, {
					Source:      FindingsKVPrefix + "*.*.*.*",
					Destination: FindingsPrefix + "{{wildcard(1)}}.{{wildcard(2)}}",
				}},
			}},
			Retention:  jetstream.LimitsPolicy,
			Storage:    jetstream.FileStorage,
			Replicas:   r,
			MaxAge:     FindingsMaxAge,
			Duplicates: FindingsDuplicateWindow,
			Discard:    jetstream.DiscardOld,
			MaxBytes:   maxBytes(l.FindingsMaxBytes),
		},
		{
			Name:        DLQStream,
			Description: "poison events with the failure reason in header Ghas-Error",
			Subjects:    []string{DLQPrefix + ">"},
			Retention:   jetstream.LimitsPolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    r,
			MaxAge:      DLQMaxAge,
			Duplicates:  EventsDuplicateWindow,
			MaxBytes:    maxBytes(l.DLQMaxBytes),
		},
	}
}

// BucketConfigs returns the KV bucket configurations of the layout.
func (l Layout) BucketConfigs() []jetstream.KeyValueConfig {
	r := max(l.Replicas, 1)
	return []jetstream.KeyValueConfig{
		// History 8: GHAS_FINDINGS sources the bucket's stream, and a revision
		// must still be there when the source copies it, even when a finding
		// changes several times in a burst.
		{Bucket: FindingsBucket, Description: "current state of every finding", History: 8, Storage: jetstream.FileStorage, Replicas: r},
		{Bucket: StateBucket, Description: "reconciler watermarks, ETags, run reports, rule cache", History: 1, Storage: jetstream.FileStorage, Replicas: r},
		{Bucket: MapsBucket, Description: "transformation maps", History: 5, Storage: jetstream.FileStorage, Replicas: r},
		{Bucket: ImportsBucket, Description: "status of every import", History: 1, TTL: ImportsMaxAge, Storage: jetstream.FileStorage, Replicas: r},
		{Bucket: DecisionsBucket, Description: "status of every triage decision", History: 1, TTL: DecisionsMaxAge, Storage: jetstream.FileStorage, Replicas: r},
	}
}

// Check reports whether the connection is up and every stream and bucket of
// the layout exists. It backs the /readyz endpoints.
func Check(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) error {
	if !nc.IsConnected() {
		return errors.New("nats not connected")
	}
	for _, name := range []string{EventsStream, FindingsStream, DLQStream} {
		if _, err := js.Stream(ctx, name); err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
	}
	for _, name := range []string{FindingsBucket, StateBucket, MapsBucket} {
		if _, err := js.KeyValue(ctx, name); err != nil {
			return fmt.Errorf("bucket %s: %w", name, err)
		}
	}
	return nil
}

// FindingsCaughtUp reports whether GHAS_FINDINGS has copied every revision
// of KV ghas_findings written so far (its source has no lag).
func FindingsCaughtUp(ctx context.Context, js jetstream.JetStream) (bool, error) {
	kvs, err := js.Stream(ctx, FindingsKVStream)
	if err != nil {
		return false, fmt.Errorf("stream %s: %w", FindingsKVStream, err)
	}
	kvInfo, err := kvs.Info(ctx)
	if err != nil {
		return false, fmt.Errorf("stream %s: %w", FindingsKVStream, err)
	}
	fs, err := js.Stream(ctx, FindingsStream)
	if err != nil {
		return false, fmt.Errorf("stream %s: %w", FindingsStream, err)
	}
	info, err := fs.Info(ctx)
	if err != nil {
		return false, fmt.Errorf("stream %s: %w", FindingsStream, err)
	}
	if kvInfo.State.LastSeq == 0 {
		return true, nil
	}
	for _, src := range info.Sources {
		if src.Name == FindingsKVStream {
			return src.Lag == 0 && src.Active >= 0 && sourcedUpTo(ctx, fs, kvInfo.State.LastSeq), nil
		}
	}
	return false, nil
}

// sourcedUpTo reports whether the last sourced message of fs came from
// revision seq (or later) of the KV stream, by its Nats-Stream-Source header.
func sourcedUpTo(ctx context.Context, fs jetstream.Stream, seq uint64) bool {
	n, found, err := CopiedUpTo(ctx, fs)
	return err == nil && found && n >= seq
}

// CopiedUpTo is the KV ghas_findings revision GHAS_FINDINGS (fs) copied
// last: every revision up to it was copied or dropped, and the source
// copies in revision order. found is false when GHAS_FINDINGS holds no
// finding message (a new system, or one purged).
func CopiedUpTo(ctx context.Context, fs jetstream.Stream) (seq uint64, found bool, err error) {
	m, err := fs.GetLastMsgForSubject(ctx, FindingsPrefix+">")
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("last finding message of %s: %w", FindingsStream, err)
	}
	// Header: "<stream> <seq> <filter> <transform> <original subject>"
	f := strings.Fields(m.Header.Get("Nats-Stream-Source"))
	if len(f) < 2 || f[0] != FindingsKVStream {
		return 0, false, fmt.Errorf("last finding message of %s: source %q", FindingsStream, m.Header.Get("Nats-Stream-Source"))
	}
	n, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("last finding message of %s: source %q", FindingsStream, m.Header.Get("Nats-Stream-Source"))
	}
	return n, true, nil
}

// Drain flushes what nc still holds (pending publishes and acks), then
// closes it, waiting at most timeout. A binary calls it last, after every
// component that used nc has stopped.
func Drain(logger *slog.Logger, nc *nats.Conn, timeout time.Duration) {
	if err := nc.Drain(); err != nil {
		// E.g. still reconnecting: nothing to flush.
		logger.Warn("nats drain", slog.Any(logging.KeyError, err))
		nc.Close()
		return
	}
	deadline := time.Now().Add(timeout)
	for !nc.IsClosed() {
		if time.Now().After(deadline) {
			logger.Warn("nats drain timed out")
			nc.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Drained reports whether the durable consumer has acked every message of
// GHAS_EVENTS stored so far (its ack floor is the stream's last sequence:
// a message waiting for redelivery after a nak counts as not done) and
// GHAS_FINDINGS has copied every finding revision written meanwhile.
func Drained(ctx context.Context, js jetstream.JetStream, durable string) (bool, error) {
	st, err := js.Stream(ctx, EventsStream)
	if err != nil {
		return false, fmt.Errorf("stream %s: %w", EventsStream, err)
	}
	si, err := st.Info(ctx)
	if err != nil {
		return false, fmt.Errorf("stream %s: %w", EventsStream, err)
	}
	c, err := js.Consumer(ctx, EventsStream, durable)
	if err != nil {
		return false, fmt.Errorf("consumer %s: %w", durable, err)
	}
	ci, err := c.Info(ctx)
	if err != nil {
		return false, fmt.Errorf("consumer %s: %w", durable, err)
	}
	if ci.NumPending != 0 || ci.NumAckPending != 0 || ci.AckFloor.Stream < si.State.LastSeq {
		return false, nil
	}
	return FindingsCaughtUp(ctx, js)
}
