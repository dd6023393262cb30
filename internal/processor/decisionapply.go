package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/decisions"
	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ghclient"
	"github.com/ghas-relay/ghas-relay/internal/scope"
	"github.com/ghas-relay/ghas-relay/internal/state"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/transform"
)

// applyTo applies d to the finding key: a GitHub alert on GitHub, then its
// answer in KV; an imported finding in KV only. A finding that cannot
// take the decision gives a failed result (the others go on); an error is
// something that may heal, and the decision is retried.
func (p *Processor) applyTo(ctx context.Context, d decisions.Decision, key string, rec *decisions.Record, save func() error) (decisions.Result, error) {
	doc, _, err := p.store.Get(ctx, key)
	if err != nil {
		return decisions.Result{}, err
	}
	if doc == nil || doc.Finding() == nil {
		return failed(key, errors.New("unknown finding")), nil
	}
	// The token's repositories bound every finding the decision reaches,
	// whatever the receiver could check when it was posted.
	if len(d.Repositories) > 0 && !scope.MatchRepo(d.Repositories, doc.AssetDetail.FullName) {
		return failed(key, fmt.Errorf("repository %s is outside the repositories of token %s", doc.AssetDetail.FullName, d.By)), nil
	}
	kind, _, repoID, _ := decisions.KindOf(key) // a stored key of a decision target
	if kind == decisions.Imported {
		return p.applyToImported(ctx, d, key)
	}
	return p.applyToAlert(ctx, d, key, kind, repoID, rec, save)
}

// triageOf is the triage a decision leaves on a finding.
func triageOf(d decisions.Decision, appliedTo string) *finding.Triage {
	return &finding.Triage{Decision: d.Decision, Reason: d.Reason, Comment: d.Comment, By: d.By, At: d.ReceivedAt, DecisionID: d.ID, AppliedTo: appliedTo}
}

// applyToImported changes an imported finding in KV: a dismissal makes an
// ACTIVE finding DISMISSED, a reopen a DISMISSED one ACTIVE; a FIXED or
// REMOVED finding keeps its status. Every one keeps the triage, which
// later scans obey (stickyTriage).
func (p *Processor) applyToImported(ctx context.Context, d decisions.Decision, key string) (decisions.Result, error) {
	tri := triageOf(d, finding.AppliedToRelay)
	now := p.cfg.Now().UTC().Format(time.RFC3339)
	found := false
	o, err := p.store.Apply(ctx, key, func(stored *finding.Document, _ uint64) (*finding.Document, error) {
		found = stored != nil && stored.Finding() != nil
		if !found {
			return nil, nil
		}
		next := *stored
		next.Findings = slices.Clone(stored.Findings)
		f := &next.Findings[0]
		f.Triage = tri
		f.FindingStatus = decidedStatus(f.FindingStatus, d.Decision)
		next.ObservedAt = now
		return &next, nil
	})
	if err != nil {
		return decisions.Result{}, err
	}
	if !found {
		return failed(key, errors.New("unknown finding")), nil
	}
	if o == state.Written {
		p.metrics.Published.Inc(finding.SAST)
	}
	return decisions.Result{FindingKey: key, Status: decisions.StatusApplied, Error: "", AppliedTo: finding.AppliedToRelay}, nil
}

// decidedStatus is the status an imported finding of status takes from a
// decision: dismiss ACTIVE → DISMISSED, reopen DISMISSED → ACTIVE; a
// FIXED or REMOVED finding keeps its status.
func decidedStatus(status, decision string) string {
	switch {
	case decision == decisions.Dismiss && status == finding.StatusActive:
		return finding.StatusDismissed
	case decision == decisions.Reopen && status == finding.StatusDismissed:
		return finding.StatusActive
	}
	return status
}

// stickyTriage applies a stored triage to the next document of an
// imported finding that a scan lists: the triage is kept, and a listed
// finding the relay dismissed stays DISMISSED (a scan that lists it as
// FIXED is left FIXED). A reopen takes the relay's dismissal back: the
// scan's own status applies.
func stickyTriage(next, stored *finding.Document) *finding.Document {
	if next == nil || stored == nil || stored.Finding() == nil || stored.Finding().Triage == nil || next.Finding() == nil {
		return next
	}
	tri := stored.Finding().Triage
	nf := next.Finding()
	nf.Triage = tri
	if tri.Decision == decisions.Dismiss && nf.FindingStatus == finding.StatusActive {
		nf.FindingStatus = finding.StatusDismissed
	}
	return next
}

// carryTriage gives next, built from an event, the triage of the
// document it replaces: GitHub's events know nothing of the relay's
// decisions.
func carryTriage(next, stored *finding.Document) {
	nf := next.Finding()
	if nf == nil {
		return
	}
	nf.Triage = nil
	if stored != nil && stored.Finding() != nil {
		nf.Triage = stored.Finding().Triage
	}
}

