// Package transform owns the transformation of GitHub Advanced Security
// alerts into finding documents (docs/contract.md, docs/mapping.md): the
// maps as data (one per dataset — sast, sca, secret — embedded as JSON
// defaults and seeded into KV bucket ghas_maps), the small set of named
// functions they may call, and the pure transform that applies them. The
// transform does no I/O, reads no clock and logs nothing; store.go alone
// talks to JetStream.
//
// Source paths read one source document: the repository object
// (paths without a prefix) holding the alert under codeScanningAlerts,
// dependabotAlerts or secretScanningAlerts, plus a few facts of the event
// ($action, $eventTime, …). The same paths serve webhook payloads (old
// alert.instances and current most_recent_instance shapes) and
// reconciler events wrapping REST alerts, so one alert gives one document
// whichever route it came by.
package transform

import (
	"errors"
	"fmt"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// ErrInvalid marks poison input: a payload that is not JSON, lacks the
// alert or repository, holds values of the wrong type, or belongs to an
// event the transform does not know. Retrying cannot help.
var ErrInvalid = errors.New("invalid alert event")

// Actions of the events the reconciler synthesises. Their payload is
// {"action":…, "alert":<REST alert>, "repository":<repository>,
// "installation":{"id":N}}.
const (
	// ActionReconcile carries an alert as the REST API returns it; its
	// status follows the alert's state or resolution.
	ActionReconcile = "reconcile"
	// ActionReconcileRemoved carries an alert a complete pull no longer
	// lists; its status is REMOVED.
	ActionReconcileRemoved = "reconcile_removed"
)

// Alert event names (the list of handled events is stream.HandledEvents).
const (
	EventCodeScanning   = stream.EventCodeScanningAlert
	EventDependabot     = stream.EventDependabotAlert
	EventSecretScanning = stream.EventSecretScanningAlert
)

// DatasetOf returns the dataset of an alert event name, or "".
func DatasetOf(event string) string {
	switch event {
	case EventCodeScanning:
		return finding.SAST
	case EventDependabot:
		return finding.SCA
	case EventSecretScanning:
		return finding.Secret
	}
	return ""
}

func typeName(dataset string) string {
	switch dataset {
	case finding.SAST:
		return finding.TypeSAST
	case finding.SCA:
		return finding.TypeSCA
	case finding.Secret:
		return finding.TypeSecret
	}
	return ""
}

// Event is one alert event as the processor received it.
type Event struct {
	// Name is the GitHub event: code_scanning_alert, dependabot_alert or
	// secret_scanning_alert.
	Name string
	// Payload is the raw JSON body.
	Payload []byte
	// Origin is webhook, reconcile or redelivery.
	Origin string
	// ReceivedAt is when the event entered the system; it dates a
	// webhook when neither the alert nor the action carries a timestamp,
	// and never dates a reconciler event.
	ReceivedAt time.Time
	// RuleSeverity is the rule's security_severity_level known from the
	// enrichment cache, used when the payload lacks it. Optional.
	RuleSeverity string
}

// Meta are the routing facts of an alert event.
type Meta struct {
	Dataset             string
	RepositoryID        int64
	Number              int64
	Action              string
	InstallationID      int64
	Owner, Repo         string
	RuleID              string
	HasSecuritySeverity bool
}

// Key is the finding key of the event's alert.
func (m Meta) Key() string { return finding.Key(m.Dataset, m.RepositoryID, m.Number) }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Inspect parses the routing facts of an alert event without building
// its document.
func Inspect(ev Event) (Meta, error) {
	ds := DatasetOf(ev.Name)
	if ds == "" {
		return Meta{}, invalid("unknown event %q", ev.Name)
	}
	b := &builder{root: newTrie()}
	action := b.add(mustSegs("action"))
	inst := b.add(mustSegs("installation.id"))
	repoID := b.add(mustSegs("repository.id"))
	owner := b.add(mustSegs("repository.owner.login"))
	repo := b.add(mustSegs("repository.name"))
	number := b.add(mustSegs("alert.number"))
	rule := b.add(mustSegs("alert.rule.id"))
	level := b.add(mustSegs("alert.rule.security_severity_level"))
	alertSeen, repoSeen := b.object("alert"), b.object("repository")
	s := scanner{data: ev.Payload, vals: make([]any, b.finish()), seen: make([]bool, b.nseen)}
	if err := s.run(b.root); err != nil {
		return Meta{}, invalid("%s: %v", ev.Name, err)
	}
	if !s.seen[alertSeen] {
		return Meta{}, invalid("%s: no alert object", ev.Name)
	}
	if !s.seen[repoSeen] {
		return Meta{}, invalid("%s: no repository object", ev.Name)
	}
	m := Meta{Dataset: ds}
	var ok bool
	if m.RepositoryID, ok = intOf(s.vals[repoID.slot]); !ok {
		return Meta{}, invalid("%s: repository.id: want an integer, got %s", ev.Name, kind(s.vals[repoID.slot]))
	}
	if m.Number, ok = intOf(s.vals[number.slot]); !ok {
		return Meta{}, invalid("%s: alert.number: want an integer, got %s", ev.Name, kind(s.vals[number.slot]))
	}
	m.InstallationID, _ = intOf(walk(s.vals[inst.slot], inst.rest))
	m.Action, _ = s.vals[action.slot].(string)
	m.Owner, _ = walk(s.vals[owner.slot], owner.rest).(string)
	m.Repo, _ = s.vals[repo.slot].(string)
	m.RuleID, _ = walk(s.vals[rule.slot], rule.rest).(string)
	lvl, _ := walk(s.vals[level.slot], level.rest).(string)
	m.HasSecuritySeverity = lvl != ""
	return m, nil
}

// evalCtx holds the values of the context sources for one event.
type evalCtx struct {
	action, eventTime, receivedAt, ruleSeverity, event, origin any
}

func (c *evalCtx) get(name string) any {
	switch name {
	case ctxAction:
		return c.action
	case ctxEventTime:
		return c.eventTime
	case ctxReceivedAt:
		return c.receivedAt
	case ctxRuleSeverity:
		return c.ruleSeverity
	case ctxEvent:
		return c.event
	case ctxOrigin:
		return c.origin
	}
	return nil
}

func (p *compiledPath) get(vals []any, ctx *evalCtx) any {
	if p.ctx != "" {
		return ctx.get(p.ctx)
	}
	return walk(vals[p.slot], p.rest)
}

func present(v any) bool { return v != nil && v != "" }

func optString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// eventTimeField is the alert timestamp an action sets, or "".
func eventTimeField(action string) string {
	switch action {
	case "fixed":
		return "fixed_at"
	case "dismissed", "closed_by_user":
		return "dismissed_at"
	case "auto_dismissed":
		return "auto_dismissed_at"
	case "resolved":
		return "resolved_at"
	case "created":
		return "created_at"
	}
	return ""
}

// Alert returns the finding document of one alert event. observedAt is
// now; origin is ev.Origin. Errors wrap ErrInvalid.
func (m *Maps) Alert(ev Event, now time.Time) (finding.Document, error) {
	ds := DatasetOf(ev.Name)
	if ds == "" {
		return finding.Document{}, invalid("unknown event %q", ev.Name)
	}
	mp := m.Map(ds)
	if mp == nil {
		return finding.Document{}, invalid("no %s map", ds)
	}
	p := &mp.alert
	s := scanner{data: ev.Payload, vals: make([]any, p.nslots), seen: make([]bool, p.nseen)}
	if err := s.run(p.root); err != nil {
		return finding.Document{}, invalid("%s: %v", ev.Name, err)
	}
	if !s.seen[p.alertSeen] {
		return finding.Document{}, invalid("%s: no alert object", ev.Name)
	}
	if !s.seen[p.repoSeen] {
		return finding.Document{}, invalid("%s: no repository object", ev.Name)
	}
	ctx := evalCtx{event: ev.Name, origin: optString(ev.Origin), ruleSeverity: optString(ev.RuleSeverity)}
	repoID, ok := intOf(p.repoID.get(s.vals, &ctx))
	if !ok {
		return finding.Document{}, invalid("%s: repository.id: want an integer, got %s", ev.Name, kind(p.repoID.get(s.vals, &ctx)))
	}
	number, ok := intOf(p.number.get(s.vals, &ctx))
	if !ok {
		return finding.Document{}, invalid("%s: alert.number: want an integer, got %s", ev.Name, kind(p.number.get(s.vals, &ctx)))
	}
	action, _ := p.action.get(s.vals, &ctx).(string)
	ctx.action = optString(action)
	if !ev.ReceivedAt.IsZero() {
		ctx.receivedAt = ev.ReceivedAt.UTC().Format(time.RFC3339)
	}
	// A webhook happened when it was received, unless its action carries
	// its own time. A reconciler event is GitHub's state read by a pull:
	// its receive time is the pull's clock, which says nothing about the
	// alert, so it has no event time and is dated by the alert's own
	// timestamps alone (an unchanged alert read again stays unchanged).
	if action != ActionReconcile && action != ActionReconcileRemoved {
		ctx.eventTime = ctx.receivedAt
	}
	if f := eventTimeField(action); f != "" {
		if t := p.times[f].get(s.vals, &ctx); present(t) {
			ctx.eventTime = t
		} else if f == "auto_dismissed_at" {
			if t := p.times["dismissed_at"].get(s.vals, &ctx); present(t) {
				ctx.eventTime = t
			}
		}
	}

	d := finding.Document{Findings: make([]finding.Finding, 1)}
	if err := run(p, s.vals, &ctx, &d); err != nil {
		return finding.Document{}, invalid("%s: %v", ev.Name, err)
	}
	d.SchemaVersion = finding.SchemaVersion
	d.FindingKey = finding.Key(ds, repoID, number)
	d.FindingTypeName = typeName(ds)
	d.Origin = ev.Origin
	d.ObservedAt = now.UTC().Format(time.RFC3339)
	f := &d.Findings[0]
	if action == ActionReconcileRemoved {
		f.FindingStatus = finding.StatusRemoved
	}
	if f.FindingType != nil && f.FindingType.Vulnerability != nil {
		v := f.FindingType.Vulnerability
		if v.CWEIDs == nil {
			v.CWEIDs = []string{}
		}
		if v.OWASPTop10IDs == nil {
			v.OWASPTop10IDs = []string{}
		}
		// The same weakness at the same place reported by another tool
		// (an import) gets the same key.
		if ds == finding.SAST && f.Location != nil {
			f.CorrelationKey = finding.CorrelationKey(d.VendorAssetID, f.Location.Path, f.Location.StartLine, v.CWEIDs)
		}
	}
	return d, nil
}

// Asset returns a document with only the asset part (top-level fields and
// assetDetail) filled from a repository object, for updates of stored
// findings on repository events. Errors wrap ErrInvalid.
func (m *Maps) Asset(dataset string, repository []byte, now time.Time) (finding.Document, error) {
	mp := m.Map(dataset)
	if mp == nil {
		return finding.Document{}, invalid("unknown dataset %q", dataset)
	}
	p := &mp.asset
	s := scanner{data: repository, vals: make([]any, p.nslots), seen: make([]bool, p.nseen)}
	if err := s.run(p.root); err != nil {
		return finding.Document{}, invalid("repository: %v", err)
	}
	var d finding.Document
	if err := run(p, s.vals, &evalCtx{}, &d); err != nil {
		return finding.Document{}, invalid("repository: %v", err)
	}
	d.SchemaVersion = finding.SchemaVersion
	d.FindingTypeName = typeName(dataset)
	d.ObservedAt = now.UTC().Format(time.RFC3339)
	return d, nil
}

// run evaluates the rows of a program into d.
func run(p *program, vals []any, ctx *evalCtx, d *finding.Document) error {
	var scratch [8]any
	for i := range p.rows {
		r := &p.rows[i]
		var v any
		if r.constant != nil {
			v = r.constant
		} else {
			in := scratch[:0]
			if len(r.in) > len(scratch) {
				in = make([]any, 0, len(r.in))
			}
			for _, alts := range r.in {
				var got any
				for _, a := range alts {
					if got = a.get(vals, ctx); present(got) {
						break
					}
				}
				in = append(in, got)
			}
			var err error
			if v, err = r.fn.call(r.args, in); err != nil {
				return fmt.Errorf("%s: %w", r.target, err)
			}
			clear(in)
		}
		if v == nil {
			continue
		}
		if err := r.set(d, v); err != nil {
			return fmt.Errorf("%s: %w", r.target, err)
		}
	}
	return nil
}

// scratchDocument is a scratch document for checking a constant's type.
func scratchDocument() *finding.Document { return &finding.Document{} }
