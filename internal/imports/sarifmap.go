package imports

import (
	"encoding/json"
	"errors"
	"net/url"
	"strconv"
	"strings"
)

// Mapping one decoded SARIF result (and its rule) to a Result.

// rule finds the result's rule: rule.index / ruleIndex into the driver's
// (or the extension's, with rule.toolComponent.index) rules, else by id.
func (rs *runState) rule(r *sarifResult) *sarifRule {
	comp := &rs.tool.Driver
	idx := r.RuleIndex
	id := r.RuleID
	if r.Rule != nil {
		if r.Rule.Index != nil {
			idx = r.Rule.Index
		}
		if id == "" {
			id = r.Rule.ID
		}
		if tc := r.Rule.ToolComponent; tc != nil && tc.Index != nil && *tc.Index >= 0 && *tc.Index < len(rs.tool.Extensions) {
			comp = &rs.tool.Extensions[*tc.Index]
		}
	}
	if idx != nil && *idx >= 0 && *idx < len(comp.Rules) {
		return &comp.Rules[*idx]
	}
	if id == "" {
		return nil
	}
	for _, c := range append([]*sarifComponent{&rs.tool.Driver}, extPtrs(rs.tool.Extensions)...) {
		for i := range c.Rules {
			if c.Rules[i].ID == id {
				return &c.Rules[i]
			}
		}
	}
	return nil
}

func extPtrs(e []sarifComponent) []*sarifComponent {
	out := make([]*sarifComponent, len(e))
	for i := range e {
		out[i] = &e[i]
	}
	return out
}

func mapSARIF(rs *runState, r *sarifResult) (Result, error) {
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
		for _, t := range rule.Properties.Tags {
			out.CWEs = addCWE(out.CWEs, cweOf(t))
		}
		out.Confidence = firstOf(props.Confidence, rule.Properties.Confidence, rule.Properties.Precision)
	} else {
		out.SecuritySeverity = score(props.SecuritySeverity)
		out.Confidence = firstOf(props.Confidence, props.Precision)
	}
	for _, t := range props.Tags {
		out.CWEs = addCWE(out.CWEs, cweOf(t))
	}
	if out.Name == "" {
		out.Name = firstOf(out.RuleID, firstLine(out.Description))
	}
	written := "" // the path as the file gives it: the identity below has always used it
	if len(r.Locations) > 0 {
		pl := r.Locations[0].PhysicalLocation
		written = repoPath(pl.ArtifactLocation.URI, pl.ArtifactLocation.URIBaseID, rs.baseURIs)
		out.Path = repoRelative(written)
		out.StartLine = max(pl.Region.StartLine, 0)
		out.EndLine = max(pl.Region.EndLine, out.StartLine)
	}
	for _, s := range r.Suppressions {
		if s.Status == "" || strings.EqualFold(s.Status, "accepted") {
			out.Suppressed = true
		}
	}
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

// repoPath makes an artifact URI repository-relative: a uriBaseId's base
// and file:// are removed, percent-escapes decoded, ./ and / dropped.
func repoPath(uri, baseID string, bases map[string]string) string {
	if uri == "" {
		return ""
	}
	if base := bases[baseID]; base != "" && strings.HasPrefix(uri, base) {
		uri = strings.TrimPrefix(uri, base)
	}
	for _, base := range bases {
		if base != "" && strings.HasPrefix(base, "file:") && strings.HasPrefix(uri, base) {
			uri = strings.TrimPrefix(uri, base)
		}
	}
	if strings.HasPrefix(uri, "file://") {
		uri = strings.TrimPrefix(uri, "file://")
		if i := strings.IndexByte(uri, '/'); i > 0 {
			uri = uri[i:] // file://host/path
		}
	}
	if u, err := url.PathUnescape(uri); err == nil {
		uri = u
	}
	for strings.HasPrefix(uri, "./") {
		uri = uri[2:]
	}
	return strings.TrimLeft(uri, "/")
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
