// Package priority owns the priority of a finding: the table of weights
// (data, validated here; its default is the transformation map "priority"
// of KV ghas_maps) and the score it gives a finding document, with the
// factors that explain it. It is pure: no I/O, no clock, no logger.
// docs/mapping.md explains the score with worked examples.
package priority

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// Factor names, in the order Score lists them.
const (
	FactorSeverity       = "severity"
	FactorEPSS           = "epss"
	FactorSecretValidity = "secret-validity"
	FactorPubliclyLeaked = "publicly-leaked"
	FactorExposure       = "exposure"
	FactorCriticality    = "criticality"
	FactorCorroborated   = "corroborated"
	FactorDependency     = "dependency"
	FactorCodeContext    = "code-context"
	FactorSecretReach    = "secret-reach"
	FactorStatus         = "status"
)

// maxPoints bounds every weight: one row can never move the score by more
// than the whole range.
const maxPoints = 100

// Band is one EPSS band: a probability of at least AtLeast gives Points.
type Band struct {
	AtLeast float64 `json:"atLeast"`
	Points  int     `json:"points"`
}

// CodeContext gives Points to a code scanning finding whose
// classifications are a non-empty list of only these.
type CodeContext struct {
	Classifications []string `json:"classifications"`
	Points          int      `json:"points"`
}

// SecretReach weighs how far a secret travelled.
type SecretReach struct {
	MultiRepo              int `json:"multiRepo"`
	PushProtectionBypassed int `json:"pushProtectionBypassed"`
}

// Table is a validated priority table. Build it with Parse; it is
// immutable and safe for concurrent use.
type Table struct {
	// Severity is the base by severity word (CRITICAL … INFO).
	Severity map[string]int `json:"severity"`
	// NumericScoreMultiplier turns a numeric score (a rule's
	// security-severity, an advisory's CVSS base score, 0 to 10) into the
	// base that replaces the word's: score × multiplier, rounded. 0 leaves
	// numeric scores aside.
	NumericScoreMultiplier float64 `json:"numericScoreMultiplier"`
	// EPSS bands, highest first: the first the probability reaches counts.
	EPSS []Band `json:"epss"`
	// SecretValidity by validity: active, inactive, unknown.
	SecretValidity map[string]int `json:"secretValidity"`
	// PubliclyLeaked counts for a secret also found in public.
	PubliclyLeaked int `json:"publiclyLeaked"`
	// Exposure by visibility (public, private, internal) and for an
	// archived repository (archived).
	Exposure map[string]int `json:"exposure"`
	// Criticality by the lower-cased value of the criticality property.
	Criticality map[string]int `json:"criticality"`
	// Corroborated counts when another source reports the same weakness.
	Corroborated int `json:"corroborated"`
	// Dependency by dependency scope (runtime, development) and by
	// relationship (direct, transitive, inconclusive).
	Dependency map[string]int `json:"dependency"`
	// CodeContext weighs code that does not ship (tests, libraries, …).
	CodeContext CodeContext `json:"codeContext"`
	// SecretReach weighs a secret found in several repositories or pushed
	// past push protection.
	SecretReach SecretReach `json:"secretReach"`
}

// Parse validates a priority table: known fields only, every weight
// within ±100, the severity base of all five words within 0..100, EPSS
// bands in (0, 1] from the highest down, and the keys of each table in the
// document's vocabulary (criticality values lower-case, as the document
// carries them).
func Parse(b []byte) (*Table, error) {
	var t Table
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("parse priority table: %w", err)
	}
	if dec.More() {
		return nil, errors.New("parse priority table: data after the table")
	}
	if err := t.validate(); err != nil {
		return nil, fmt.Errorf("parse priority table: %w", err)
	}
	return &t, nil
}

func (t *Table) validate() error {
	words := []string{finding.SeverityCritical, finding.SeverityHigh, finding.SeverityMedium, finding.SeverityLow, finding.SeverityInfo}
	for _, w := range words {
		p, ok := t.Severity[w]
		if !ok {
			return fmt.Errorf("severity: no base for %s", w)
		}
		if p < 0 || p > maxPoints {
			return fmt.Errorf("severity.%s: %d is not within 0..%d", w, p, maxPoints)
		}
	}
	if len(t.Severity) != len(words) {
		return fmt.Errorf("severity: keys other than %s", strings.Join(words, ", "))
	}
	if m := t.NumericScoreMultiplier; math.IsNaN(m) || m < 0 || m > 10 {
		return fmt.Errorf("numericScoreMultiplier: %v is not within 0..10", m)
	}
	for i, b := range t.EPSS {
		if !(b.AtLeast > 0 && b.AtLeast <= 1) {
			return fmt.Errorf("epss[%d].atLeast: %v is not within (0, 1]", i, b.AtLeast)
		}
		if i > 0 && b.AtLeast >= t.EPSS[i-1].AtLeast {
			return fmt.Errorf("epss[%d].atLeast: %v does not come below the band before it (%v)", i, b.AtLeast, t.EPSS[i-1].AtLeast)
		}
		if err := points(fmt.Sprintf("epss[%d].points", i), b.Points); err != nil {
			return err
		}
	}
	keyed := []struct {
		name  string
		tbl   map[string]int
		words []string // nil: any lower-case word
	}{
		{"secretValidity", t.SecretValidity, []string{"active", "inactive", "unknown"}},
		{"exposure", t.Exposure, []string{"public", "private", "internal", "archived"}},
		{"criticality", t.Criticality, nil},
		{"dependency", t.Dependency, []string{"runtime", "development", "direct", "transitive", "inconclusive"}},
	}
	for _, k := range keyed {
		for w, p := range k.tbl {
			if k.words != nil && !slices.Contains(k.words, w) {
				return fmt.Errorf("%s: unknown key %q (want one of %s)", k.name, w, strings.Join(k.words, ", "))
			}
			if k.words == nil && (w == "" || w != strings.ToLower(strings.TrimSpace(w))) {
				return fmt.Errorf("%s: key %q is not a lower-case value", k.name, w)
			}
			if err := points(k.name+"."+w, p); err != nil {
				return err
			}
		}
	}
	for _, w := range []struct {
		name string
		p    int
	}{{"publiclyLeaked", t.PubliclyLeaked}, {"corroborated", t.Corroborated}, {"codeContext.points", t.CodeContext.Points},
		{"secretReach.multiRepo", t.SecretReach.MultiRepo}, {"secretReach.pushProtectionBypassed", t.SecretReach.PushProtectionBypassed}} {
		if err := points(w.name, w.p); err != nil {
			return err
		}
	}
	for i, c := range t.CodeContext.Classifications {
		if !slices.Contains([]string{"source", "generated", "test", "library", "documentation"}, c) {
			return fmt.Errorf("codeContext.classifications[%d]: unknown classification %q", i, c)
		}
	}
	if t.CodeContext.Points != 0 && len(t.CodeContext.Classifications) == 0 {
		return errors.New("codeContext: points without classifications")
	}
	return nil
}

func points(where string, p int) error {
	if p < -maxPoints || p > maxPoints {
		return fmt.Errorf("%s: %d is not within ±%d", where, p, maxPoints)
	}
	return nil
}
