package transform

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/priority"
)

//go:embed maps/*.json
var defaultMaps embed.FS

// Datasets lists the datasets, each with one map.
func Datasets() []string { return []string{finding.SAST, finding.SCA, finding.Secret} }

// alertRoot is the key holding the alert in the source document:
// the repository object with the dataset's alerts.
func alertRoot(dataset string) string {
	switch dataset {
	case finding.SAST:
		return "codeScanningAlerts"
	case finding.SCA:
		return "dependabotAlerts"
	case finding.Secret:
		return "secretScanningAlerts"
	}
	return ""
}

// Context sources: facts of the event rather than of the source document.
const (
	ctxAction       = "$action"       // the payload's action (reconcile for reconciler events)
	ctxEventTime    = "$eventTime"    // the action's own timestamp, else a webhook's receive time; absent for reconciler events
	ctxReceivedAt   = "$receivedAt"   // Event.ReceivedAt
	ctxRuleSeverity = "$ruleSeverity" // Event.RuleSeverity, the enrichment cache's rule level
	ctxEvent        = "$event"        // Event.Name
	ctxOrigin       = "$origin"       // Event.Origin
)

func contextSources() []string {
	return []string{ctxAction, ctxEventTime, ctxReceivedAt, ctxRuleSeverity, ctxEvent, ctxOrigin}
}

// Sources is one source path or a list of them. In JSON it is a string
// or an array of strings. A path may hold alternatives separated by '|':
// the first that is present (not null, not "") is its value.
type Sources []string

// UnmarshalJSON accepts a string or an array of strings.
func (s *Sources) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = Sources{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("source: want a string or an array of strings")
	}
	*s = many
	return nil
}

// Row is one line of a map: source path(s) → target path, through an
// optional named function, or a constant value.
type Row struct {
	Source   Sources           `json:"source,omitempty"`
	Value    json.RawMessage   `json:"value,omitempty"`
	Target   string            `json:"target"`
	Function string            `json:"function,omitempty"`
	Args     map[string]string `json:"args,omitempty"`
	Note     string            `json:"note,omitempty"`
}

type mapJSON struct {
	Dataset string `json:"dataset"`
	Rows    []Row  `json:"rows"`
}

// Map is one validated, compiled transformation map. It is immutable and
// safe for concurrent use.
type Map struct {
	dataset string
	rows    []Row
	alert   program // the whole document, from an alert event payload
	asset   program // the asset part only, from a repository object
}

// Dataset is the dataset the map is for.
func (m *Map) Dataset() string { return m.dataset }

// Rows returns a copy of the map's rows.
func (m *Map) Rows() []Row { return append([]Row(nil), m.rows...) }

// Maps holds the three maps in use, the import map and the priority
// table. It is immutable: With returns a copy.
type Maps struct {
	sast, sca, secret *Map
	imports           *ImportMap
	priority          *priority.Table
}

// Map returns the map of a dataset, or nil.
func (m *Maps) Map(dataset string) *Map {
	switch dataset {
	case finding.SAST:
		return m.sast
	case finding.SCA:
		return m.sca
	case finding.Secret:
		return m.secret
	}
	return nil
}

// With returns a copy of m with the dataset's map replaced. An unknown
// dataset or a map of another dataset leaves the copy unchanged.
func (m *Maps) With(dataset string, mp *Map) *Maps {
	c := *m
	if mp == nil || mp.dataset != dataset {
		return &c
	}
	switch dataset {
	case finding.SAST:
		c.sast = mp
	case finding.SCA:
		c.sca = mp
	case finding.Secret:
		c.secret = mp
	}
	return &c
}

// DefaultJSON returns the embedded default map of a dataset, or nil.
func DefaultJSON(dataset string) []byte {
	if alertRoot(dataset) == "" {
		return nil
	}
	b, err := defaultMaps.ReadFile("maps/" + dataset + ".json")
	if err != nil {
		return nil
	}
	return b
}

// Defaults returns the embedded default maps. They are validated by the
// package tests, so the panic below cannot happen in a released binary.
func Defaults() *Maps {
	m := &Maps{}
	for _, ds := range Datasets() {
		mp, err := ParseMap(ds, DefaultJSON(ds))
		if err != nil {
			panic(fmt.Sprintf("transform: embedded %s map: %v", ds, err))
		}
		m = m.With(ds, mp)
	}
	im, err := ParseImportMap(DefaultImportJSON())
	if err != nil {
		panic(fmt.Sprintf("transform: embedded import map: %v", err))
	}
	pt, err := priority.Parse(DefaultPriorityJSON())
	if err != nil {
		panic(fmt.Sprintf("transform: embedded priority table: %v", err))
	}
	return m.WithImports(im).WithPriority(pt)
}