// applyToAlert updates a GitHub alert as the decision asks, paced, and
// stores GitHub's answer at once as a REST read with the triage. GitHub's
// refusals (403 without the write permission, 404, 422) fail the finding
// with GitHub's message; errors that may heal (5xx and network errors
// that outlived the client's retries, rate limits) are retried with the
// decision. An alert marked sent in the record (the processor died after
// sending its update) is read first and not updated again when it already
// is as asked.
func (p *Processor) applyToAlert(ctx context.Context, d decisions.Decision, key string, kind decisions.Kind, repoID int64,
	rec *decisions.Record, save func() error) (decisions.Result, error) {
	w := p.cfg.WriteBack
	if w == nil {
		return failed(key, errWriteBackOff), nil
	}
	u, err := wantedUpdate(kind, d)
	if err != nil {
		return failed(key, err), nil // a correlated finding of another type
	}
	_, _, number, err := finding.ParseKey(key)
	if err != nil {
		return failed(key, err), nil
	}
	loc, ok, err := p.decide.locator.find(ctx, w, repoID)
	if err != nil {
		return decisions.Result{}, err
	}
	if !ok {
		return failed(key, fmt.Errorf("repository %d is in none of the App's installations", repoID)), nil
	}
	gk := kindOf(kind)
	// What KV holds up to now was written before GitHub answers: the
	// answer replaces it whatever their dates (state.Authoritative).
	snap, err := p.store.LastRevision(ctx)
	if err != nil {
		return decisions.Result{}, err
	}
	var answer json.RawMessage
	if slices.Contains(rec.Sent, key) {
		cur, err := w.GetAlert(ctx, loc.installation, gk, loc.owner, loc.name, number)
		if ref := refusal(err); ref != nil {
			return failed(key, ref), nil
		}
		if err != nil {
			return decisions.Result{}, err
		}
		if hasUpdate(cur, u) {
			answer = cur // the update sent before the crash took effect
		}
	} else {
		rec.Sent = append(rec.Sent, key)
		if err := save(); err != nil {
			return decisions.Result{}, err
		}
	}
	if answer == nil {
		if err := p.decisionPacer().wait(ctx); err != nil {
			return decisions.Result{}, err
		}
		answer, err = w.UpdateAlert(ctx, loc.installation, gk, loc.owner, loc.name, number, u)
		if ref := refusal(err); ref != nil {
			if ghclient.StatusCode(err) != http.StatusBadRequest {
				return failed(key, ref), nil
			}
			// GitHub refuses to set a state the alert has ("Alert is
			// already dismissed."): what it holds is then what was asked.
			cur, gerr := w.GetAlert(ctx, loc.installation, gk, loc.owner, loc.name, number)
			if gerr != nil || stateOf(cur) != u.State {
				return failed(key, ref), nil
			}
			answer, err = cur, nil
		}
		if err != nil {
			return decisions.Result{}, err
		}
	}
	if err := p.storeAlertRead(ctx, gk, loc, answer, snap, triageOf(d, finding.AppliedToGitHub)); err != nil {
		return decisions.Result{}, err
	}
	return decisions.Result{FindingKey: key, Status: decisions.StatusApplied, Error: "", AppliedTo: finding.AppliedToGitHub}, nil
}

// storeAlertRead stores an alert as GitHub answered it, as a REST read of
// the reconciler would be (the same transform, scope and order; the
// stored revisions up to snap are older than the answer), with tri. A
// change stored after snap and dated after the answer is kept, with tri.
func (p *Processor) storeAlertRead(ctx context.Context, kind ghclient.Kind, loc repoLocation, alert json.RawMessage, snap uint64, tri *finding.Triage) error {
	payload, err := json.Marshal(map[string]any{
		"action": transform.ActionReconcile, "alert": alert, "repository": loc.raw,
		"installation": map[string]any{"id": loc.installation},
	})
	if err != nil {
		return err
	}
	now := p.cfg.Now()
	ev := transform.Event{Name: eventOfKind(kind), Payload: payload, Origin: stream.OriginReconcile, ReceivedAt: now}
	doc, err := p.maps.Current().Alert(ev, now)
	if err != nil {
		return fmt.Errorf("GitHub's answer: %w", err)
	}
	sc, err := p.scopeOf(ev, &doc)
	if err != nil {
		return fmt.Errorf("GitHub's answer: %w", err)
	}
	o, err := p.store.Apply(ctx, doc.FindingKey, sc.wrap(func(stored *finding.Document, rev uint64) (*finding.Document, error) {
		base := &doc
		if stored != nil && stored.Finding() != nil && !state.Authoritative(rev, snap) && !state.Newer(&doc, stored) {
			base = stored
		}
		next := *base
		next.Findings = slices.Clone(base.Findings)
		next.Findings[0].Triage = tri
		return &next, nil
	}))
	if err != nil {
		return err
	}
	if o == state.Written {
		ds, _, _, _ := finding.ParseKey(doc.FindingKey)
		p.metrics.Published.Inc(ds)
	}
	return nil
}
