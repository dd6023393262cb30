package processor

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/logging"
	"github.com/ghas-relay/ghas-relay/internal/state"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/transform"
)

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
