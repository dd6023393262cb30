package transform

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// A function turns the values of a row's sources (nil where absent) into
// the value of its target (nil for absent).
type function struct {
	minIn, maxIn int      // number of sources; maxIn < 0: any
	needArgs     []string // args that must be present
	call         func(args map[string]string, in []any) (any, error)
	doc          string
}

// functionNames lists the named functions in the order docs show them.
func functionNames() []string {
	return []string{"", "severity", "status", "secretStatus", "secretState", "cweFromTags",
		"detectionURL", "template", "lookup", "visibility", "date", "nonZero", "firstElseLatest",
		"number", "ifTrue"}
}

// lookupFunction returns the named function; "" is the identity.
func lookupFunction(name string) (function, bool) {
	switch name {
	case "":
		return function{minIn: 1, maxIn: 1, doc: "the source value as it is",
			call: func(_ map[string]string, in []any) (any, error) { return in[0], nil }}, true
	case "severity":
		return function{minIn: 1, maxIn: -1, doc: "the first source with a known level, mapped critical/high/medium|moderate/low and error→HIGH, warning→MEDIUM, note→LOW, none→INFO; nothing known → INFO",
			call: severityFunc}, true
	case "status":
		return function{minIn: 2, maxIn: 2, doc: "[state, $action]: open→ACTIVE, fixed→FIXED, dismissed|auto_dismissed→DISMISSED; a null or unknown state takes it from the action",
			call: statusFunc}, true
	case "secretStatus":
		return function{minIn: 2, maxIn: 2, doc: "[resolution, $action]: no resolution→ACTIVE, revoked→FIXED, any other→DISMISSED",
			call: secretStatusFunc}, true
	case "secretState":
		return function{minIn: 2, maxIn: 2, doc: "[state, resolution]: the state, else open without a resolution and resolved with one (webhooks carry no state)",
			call: secretStateFunc}, true
	case "cweFromTags":
		return function{minIn: 1, maxIn: 1, doc: "tags external/cwe/cwe-NNN → CWE-NNN, leading zeros dropped, in tag order, each once; no tags → []",
			call: cweFunc}, true
	case "detectionURL":
		return function{minIn: 3, maxIn: 5, doc: "[repo html_url, branch, path, start, end] → <html_url>/blob/<branch>/<path>#L<start>-L<end>",
			call: detectionURLFunc}, true
	case "template":
		return function{minIn: 1, maxIn: -1, needArgs: []string{"format"}, doc: "args.format with {0}, {1}, … replaced by the sources; absent if any source is",
			call: templateFunc}, true
	case "lookup":
		return function{minIn: 1, maxIn: 1, doc: "args maps the source value to the result; \"*\" is the default, also for an absent source; no match and no default → absent",
			call: lookupFunc}, true
	case "visibility":
		return function{minIn: 2, maxIn: 2, doc: "[visibility, private]: the visibility, else private/public from the flag",
			call: visibilityFunc}, true
	case "date":
		return function{minIn: 1, maxIn: 1, doc: "an RFC 3339 string as it is; a Unix time number (older payloads) → RFC 3339 UTC",
			call: dateFunc}, true
	case "nonZero":
		return function{minIn: 1, maxIn: 1, doc: "a number other than 0, else absent (GitHub writes score 0 for \"no score\")",
			call: nonZeroFunc}, true
	case "firstElseLatest":
		return function{minIn: 2, maxIn: -1, doc: "[first, others…]: the first source when present, else the latest of the others (RFC 3339 times, compared as instants; absent ones skipped); none → absent",
			call: firstElseLatestFunc}, true
	case "number":
		return function{minIn: 1, maxIn: 1, doc: "a number as it is; a string holding a number (GitHub writes some EPSS percentiles as \"0.16001e0\") → that number",
			call: numberFunc}, true
	case "ifTrue":
		return function{minIn: 2, maxIn: 2, doc: "[flag, value]: the value when the flag is true, else absent",
			call: ifTrueFunc}, true
	}
	return function{}, false
}

// severityLevel maps one GitHub level to a finding severity, or "".
func severityLevel(v any) string {
	s, _ := v.(string)
	switch strings.ToLower(s) {
	case "critical":
		return finding.SeverityCritical
	case "high", "error":
		return finding.SeverityHigh
	case "medium", "moderate", "warning":
		return finding.SeverityMedium
	case "low", "note":
		return finding.SeverityLow
	case "none":
		return finding.SeverityInfo
	}
	return ""
}

func severityFunc(_ map[string]string, in []any) (any, error) {
	for _, v := range in {
		if s := severityLevel(v); s != "" {
			return s, nil
		}
	}
	return finding.SeverityInfo, nil
}

func statusFunc(_ map[string]string, in []any) (any, error) {
	state, _ := in[0].(string)
	switch state {
	case "open":
		return finding.StatusActive, nil
	case "fixed":
		return finding.StatusFixed, nil
	case "dismissed", "auto_dismissed":
		return finding.StatusDismissed, nil
	}
	action, _ := in[1].(string)
	switch action {
	case "fixed":
		return finding.StatusFixed, nil
	case "closed_by_user", "dismissed", "auto_dismissed":
		return finding.StatusDismissed, nil
	case ActionReconcileRemoved:
		return finding.StatusRemoved, nil
	}
	// created, reopened, reopened_by_user, appeared_in_branch,
	// auto_reopened, reintroduced and actions GitHub adds later: the
	// alert exists and nothing says it was closed.
	return finding.StatusActive, nil
}

