package priority

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// Score is the priority of a finding document from the document alone.
//
// The factors are the table's rows that apply, in a fixed order —
// severity, epss, secret-validity, publicly-leaked, exposure (visibility,
// then archived), criticality, corroborated, dependency (scope, then
// relationship), code-context, secret-reach (multi-repo, then push
// protection bypassed), status — each with the input it matched as its
// value. A row worth 0 points is left out, except severity, the base,
// which is always first. An ACTIVE finding's score is the sum of the
// points clamped to 0..100; any other finding scores 0, keeps its factors
// and gets a last factor status (value its status, 0 points).
func (t *Table) Score(d *finding.Document) finding.Priority {
	f := d.Finding()
	if f == nil {
		return finding.Priority{Factors: []finding.Factor{}}
	}
	fs := make([]finding.Factor, 0, 8)
	fs = append(fs, t.severity(f))
	add := func(name, value string, p int) {
		if p != 0 {
			fs = append(fs, finding.Factor{Name: name, Value: value, Points: p})
		}
	}
	var vuln *finding.Vulnerability
	if f.FindingType != nil {
		vuln = f.FindingType.Vulnerability
	}
	if vuln != nil && vuln.ExploitCodeMaturity != nil {
		e := *vuln.ExploitCodeMaturity
		for _, b := range t.EPSS {
			if e >= b.AtLeast {
				add(FactorEPSS, number(e), b.Points)
				break
			}
		}
	}
	if v := strings.ToLower(f.Validity); v != "" {
		add(FactorSecretValidity, v, t.SecretValidity[v])
	}
	if f.PubliclyLeaked != nil && *f.PubliclyLeaked {
		add(FactorPubliclyLeaked, "true", t.PubliclyLeaked)
	}
	rc := d.AssetDetail.RepositoryAssetClass
	if v := strings.ToLower(rc.Visibility); v != "" {
		add(FactorExposure, v, t.Exposure[v])
	}
	if rc.Archived {
		add(FactorExposure, "archived", t.Exposure["archived"])
	}
	if c := strings.ToLower(strings.TrimSpace(rc.Criticality)); c != "" {
		add(FactorCriticality, c, t.Criticality[c]) // a value the table lacks: no points
	}
	if f.Corroborated {
		add(FactorCorroborated, "true", t.Corroborated)
	}
	if p := f.Product; p != nil {
		if s := strings.ToLower(p.DependencyScope); s != "" {
			add(FactorDependency, s, t.Dependency[s])
		}
		if r := strings.ToLower(p.DependencyRelationship); r != "" {
			add(FactorDependency, r, t.Dependency[r])
		}
	}
	if cls := f.Classifications; len(cls) > 0 && allIn(cls, t.CodeContext.Classifications) {
		add(FactorCodeContext, strings.Join(cls, ", "), t.CodeContext.Points)
	}
	if f.MultiRepo != nil && *f.MultiRepo {
		add(FactorSecretReach, "multi-repo", t.SecretReach.MultiRepo)
	}
	if f.PushProtectionBypass != nil {
		add(FactorSecretReach, "push-protection-bypassed", t.SecretReach.PushProtectionBypassed)
	}
	if f.FindingStatus != finding.StatusActive {
		fs = append(fs, finding.Factor{Name: FactorStatus, Value: f.FindingStatus, Points: 0})
		return finding.Priority{Score: 0, Factors: fs}
	}
	sum := 0
	for _, x := range fs {
		sum += x.Points
	}
	return finding.Priority{Score: min(max(sum, 0), 100), Factors: fs}
}

// Apply sets the document's priority (its one finding's) to Score's; a
// nil table leaves the document alone.
func (t *Table) Apply(d *finding.Document) {
	if t == nil {
		return
	}
	if f := d.Finding(); f != nil {
		p := t.Score(d)
		f.Priority = &p
	}
}

// severity is the base: a numeric score where the document has one (a
// rule's security-severity; an advisory's CVSS v3 base score, else its
// v4 one) × the multiplier, else the severity word's points.
func (t *Table) severity(f *finding.Finding) finding.Factor {
	if m := t.NumericScoreMultiplier; m > 0 {
		if s := f.SecuritySeverityScore; s != nil && validScore(*s) {
			return finding.Factor{Name: FactorSeverity, Value: "security-severity " + number(*s), Points: scaled(*s, m)}
		}
		if f.FindingType != nil && f.FindingType.Vulnerability != nil && f.FindingType.Vulnerability.CVSS != nil {
			c := f.FindingType.Vulnerability.CVSS
			if c.CVSS3Base != nil && validScore(*c.CVSS3Base) {
				return finding.Factor{Name: FactorSeverity, Value: "cvss3 " + number(*c.CVSS3Base), Points: scaled(*c.CVSS3Base, m)}
			}
			if c.CVSS4Base != nil && validScore(*c.CVSS4Base) {
				return finding.Factor{Name: FactorSeverity, Value: "cvss4 " + number(*c.CVSS4Base), Points: scaled(*c.CVSS4Base, m)}
			}
		}
	}
	return finding.Factor{Name: FactorSeverity, Value: f.Severity, Points: t.Severity[f.Severity]}
}

// validScore reports whether s is a score of the 0..10 scale.
func validScore(s float64) bool { return s >= 0 && s <= 10 }

// scaled is score × m rounded to the nearest integer (halves away from
// zero); the small epsilon keeps 6.65 × 10 (66.49999… in binary) at 67,
// as a reader computing by hand expects.
func scaled(score, m float64) int {
	return int(math.Round(score*m + 1e-9))
}

// number formats a score or probability as the shortest decimal.
func number(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// allIn reports whether every element of vs is in set.
func allIn(vs, set []string) bool {
	for _, v := range vs {
		if !slices.Contains(set, strings.ToLower(v)) {
			return false
		}
	}
	return true
}