// requiredTargets must be mapped by every map: without them a finding
// has no identity, lifecycle or priority.
func requiredTargets() []string {
	return []string{"findings[0].externalFindingId", "findings[0].findingStatus", "findings[0].severity"}
}

// ParseMap validates and compiles a map. It rejects bad JSON, unknown
// fields, a dataset other than the one named, unknown target paths or
// functions, malformed or foreign source paths, sources that would read
// a secret's value, and maps without the required targets.
func ParseMap(dataset string, b []byte) (*Map, error) {
	if alertRoot(dataset) == "" {
		return nil, fmt.Errorf("parse map: unknown dataset %q (want sast, sca or secret)", dataset)
	}
	var mj mapJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&mj); err != nil {
		return nil, fmt.Errorf("parse %s map: %w", dataset, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("parse %s map: data after the map", dataset)
	}
	if mj.Dataset != dataset {
		return nil, fmt.Errorf("parse %s map: dataset field is %q", dataset, mj.Dataset)
	}
	m := &Map{dataset: dataset, rows: mj.Rows}
	seen := map[string]bool{}
	for i, r := range mj.Rows {
		if seen[r.Target] {
			return nil, fmt.Errorf("parse %s map: row %d: target %q mapped twice", dataset, i, r.Target)
		}
		seen[r.Target] = true
	}
	for _, t := range requiredTargets() {
		if !seen[t] {
			return nil, fmt.Errorf("parse %s map: no row for required target %q", dataset, t)
		}
	}
	var err error
	if m.alert, err = compile(dataset, mj.Rows, false); err != nil {
		return nil, fmt.Errorf("parse %s map: %w", dataset, err)
	}
	if m.asset, err = compile(dataset, mj.Rows, true); err != nil {
		return nil, fmt.Errorf("parse %s map: %w", dataset, err)
	}
	return m, nil
}

// pathStep is one step of a path: an object key, an array index or every
// element of an array ([]).
type pathStep struct {
	key   string
	index int // >= 0 for [n]; -1 for a key; -2 for []
}

// parsePath splits a.b[0].c[].d into segments.
func parsePath(p string) ([]pathStep, error) {
	if p == "" {
		return nil, errors.New("empty path")
	}
	var segs []pathStep
	for _, part := range strings.Split(p, ".") {
		key, rest, hasIndex := strings.Cut(part, "[")
		if hasIndex && rest == "" {
			return nil, fmt.Errorf("path %q: missing ]", p)
		}
		if key == "" && len(segs) == 0 {
			return nil, fmt.Errorf("path %q: starts with an index", p)
		}
		if key != "" {
			if strings.ContainsAny(key, "]$|") {
				return nil, fmt.Errorf("path %q: bad key %q", p, key)
			}
			segs = append(segs, pathStep{key: key, index: -1})
		} else if rest == "" {
			return nil, fmt.Errorf("path %q: empty key", p)
		}
		for rest != "" {
			idx, after, ok := strings.Cut(rest, "]")
			if !ok {
				return nil, fmt.Errorf("path %q: missing ]", p)
			}
			if idx == "" {
				segs = append(segs, pathStep{index: -2})
			} else {
				n, err := strconv.Atoi(idx)
				if err != nil || n < 0 || n > 1<<16 {
					return nil, fmt.Errorf("path %q: bad index %q", p, idx)
				}
				segs = append(segs, pathStep{index: n})
			}
			if after == "" {
				break
			}
			if after[0] != '[' {
				return nil, fmt.Errorf("path %q: want [ after ]", p)
			}
			rest = after[1:]
		}
	}
	return segs, nil
}

// walk resolves the remaining segments of a path on a decoded value. A
// step through a value of another type yields nil (absent).
func walk(v any, segs []pathStep) any {
	for i, s := range segs {
		switch {
		case s.index == -1:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[s.key]
		case s.index >= 0:
			a, ok := v.([]any)
			if !ok || s.index >= len(a) {
				return nil
			}
			v = a[s.index]
		default:
			a, ok := v.([]any)
			if !ok {
				return nil
			}
			out := make([]any, 0, len(a))
			for _, e := range a {
				if r := walk(e, segs[i+1:]); r != nil {
					out = append(out, r)
				}
			}
			return out
		}
	}
	return v
}
