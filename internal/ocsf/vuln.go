package ocsf

import (
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// vulnerability is vulnerabilities[0] of a code scanning, imported or
// dependency finding. OCSF wants exactly one of cve, advisory and cwe:
//   - a dependency finding: its CVE, else its GitHub advisory, else its
//     lowest CWE, else its rule as an advisory;
//   - a code finding (GitHub's or imported): its lowest CWE, else its rule
//     as an advisory (uid the rule id, else the finding's own id).
//
// The identifiers not chosen go to related_vulnerabilities (or, for CWEs
// next to a CVE or advisory, to its related_cwes).
func vulnerability(doc *finding.Document, f *finding.Finding) (Vulnerability, error) {
	v := Vulnerability{
		Title:         f.Name,
		Desc:          f.Description,
		Severity:      f.Severity,
		VendorName:    doc.VendorName,
		FirstSeenTime: epochMilli(f.FirstFoundOn),
		LastSeenTime:  epochMilli(f.LastFoundOn),
		References:    f.References,
	}
	var fv finding.Vulnerability
	if f.FindingType != nil && f.FindingType.Vulnerability != nil {
		fv = *f.FindingType.Vulnerability
	}
	cwes := sortCWEs(fv.CWEIDs)
	if f.SolutionRecommendation != "" {
		v.Remediation = &Remediation{Desc: f.SolutionRecommendation}
	}

	if doc.FindingTypeName == finding.TypeSCA {
		switch {
		case fv.CVEID != "":
			v.CVE = &CVE{UID: fv.CVEID, Title: f.Name, RelatedCWEs: cweObjects(cwes), EPSS: epss(fv.ExploitCodeMaturity, fv.EPSSPercentile), CVSS: cvss(fv.CVSS)}
			v.RelatedVulnerabilities = aliases(nonEmpty(fv.GHSAID), fv.CVEID, fv.Identifiers)
		case fv.GHSAID != "":
			v.Advisory = &Advisory{UID: fv.GHSAID, Title: f.Name, SrcURL: "https://github.com/advisories/" + fv.GHSAID, RelatedCWEs: cweObjects(cwes)}
			v.RelatedVulnerabilities = aliases(nil, fv.GHSAID, fv.Identifiers)
		}
		if p := f.Product; p != nil && p.Name != "" && p.Version != "" {
			v.AffectedPackages = []AffectedPackage{{
				Name:           p.Name,
				Version:        p.Version, // the vulnerable range: GitHub does not say which version is installed
				PackageManager: p.Vendor,
				FixedInVersion: fixedIn(f.SolutionRecommendation, p.Name),
				Path:           p.ManifestPath,
			}}
			fix := v.AffectedPackages[0].FixedInVersion != ""
			v.IsFixAvailable = &fix
		}
	} else if l := f.Location; l != nil {
		if fl := file(l.Path); fl != nil {
			ac := AffectedCode{File: *fl, StartLine: line(l.StartLine), EndLine: line(l.EndLine),
				StartColumn: line(l.StartColumn), EndColumn: line(l.EndColumn)}
			if f.RuleID != "" {
				ac.Rule = &Rule{UID: f.RuleID, Name: f.RuleID}
			}
			v.AffectedCode = []AffectedCode{ac}
		}
	}
	if v.CVE != nil || v.Advisory != nil {
		return v, nil
	}

	// A weakness, else the rule.
	v.RelatedVulnerabilities = aliases(append(nonEmpty(fv.CVEID), nonEmpty(fv.GHSAID)...), "", fv.Identifiers)
	if len(cwes) > 0 {
		v.CWE = &cweObjects(cwes[:1])[0]
		v.RelatedVulnerabilities = append(v.RelatedVulnerabilities, cwes[1:]...)
		return v, nil
	}
	uid := f.RuleID
	if uid == "" {
		uid = f.ExternalFindingID
	}
	if uid == "" {
		return Vulnerability{}, fail(doc, "no CVE, advisory, CWE, rule id or finding id")
	}
	v.Advisory = &Advisory{UID: uid, Title: f.Name}
	return v, nil
}

// aliases appends to related the advisory's identifiers (GitHub's order)
// that are neither the vulnerability's own uid nor already listed.
func aliases(related []string, uid string, ids []string) []string {
	for _, id := range ids {
		if id != "" && id != uid && !slices.Contains(related, id) {
			related = append(related, id)
		}
	}
	return related
}

// line is a line number (or column) as OCSF types it (a 32-bit integer), 0 (omitted)
// when it is not a line number.
func line(n int) int {
	if n <= 0 || n > math.MaxInt32 {
		return 0
	}
	return n
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// cweNumber is the number of "CWE-NNN" (any case), or -1.
func cweNumber(id string) int {
	if len(id) < 5 || !strings.EqualFold(id[:4], "CWE-") {
		return -1
	}
	n, err := strconv.Atoi(id[4:])
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// sortCWEs returns the CWE ids with numbers in ascending order, each once
// as "CWE-<n>", followed by any id that is not of that form, as it is.
func sortCWEs(ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	var nums []int
	var other []string
	for _, id := range ids {
		if n := cweNumber(id); n >= 0 {
			nums = append(nums, n)
		} else if id != "" {
			other = append(other, id)
		}
	}
	slices.Sort(nums)
	nums = slices.Compact(nums)
	out := make([]string, 0, len(nums)+len(other))
	for _, n := range nums {
		out = append(out, "CWE-"+strconv.Itoa(n))
	}
	return append(out, other...)
}

func cweObjects(ids []string) []CWE {
	if len(ids) == 0 {
		return nil
	}
	out := make([]CWE, len(ids))
	for i, id := range ids {
		out[i] = CWE{UID: id}
		if n := cweNumber(id); n >= 0 {
			out[i].SrcURL = "https://cwe.mitre.org/data/definitions/" + strconv.Itoa(n) + ".html"
		}
	}
	return out
}

// cvss is the CVSS v3 score, then the v4 one; each version comes from its
// vector's "CVSS:x.y/" prefix, else the version of the score's field.
func cvss(c *finding.CVSS) []CVSS {
	if c == nil {
		return nil
	}
	var out []CVSS
	if c.CVSS3Base != nil {
		out = append(out, CVSS{BaseScore: *c.CVSS3Base, Version: cvssVersion(c.Vector, "3"), VectorString: c.Vector})
	}
	if c.CVSS4Base != nil {
		out = append(out, CVSS{BaseScore: *c.CVSS4Base, Version: cvssVersion(c.CVSS4Vector, "4.0"), VectorString: c.CVSS4Vector})
	}
	return out
}

func cvssVersion(vector, otherwise string) string {
	if rest, ok := strings.CutPrefix(vector, "CVSS:"); ok {
		if v, _, ok := strings.Cut(rest, "/"); ok && v != "" {
			return v
		}
	}
	return otherwise
}

// epss is the EPSS probability and percentile; none without the
// probability, which the schema requires.
func epss(p, percentile *float64) *EPSS {
	if p == nil {
		return nil
	}
	return &EPSS{Score: strconv.FormatFloat(*p, 'f', -1, 64), Percentile: percentile}
}

// fixedIn is the first patched version from the recommendation the
// dependency map writes ("Upgrade <package> to <version>"), or "".
func fixedIn(rec, pkg string) string {
	v, ok := strings.CutPrefix(rec, "Upgrade "+pkg+" to ")
	if !ok || strings.ContainsAny(v, " \n") {
		return ""
	}
	return v
}
