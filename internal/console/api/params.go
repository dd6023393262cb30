package api

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/console/index"
)

// ParamError is a bad query parameter: the API answers it 400 naming
// Parameter.
type ParamError struct {
	Parameter string
	Msg       string
}

func (e *ParamError) Error() string { return e.Parameter + ": " + e.Msg }

// params reads a query's parameters: each at most once, none unknown, so
// that a misspelt filter is an error and not a wider answer.
type params struct {
	v url.Values
}

func readParams(q url.Values, known ...string) (params, error) {
	for name, vs := range q {
		ok := false
		for _, k := range known {
			if name == k {
				ok = true
			}
		}
		if !ok {
			takes := "no parameters"
			if len(known) > 0 {
				takes = strings.Join(known, ", ")
			}
			return params{}, &ParamError{name, "unknown parameter; this endpoint takes " + takes}
		}
		if len(vs) > 1 {
			return params{}, &ParamError{name, "given more than once"}
		}
	}
	return params{v: q}, nil
}

func (p params) get(name string) string { return p.v.Get(name) }

// oneOf is the parameter's value among allowed (any case), as allowed
// spells it; "" when absent.
func (p params) oneOf(name string, allowed []string) (string, error) {
	v := p.v.Get(name)
	if v == "" {
		return "", nil
	}
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a, nil
		}
	}
	return "", &ParamError{name, fmt.Sprintf("%q is not one of %s", v, strings.Join(allowed, ", "))}
}

// limit is the parameter as an integer between 1 and most; def when
// absent.
func (p params) limit(name string, def, most int) (int, error) {
	v := p.v.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > most {
		return 0, &ParamError{name, fmt.Sprintf("%q is not a whole number from 1 to %d", v, most)}
	}
	return n, nil
}

func (p params) boolean(name string) (bool, error) {
	switch v := strings.ToLower(p.v.Get(name)); v {
	case "", "false", "0", "no":
		return false, nil
	case "true", "1", "yes":
		return true, nil
	}
	return false, &ParamError{name, fmt.Sprintf("%q is not true or false", p.v.Get(name))}
}

// moment reads a time (see ParseMoment); def when absent.
func (p params) moment(name string, now, def time.Time) (time.Time, error) {
	v := strings.TrimSpace(p.v.Get(name))
	if v == "" {
		return def, nil
	}
	t, err := ParseMoment(v, now)
	if err != nil {
		return time.Time{}, &ParamError{name, fmt.Sprintf("%q is neither an RFC 3339 time nor a duration such as 24h or 7d", v)}
	}
	return t, nil
}

// ParseMoment reads a moment: an RFC 3339 time (a date alone is its
// midnight UTC), or a duration back from now ("24h", "90m", "7d" with d
// for days). A zone written "+01:00" in a URL without escaping the plus
// arrives as " 01:00" and is read as meant.
func ParseMoment(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if strings.Contains(v, " ") {
		if t, err := time.Parse(time.RFC3339, strings.Replace(v, " ", "+", 1)); err == nil {
			return t, nil
		}
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	d, err := ParseAgo(v)
	if err != nil {
		return time.Time{}, err
	}
	return now.Add(-d), nil
}

// ParseAgo reads a positive duration: Go's form ("24h", "90m") or whole
// days ("7d").
func ParseAgo(v string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 3650 {
			return 0, fmt.Errorf("bad days %q", v)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad duration %q", v)
	}
	return d, nil
}

// ReadFilter reads the finding filters of a query.
func ReadFilter(p url.Values) (index.Filter, error) {
	pp := params{v: p}
	var f index.Filter
	var err error
	if f.Type, err = pp.oneOf("type", index.Types); err != nil {
		return f, err
	}
	if f.Status, err = pp.oneOf("status", index.Statuses); err != nil {
		return f, err
	}
	if f.Severity, err = pp.oneOf("severity", index.Severities); err != nil {
		return f, err
	}
	f.Owner, f.Source, f.Q = pp.get("owner"), pp.get("source"), strings.TrimSpace(pp.get("q"))
	if len(f.Q) > 200 {
		return f, &ParamError{"q", "longer than 200 characters"}
	}
	if r := pp.get("repository"); r != "" {
		owner, name, ok := strings.Cut(r, "/")
		if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
			return f, &ParamError{"repository", fmt.Sprintf("%q is not owner/name", r)}
		}
		f.Repository = r
	}
	return f, nil
}

// FilterParams are the parameters of ReadFilter.
var FilterParams = []string{"type", "status", "severity", "owner", "source", "repository", "q"}
