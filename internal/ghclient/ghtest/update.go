package ghtest

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Alert updates, as GitHub documents them (the App needs write
// permission: security_events for code scanning, vulnerability_alerts for
// Dependabot, secret_scanning_alerts for secret scanning):
//
//	PATCH /repos/{owner}/{repo}/code-scanning/alerts/{number}
//	      {"state":"open"|"dismissed","dismissed_reason":"false positive"|"won't fix"|"used in tests","dismissed_comment":"…"}
//	PATCH /repos/{owner}/{repo}/dependabot/alerts/{number}
//	      {"state":"open"|"dismissed","dismissed_reason":"fix_started"|"inaccurate"|"no_bandwidth"|"not_used"|"tolerable_risk","dismissed_comment":"…"}
//	PATCH /repos/{owner}/{repo}/secret-scanning/alerts/{number}
//	      {"state":"open"|"resolved","resolution":"false_positive"|"wont_fix"|"revoked"|"used_in_tests","resolution_comment":"…"}
//
// A dismissal (resolution) needs its reason; a comment is at most 280
// characters. A valid request answers 200 with the alert as it now is; a
// body that is not JSON 400, and so is the dismissal of a dismissed code
// scanning alert ("Alert is already dismissed."); a request the schema
// refuses 422; an App
// without the write permission 403 "Resource not accessible by
// integration"; an unknown alert 404. Every accepted update is recorded
// (Updates) with the time it was made.

// maxUpdateComment is GitHub's limit on a dismissal or resolution comment.
const maxUpdateComment = 280

// AlertUpdate is one update the fake accepted.
type AlertUpdate struct {
	RepositoryID int64
	Kind         Kind
	Number       int64
	// State is the state set: open, dismissed or resolved.
	State string
	// Reason is the dismissed_reason or resolution, in the API's words.
	Reason  string
	Comment string
	At      time.Time
}

// updateReasons are each kind's closing state and its reasons.
var updateReasons = map[Kind]struct {
	closed, field, comment string
	reasons                []string
}{
	CodeScanning:   {"dismissed", "dismissed_reason", "dismissed_comment", []string{"false positive", "won't fix", "used in tests"}},
	Dependabot:     {"dismissed", "dismissed_reason", "dismissed_comment", []string{"fix_started", "inaccurate", "no_bandwidth", "not_used", "tolerable_risk"}},
	SecretScanning: {"resolved", "resolution", "resolution_comment", []string{"false_positive", "wont_fix", "revoked", "used_in_tests"}},
}

// RefuseWrites makes the App lack (refused true) or have the write
// permission of an alert kind: updates of that kind are answered 403.
func (s *Server) RefuseWrites(kind Kind, refused bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.noWrite == nil {
		s.noWrite = map[Kind]bool{}
	}
	s.noWrite[kind] = refused
}

// Updates returns every alert update accepted so far, in order.
func (s *Server) Updates() []AlertUpdate {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.updates)
}

