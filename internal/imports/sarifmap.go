package imports

import (
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"strings"
)

// Mapping one decoded SARIF result (and its rule) to a Result.

// sarifDefaultLevel is SARIF's level of a result that states none, whose
// rule states none either (SARIF 2.1.0, 3.27.10 and 3.50.3).
const sarifDefaultLevel = "warning"

func (rs *runState) mapResult(r *sarifResult) (Result, error) {
	rule := rs.rule(r)
	var out Result
	out.RuleID = r.RuleID
	if out.RuleID == "" && r.Rule != nil {
		out.RuleID = r.Rule.ID
	}
	if out.RuleID == "" && rule != nil {
		out.RuleID = rule.ID
	}
	out.Description = r.Message.Text
	if out.Description == "" {
		out.Description = r.Message.Markdown
	}
	out.Level = r.Level
	out.URL = webURL(r.HostedViewer)
	props := r.Properties
	if rule != nil {
		out.Name = firstOf(rule.ShortDescription.Text, rule.Name, rule.ID)
		if out.Level == "" {
			out.Level = rule.DefaultConfiguration.Level
		}
		out.Recommendation = firstOf(rule.Help.Text, rule.Help.Markdown)
		out.References = webURLs([]string{rule.HelpURI})
		if out.SecuritySeverity = score(props.SecuritySeverity); out.SecuritySeverity == "" {
			out.SecuritySeverity = score(rule.Properties.SecuritySeverity)
		}
		out.Confidence = firstOf(props.Confidence, rule.Properties.Confidence, rule.Properties.Precision)
	} else {
		out.SecuritySeverity = score(props.SecuritySeverity)
		out.Confidence = firstOf(props.Confidence, props.Precision)
	}
	if out.Level == "" {
		out.Level = sarifDefaultLevel
	}
	out.CWEs = rs.cwes(rule, r)
	if out.Name == "" {
		out.Name = firstOf(out.RuleID, firstLine(out.Description))
	}
	written := "" // the path the identity below has always used
	if len(r.Locations) > 0 {
		pl := r.Locations[0].PhysicalLocation
		uri, baseID := rs.location(pl.ArtifactLocation)
		written = identityPath(uri, baseID, rs.bases)
		out.Path = repoRelative(rs.sarifPath(uri, baseID))
		out.StartLine = max(pl.Region.StartLine, 0)
		out.EndLine = max(pl.Region.EndLine, out.StartLine)
	}
	out.Suppressed, out.Note = suppressed(r)
	out.Absent = r.BaselineState == "absent"
	if out.Name == "" {
		return Result{}, errors.New("no ruleId, rule or message")
	}
	// Identity: GitHub's own line hash (with the rule), else the tool's
	// fingerprints, else what the result says.
	switch {
	case r.PartialFingerprints["primaryLocationLineHash"] != "":
		out.ID = importID(out.RuleID, r.PartialFingerprints["primaryLocationLineHash"])
	case len(r.Fingerprints) > 0:
		out.ID = importID(sortedPairs(r.Fingerprints)...)
	default:
		out.ID = hashID(out.RuleID, written, strconv.Itoa(out.StartLine), out.Description)
	}
	return out, nil
}

// cwes merges every CWE the result and its rule state — tags
// (external/cwe/cwe-89, CWE-89), a cwe property (Snyk), the rule's
// relationships to a CWE taxonomy (gosec, KICS) and the result's taxa —
// without repeats, sorted by number.
func (rs *runState) cwes(rule *sarifRule, r *sarifResult) []string {
	var list []string
	if rule != nil {
		for _, t := range rule.Properties.Tags {
			list = addCWE(list, cweOf(t))
		}
		list = cweProperty(list, rule.Properties.CWE)
		list = rs.cwesOfRefs(list, rule.Relationships, true)
	}
	for _, t := range r.Properties.Tags {
		list = addCWE(list, cweOf(t))
	}
	list = cweProperty(list, r.Properties.CWE)
	list = rs.cwesOfRefs(list, r.Taxa, false)
	sortCWEs(list)
	return list
}

// cweProperty adds a cwe property given as a string or a list of them.
func cweProperty(list []string, raw json.RawMessage) []string {
	if len(raw) == 0 {
		return list
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return addCWE(list, cweOf(one))
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		for _, c := range many {
			list = addCWE(list, cweOf(c))
		}
	}
	return list
}

// sortCWEs orders CWE-<n> ids by n.
func sortCWEs(list []string) {
	num := func(c string) int {
		n, _ := strconv.Atoi(strings.TrimPrefix(c, "CWE-"))
		return n
	}
	sort.SliceStable(list, func(i, j int) bool { return num(list[i]) < num(list[j]) })
}

// suppressed applies SARIF's suppressions: a result is suppressed when
// one entry is accepted (a status of accepted, or none: SARIF's default)
// and none is still under review; a rejected entry counts for nothing.
// note is the first accepted entry's justification.
func suppressed(r *sarifResult) (ok bool, note string) {
	accepted, review := false, false
	for _, s := range r.Suppressions {
		switch strings.ToLower(strings.TrimSpace(s.Status)) {
		case "", "accepted":
			if !accepted {
				note = strings.TrimSpace(s.Justification)
			}
			accepted = true
		case "underreview":
			review = true
		}
	}
	if !accepted || review {
		return false, ""
	}
	return true, note
}

// score is a security-severity given as a JSON string or number.
func score(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s)
	}
	var f float64
	if json.Unmarshal(raw, &f) == nil {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return ""
}

func firstOf(vs ...string) string {
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
