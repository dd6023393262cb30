package decisions

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Request is one decision as a client posts it.
type Request struct {
	FindingKey string `json:"findingKey"`
	// Decision is Dismiss or Reopen.
	Decision string `json:"decision"`
	// Reason is required by Dismiss (one of the finding kind's Reasons)
	// and refused with Reopen.
	Reason  string `json:"reason,omitempty"`
	Comment string `json:"comment,omitempty"`
	// Scope is ScopeFinding (also when empty) or ScopeCorrelated.
	Scope string `json:"scope,omitempty"`
}

// FieldError is a request the API refuses: Msg says why, Field names the
// field ("reason", in a batch "decisions[3].reason"; "" for a body that
// is not JSON).
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// Parse reads a request body: one decision, or {"decisions":[...]} with
// one to MaxBatch of them. Every decision is validated (Validate); the
// first error refuses the whole body. batch reports the second form (the
// answer lists the decisions).
func Parse(body []byte) (reqs []Request, batch bool, err error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, false, &FieldError{Msg: "the body is not a JSON object: " + jsonProblem(err)}
	}
	raw, batch := top["decisions"]
	if !batch {
		r, err := decode(body, "")
		if err != nil {
			return nil, false, err
		}
		return []Request{r}, false, nil
	}
	if len(top) > 1 {
		for k := range top {
			if k != "decisions" {
				return nil, true, &FieldError{Field: k, Msg: `unknown field beside "decisions"`}
			}
		}
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || items == nil {
		return nil, true, &FieldError{Field: "decisions", Msg: "want an array of decisions"}
	}
	switch {
	case len(items) == 0:
		return nil, true, &FieldError{Field: "decisions", Msg: "no decisions"}
	case len(items) > MaxBatch:
		return nil, true, &FieldError{Field: "decisions", Msg: fmt.Sprintf("%d decisions; at most %d in one request", len(items), MaxBatch)}
	}
	reqs = make([]Request, len(items))
	for i, it := range items {
		if reqs[i], err = decode(it, fmt.Sprintf("decisions[%d]", i)); err != nil {
			return nil, true, err
		}
	}
	return reqs, true, nil
}

// decode reads and validates one decision; at is its place in a batch.
func decode(b []byte, at string) (Request, error) {
	name := func(f string) string {
		if at == "" {
			return f
		}
		if f == "" {
			return at
		}
		return at + "." + f
	}
	if t := bytes.TrimSpace(b); len(t) == 0 || t[0] != '{' {
		return Request{}, &FieldError{Field: name(""), Msg: "want a decision object"}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var r Request
	if err := dec.Decode(&r); err != nil {
		var ute *json.UnmarshalTypeError
		switch {
		case errors.As(err, &ute) && ute.Field != "":
			return Request{}, &FieldError{Field: name(ute.Field), Msg: "want a string"}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return Request{}, &FieldError{Field: name(f), Msg: "unknown field"}
		}
		return Request{}, &FieldError{Field: name(""), Msg: jsonProblem(err)}
	}
	if dec.More() {
		return Request{}, &FieldError{Field: name(""), Msg: "more than one JSON value"}
	}
	if err := r.Validate(); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			fe.Field = name(fe.Field)
		}
		return Request{}, err
	}
	return r, nil
}

// Validate checks one decision against its finding's kind: a finding key,
// a known decision and scope, a reason the kind takes for a dismissal and
// none for a reopen, a comment of at most MaxComment characters. Its
// errors are *FieldError naming the field.
func (r *Request) Validate() error {
	if r.FindingKey == "" {
		return &FieldError{Field: "findingKey", Msg: "required"}
	}
	kind, _, _, err := KindOf(r.FindingKey)
	if err != nil {
		return &FieldError{Field: "findingKey", Msg: err.Error()}
	}
	switch r.Decision {
	case Dismiss:
		if r.Reason == "" {
			return &FieldError{Field: "reason", Msg: fmt.Sprintf("a dismissal needs a reason: for %s one of %s", kind, strings.Join(Reasons(kind), ", "))}
		}
		if !ValidReason(kind, r.Reason) {
			return &FieldError{Field: "reason", Msg: fmt.Sprintf("%q is not a reason for %s: want one of %s", r.Reason, kind, strings.Join(Reasons(kind), ", "))}
		}
	case Reopen:
		if r.Reason != "" {
			return &FieldError{Field: "reason", Msg: "a reopen takes no reason"}
		}
	case "":
		return &FieldError{Field: "decision", Msg: `required: "dismiss" or "reopen"`}
	default:
		return &FieldError{Field: "decision", Msg: fmt.Sprintf(`%q is not a decision: want "dismiss" or "reopen"`, r.Decision)}
	}
	if !utf8.ValidString(r.Comment) {
		return &FieldError{Field: "comment", Msg: "not UTF-8"}
	}
	if n := utf8.RuneCountInString(r.Comment); n > MaxComment {
		return &FieldError{Field: "comment", Msg: fmt.Sprintf("%d characters; at most %d", n, MaxComment)}
	}
	switch r.Scope {
	case "":
		r.Scope = ScopeFinding
	case ScopeFinding, ScopeCorrelated:
	default:
		return &FieldError{Field: "scope", Msg: fmt.Sprintf(`%q is not a scope: want "finding" or "correlated"`, r.Scope)}
	}
	return nil
}

// jsonProblem describes a JSON syntax error with its offset.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%v (at byte %d)", se, se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "unexpected end of JSON"
	}
	return err.Error()
}
