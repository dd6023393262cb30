package transform

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// ImportsKey is the key of the import map in KV ghas_maps.
const ImportsKey = "imports"

// Vendor attributes an imported tool's findings: Tool is a tool name or a
// path.Match pattern (case ignored), e.g. "Semgrep*".
type Vendor struct {
	Tool              string `json:"tool"`
	VendorName        string `json:"vendorName"`
	VendorProductName string `json:"vendorProductName"`
	Source            string `json:"source"`
}

// Band is one security-severity band: a score above Above (when set) or
// at least AtLeast gives Severity. Bands are tried in order.
type Band struct {
	Above    *float64 `json:"above,omitempty"`
	AtLeast  *float64 `json:"atLeast,omitempty"`
	Severity string   `json:"severity"`
}

// ImportMap holds the tables that turn imported results into documents:
// attribution by tool, SARIF security-severity bands and levels, and the
// severity, status and confidence words of CSV files. It is data: the
// default is embedded and seeded into ghas_maps under ImportsKey.
type ImportMap struct {
	Vendors          []Vendor          `json:"vendors"`
	SecuritySeverity []Band            `json:"securitySeverity"`
	Levels           map[string]string `json:"levels"`
	Severities       map[string]string `json:"severities"`
	DefaultSeverity  string            `json:"defaultSeverity"`
	Statuses         map[string]string `json:"statuses"`
	Confidences      map[string]string `json:"confidences"`
}

// DefaultImportJSON is the embedded default import map.
func DefaultImportJSON() []byte {
	b, _ := defaultMaps.ReadFile("maps/imports.json") // embedded: cannot fail
	return b
}

// ParseImportMap validates an import map: known fields only, every
// severity, status and confidence a value of the document's vocabulary,
// every vendor pattern valid.
func ParseImportMap(b []byte) (*ImportMap, error) {
	var m ImportMap
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("parse import map: %w", err)
	}
	if dec.More() {
		return nil, errors.New("parse import map: data after the map")
	}
	sev := func(where, s string) error {
		switch s {
		case finding.SeverityCritical, finding.SeverityHigh, finding.SeverityMedium, finding.SeverityLow, finding.SeverityInfo:
			return nil
		}
		return fmt.Errorf("parse import map: %s: unknown severity %q", where, s)
	}
	for i, v := range m.Vendors {
		if _, err := path.Match(strings.ToLower(v.Tool), ""); err != nil || v.Tool == "" {
			return nil, fmt.Errorf("parse import map: vendors[%d]: bad tool pattern %q", i, v.Tool)
		}
		if v.VendorName == "" || v.VendorProductName == "" || v.Source == "" {
			return nil, fmt.Errorf("parse import map: vendors[%d]: vendorName, vendorProductName and source are required", i)
		}
	}
	for i, b := range m.SecuritySeverity {
		if (b.Above == nil) == (b.AtLeast == nil) {
			return nil, fmt.Errorf("parse import map: securitySeverity[%d]: want one of above or atLeast", i)
		}
		if err := sev(fmt.Sprintf("securitySeverity[%d]", i), b.Severity); err != nil {
			return nil, err
		}
	}
	for name, tbl := range map[string]map[string]string{"levels": m.Levels, "severities": m.Severities} {
		for k, v := range tbl {
			if err := sev(name+"."+k, v); err != nil {
				return nil, err
			}
		}
	}
	if err := sev("defaultSeverity", m.DefaultSeverity); err != nil {
		return nil, err
	}
	for k, v := range m.Statuses {
		switch v {
		case finding.StatusActive, finding.StatusFixed, finding.StatusDismissed:
		default:
			return nil, fmt.Errorf("parse import map: statuses.%s: unknown status %q", k, v)
		}
	}
	for k, v := range m.Confidences {
		switch v {
		case finding.ConfidenceHigh, finding.ConfidenceMedium, finding.ConfidenceLow:
		default:
			return nil, fmt.Errorf("parse import map: confidences.%s: unknown confidence %q", k, v)
		}
	}
	return &m, nil
}

// Vendor attributes a tool: the first matching row of the vendor table,
// else organization (SARIF's driver.organization) or the tool's name.
func (m *ImportMap) Vendor(tool, organization string) Vendor {
	lt := strings.ToLower(tool)
	for _, v := range m.Vendors {
		if ok, _ := path.Match(strings.ToLower(v.Tool), lt); ok {
			return v
		}
	}
	vendor := organization
	if vendor == "" {
		vendor = tool
	}
	return Vendor{Tool: tool, VendorName: vendor, VendorProductName: tool, Source: tool}
}

// ScoreSeverity is the severity of a SARIF security-severity score, "" if
// the score is not a number.
func (m *ImportMap) ScoreSeverity(score string) string {
	f, err := strconv.ParseFloat(strings.TrimSpace(score), 64)
	if err != nil {
		return ""
	}
	for _, b := range m.SecuritySeverity {
		if (b.Above != nil && f > *b.Above) || (b.AtLeast != nil && f >= *b.AtLeast) {
			return b.Severity
		}
	}
	return ""
}

// word looks a word up with case, surrounding space and '-'/'_'/' '
// variants folded.
func word(tbl map[string]string, w string) string {
	w = strings.ToLower(strings.TrimSpace(w))
	if w == "" {
		return ""
	}
	if v, ok := tbl[w]; ok {
		return v
	}
	for _, alt := range []string{strings.ReplaceAll(w, " ", "_"), strings.ReplaceAll(w, "_", " "), strings.ReplaceAll(w, "-", "_"), strings.ReplaceAll(w, "_", "-")} {
		if v, ok := tbl[alt]; ok {
			return v
		}
	}
	return ""
}

// Level is the severity of a SARIF level, "" when unknown.
func (m *ImportMap) Level(level string) string { return word(m.Levels, level) }

// Severity is the severity of a severity word, "" when unknown.
func (m *ImportMap) Severity(w string) string { return word(m.Severities, w) }

// Status is the finding status of a status word, "" when unknown.
func (m *ImportMap) Status(w string) string { return word(m.Statuses, w) }

// Confidence is the confidence of a word, "" when unknown.
func (m *ImportMap) Confidence(w string) string { return word(m.Confidences, w) }

// Imports returns the import map in use.
func (m *Maps) Imports() *ImportMap { return m.imports }

// WithImports returns a copy of m with the import map replaced.
func (m *Maps) WithImports(im *ImportMap) *Maps {
	c := *m
	if im != nil {
		c.imports = im
	}
	return &c
}

// applyImports loads the import map from a ghas_maps entry: a deleted key
// returns to the default, a map that does not parse leaves the last good
// one in use.
func (w *Watcher) applyImports(e jetstream.KeyValueEntry, log *slog.Logger) {
	if e.Operation() != jetstream.KeyValuePut {
		im, _ := ParseImportMap(DefaultImportJSON())
		w.cur.Store(w.cur.Load().WithImports(im))
		log.Warn("map deleted; using the embedded default")
		return
	}
	im, err := ParseImportMap(e.Value())
	if err != nil {
		w.reject(ImportsKey, err, log)
		return
	}
	w.cur.Store(w.cur.Load().WithImports(im))
	log.Info("map loaded")
}