// updateAlert serves PATCH /repos/{owner}/{repo}/{kind}/alerts/{number}.
func (s *Server) updateAlert(r *http.Request, who principal, seg []string) reply {
	kind := Kind(seg[3])
	num, err := strconv.ParseInt(seg[5], 10, 64)
	if err != nil {
		return errReply(http.StatusNotFound, "Not Found")
	}
	var body map[string]json.RawMessage
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	if err := dec.Decode(&body); err != nil || body == nil {
		return errReply(http.StatusBadRequest, "Problems parsing JSON")
	}
	u, rep := validateUpdate(kind, body)
	if rep != nil {
		return *rep
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.repoFor(who, seg[1], seg[2])
	if rs == nil {
		return errReply(http.StatusNotFound, "Not Found")
	}
	if s.noWrite[kind] {
		return errReply(http.StatusForbidden, "Resource not accessible by integration")
	}
	if rs.Archived {
		return errReply(http.StatusForbidden, "Repository was archived so is read-only.")
	}
	if rep := repoFeatureReply(rs, kind); rep != nil {
		return *rep
	}
	list := rs.alerts[kind]
	i, found := slices.BinarySearchFunc(list, num, func(a Alert, n int64) int { return cmp.Compare(a.Number, n) })
	if !found {
		return errReply(http.StatusNotFound, "No alert found for alert number "+seg[5])
	}
	a := &list[i]
	if kind == CodeScanning && a.State == "dismissed" && u.State == "dismissed" {
		// What github.com answers since 2025 (advanced-security/dismiss-alerts#173).
		return errReplyDoc(http.StatusBadRequest, "Alert is already dismissed.", "https://docs.github.com/rest/code-scanning/code-scanning#update-a-code-scanning-alert")
	}
	// GitHub's timestamps have seconds; an update is never dated before
	// the alert's last change.
	now := time.Now().UTC().Truncate(time.Second)
	if !now.After(a.UpdatedAt) {
		now = a.UpdatedAt.Add(time.Second)
	}
	applyUpdate(a, kind, u, now)
	u.RepositoryID, u.Kind, u.Number, u.At = rs.ID, kind, num, now
	s.updates = append(s.updates, u)
	s.version++
	hide := kind == SecretScanning && s.hideSecret(r)
	if a.Raw != nil {
		return jsonReply(http.StatusOK, s.renderExample(nil, kind, rs, *a, false, hide))
	}
	at := s.tpl.alerts[kind]
	tpls := at.single
	if hide {
		tpls = at.singleNoSecret
	}
	return jsonReply(http.StatusOK, s.renderAlert(nil, kind, rs, *a, tpls[a.Template%len(tpls)]))
}

// validateUpdate checks an update body against kind's schema: 422 with
// GitHub's kind of message when it does not hold.
func validateUpdate(kind Kind, body map[string]json.RawMessage) (AlertUpdate, *reply) {
	spec := updateReasons[kind]
	invalid := func(format string, args ...any) (AlertUpdate, *reply) {
		rep := errReplyDoc(http.StatusUnprocessableEntity, "Invalid request.\n\n"+fmt.Sprintf(format, args...), "https://docs.github.com/rest/"+string(kind))
		return AlertUpdate{}, &rep
	}
	str := func(field string) (string, bool, bool) {
		raw, ok := body[field]
		if !ok || bytes.Equal(raw, []byte("null")) {
			return "", false, true
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return "", true, false
		}
		return v, true, true
	}
	for field := range body {
		if field != "state" && field != spec.field && field != spec.comment {
			return invalid("%q is not a permitted key.", field)
		}
	}
	var u AlertUpdate
	state, has, ok := str("state")
	if !has || !ok {
		return invalid(`"state" wasn't supplied.`)
	}
	if state != "open" && state != spec.closed {
		return invalid("%q is not a member of the state enum (open, %s).", state, spec.closed)
	}
	u.State = state
	reason, hasReason, ok := str(spec.field)
	if !ok {
		return invalid("For 'properties/%s', it is not a string.", spec.field)
	}
	comment, _, ok := str(spec.comment)
	if !ok {
		return invalid("For 'properties/%s', it is not a string.", spec.comment)
	}
	if state == spec.closed {
		if !hasReason {
			return invalid("%q is required when state is %s.", spec.field, spec.closed)
		}
		if !slices.Contains(spec.reasons, reason) {
			return invalid("%q is not a member of the %s enum (%s).", reason, spec.field, strings.Join(spec.reasons, ", "))
		}
		if n := utf8.RuneCountInString(comment); n > maxUpdateComment {
			return invalid("%s is too long (%d characters, maximum is %d).", spec.comment, n, maxUpdateComment)
		}
		u.Reason, u.Comment = reason, comment
	}
	return u, nil
}

// applyUpdate sets the alert's state (and, for a raw example, its JSON).
func applyUpdate(a *Alert, kind Kind, u AlertUpdate, now time.Time) {
	a.State, a.UpdatedAt, a.Updated = u.State, now, true
	a.DismissedReason, a.DismissedComment, a.ResolutionComment = "", "", ""
	switch {
	case kind == SecretScanning && u.State == "resolved":
		a.Resolution, a.ResolutionComment = u.Reason, u.Comment
	case kind == SecretScanning:
		a.Resolution = ""
	case u.State == "dismissed":
		a.DismissedReason, a.DismissedComment = u.Reason, u.Comment
	}
	if a.Raw == nil {
		return
	}
	var doc map[string]any
	if json.Unmarshal(a.Raw, &doc) != nil {
		return
	}
	ts := now.Format(time.RFC3339)
	nullIf := func(set bool, v any) any {
		if set {
			return v
		}
		return nil
	}
	closed := u.State != "open"
	doc["state"], doc["updated_at"] = u.State, ts
	if kind == SecretScanning {
		doc["resolution"] = nullIf(closed, u.Reason)
		doc["resolution_comment"] = nullIf(closed, u.Comment)
		doc["resolved_at"] = nullIf(closed, ts)
	} else {
		doc["dismissed_reason"] = nullIf(closed, u.Reason)
		doc["dismissed_comment"] = nullIf(closed, u.Comment)
		doc["dismissed_at"] = nullIf(closed, ts)
		if kind == CodeScanning {
			if mri, ok := doc["most_recent_instance"].(map[string]any); ok {
				mri["state"] = u.State
			}
		}
	}
	if b, err := json.Marshal(doc); err == nil {
		a.Raw = b
	}
}

// Webhook is the webhook delivery GitHub sends after an alert changes:
// the event, its action and its payload (the alert as REST shows it, the
// repository and the installation).
type Webhook struct {
	Event, Action string
	Payload       json.RawMessage
}

// AlertWebhook builds the delivery GitHub sends for the current state of
// one alert after an update: code_scanning_alert closed_by_user or
// reopened_by_user, dependabot_alert dismissed or reopened,
// secret_scanning_alert resolved or reopened. false when there is no such
// alert.
func (s *Server) AlertWebhook(repoID int64, kind Kind, number int64) (Webhook, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.repos[repoID]
	if rs == nil {
		return Webhook{}, false
	}
	list := rs.alerts[kind]
	i, found := slices.BinarySearchFunc(list, number, func(a Alert, n int64) int { return cmp.Compare(a.Number, n) })
	if !found {
		return Webhook{}, false
	}
	a := list[i]
	var alert []byte
	if a.Raw != nil {
		alert = s.renderExample(nil, kind, rs, a, false, true)
	} else {
		tpls := s.tpl.alerts[kind].single
		if kind == SecretScanning {
			tpls = s.tpl.alerts[kind].singleNoSecret
		}
		alert = s.renderAlert(nil, kind, rs, a, tpls[a.Template%len(tpls)])
	}
	w := Webhook{}
	open := a.State == "open"
	switch kind {
	case CodeScanning:
		w.Event, w.Action = "code_scanning_alert", map[bool]string{true: "reopened_by_user", false: "closed_by_user"}[open]
	case Dependabot:
		w.Event, w.Action = "dependabot_alert", map[bool]string{true: "reopened", false: "dismissed"}[open]
	case SecretScanning:
		w.Event, w.Action = "secret_scanning_alert", map[bool]string{true: "reopened", false: "resolved"}[open]
	}
	payload, err := json.Marshal(map[string]any{
		"action": w.Action, "alert": json.RawMessage(alert), "repository": json.RawMessage(rs.full),
		"installation": map[string]any{"id": rs.InstallationID},
	})
	if err != nil {
		return Webhook{}, false
	}
	w.Payload = payload
	return w, true
}