func secretStatusFunc(_ map[string]string, in []any) (any, error) {
	if action, _ := in[1].(string); action == ActionReconcileRemoved {
		return finding.StatusRemoved, nil
	}
	switch r, _ := in[0].(string); r {
	case "":
		return finding.StatusActive, nil
	case "revoked":
		return finding.StatusFixed, nil
	}
	return finding.StatusDismissed, nil
}

func secretStateFunc(_ map[string]string, in []any) (any, error) {
	if s, _ := in[0].(string); s != "" {
		return s, nil
	}
	if r, _ := in[1].(string); r != "" {
		return "resolved", nil
	}
	return "open", nil
}

func cweFunc(_ map[string]string, in []any) (any, error) {
	tags, ok := in[0].([]any)
	if !ok && in[0] != nil {
		return nil, fmt.Errorf("cweFromTags: want an array, got %s", kind(in[0]))
	}
	out := make([]any, 0, 2)
	for _, t := range tags {
		id := cweOfTag(t)
		if id == "" || containsAny(out, id) {
			continue
		}
		out = append(out, id)
	}
	return out, nil
}

// cweOfTag turns external/cwe/cwe-022 into CWE-22, or returns "".
func cweOfTag(t any) string {
	s, _ := t.(string)
	const prefix = "external/cwe/cwe-"
	if len(s) <= len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return ""
	}
	digits := s[len(prefix):]
	for _, c := range digits {
		if c < '0' || c > '9' {
			return ""
		}
	}
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		digits = "0"
	}
	return "CWE-" + digits
}

func containsAny(a []any, s string) bool {
	for _, v := range a {
		if v == s {
			return true
		}
	}
	return false
}

func detectionURLFunc(_ map[string]string, in []any) (any, error) {
	base, _ := in[0].(string)
	branch, _ := in[1].(string)
	p, _ := in[2].(string)
	p = strings.TrimLeft(p, "/")
	if base == "" || branch == "" || p == "" {
		return nil, nil
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	u := strings.TrimRight(base, "/") + "/blob/" + url.PathEscape(branch) + "/" + strings.Join(segs, "/")
	var start, end int64
	if len(in) > 3 {
		start, _ = intOf(in[3])
	}
	if len(in) > 4 {
		end, _ = intOf(in[4])
	}
	switch {
	case start > 0 && end > start:
		u += "#L" + strconv.FormatInt(start, 10) + "-L" + strconv.FormatInt(end, 10)
	case start > 0:
		u += "#L" + strconv.FormatInt(start, 10) + "-L" + strconv.FormatInt(start, 10)
	}
	return u, nil
}

func templateFunc(args map[string]string, in []any) (any, error) {
	format := args["format"]
	for i, v := range in {
		if v == nil {
			return nil, nil
		}
		s, err := asString(v)
		if err != nil {
			return nil, fmt.Errorf("template: %w", err)
		}
		if s == "" {
			return nil, nil
		}
		format = strings.ReplaceAll(format, "{"+strconv.Itoa(i)+"}", s)
	}
	return format, nil
}

func lookupFunc(args map[string]string, in []any) (any, error) {
	if in[0] == nil {
		if r, ok := args["*"]; ok {
			return r, nil
		}
		return nil, nil
	}
	s, err := asString(in[0])
	if err != nil {
		return nil, fmt.Errorf("lookup: %w", err)
	}
	if r, ok := args[s]; ok {
		return r, nil
	}
	if r, ok := args["*"]; ok {
		return r, nil
	}
	return nil, nil
}

func visibilityFunc(_ map[string]string, in []any) (any, error) {
	if s, _ := in[0].(string); s != "" {
		return s, nil
	}
	switch in[1] {
	case true:
		return "private", nil
	case false:
		return "public", nil
	}
	return nil, nil
}

func dateFunc(_ map[string]string, in []any) (any, error) {
	if n, ok := intOf(in[0]); ok {
		return time.Unix(n, 0).UTC().Format(time.RFC3339), nil
	}
	return in[0], nil
}

func nonZeroFunc(_ map[string]string, in []any) (any, error) {
	n, ok := in[0].(json.Number)
	if !ok {
		return in[0], nil
	}
	if f, err := strconv.ParseFloat(string(n), 64); err == nil && f == 0 {
		return nil, nil
	}
	return n, nil
}

// firstElseLatestFunc dates a finding: the first source (updated_at) when
// GitHub gives it, else the latest of the others. The result is the
// source's own text, so the document says what GitHub said.
func firstElseLatestFunc(_ map[string]string, in []any) (any, error) {
	if in[0] != nil {
		if _, err := timeOf(in[0]); err != nil {
			return nil, fmt.Errorf("firstElseLatest: %w", err)
		}
		return in[0], nil
	}
	var latest any
	var at time.Time
	for _, v := range in[1:] {
		if v == nil {
			continue
		}
		t, err := timeOf(v)
		if err != nil {
			return nil, fmt.Errorf("firstElseLatest: %w", err)
		}
		if latest == nil || t.After(at) {
			latest, at = v, t
		}
	}
	return latest, nil
}

// timeOf parses an RFC 3339 time string.
func timeOf(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("want an RFC 3339 time, got %s", kind(v))
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("want an RFC 3339 time, got %q", s)
	}
	return t, nil
}

func numberFunc(_ map[string]string, in []any) (any, error) {
	s, ok := in[0].(string)
	if !ok {
		return in[0], nil // a number, or a type the target refuses
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, fmt.Errorf("number: want a number, got %q", s)
	}
	return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
}

func ifTrueFunc(_ map[string]string, in []any) (any, error) {
	if in[0] != true {
		return nil, nil
	}
	return in[1], nil
}
