package imports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// The SARIF 2.1.0 subset the mapping reads. Everything else is skipped.
type sarifTool struct {
	Driver     sarifComponent   `json:"driver"`
	Extensions []sarifComponent `json:"extensions"`
}

type sarifComponent struct {
	Name         string      `json:"name"`
	Organization string      `json:"organization"`
	Rules        []sarifRule `json:"rules"`
}

type sarifText struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown"`
}

type sarifRule struct {
	ID                   string                 `json:"id"`
	Name                 string                 `json:"name"`
	ShortDescription     sarifText              `json:"shortDescription"`
	FullDescription      sarifText              `json:"fullDescription"`
	Help                 sarifText              `json:"help"`
	HelpURI              string                 `json:"helpUri"`
	DefaultConfiguration struct{ Level string } `json:"defaultConfiguration"`
	Properties           sarifProps             `json:"properties"`
}

type sarifProps struct {
	Tags             []string        `json:"tags"`
	SecuritySeverity json.RawMessage `json:"security-severity"`
	Precision        string          `json:"precision"`
	Confidence       string          `json:"confidence"`
	CWE              json.RawMessage `json:"cwe"`
}

type sarifRuleRef struct {
	ID            string `json:"id"`
	Index         *int   `json:"index"`
	ToolComponent *struct {
		Index *int   `json:"index"`
		Name  string `json:"name"`
	} `json:"toolComponent"`
}

type sarifResult struct {
	RuleID    string        `json:"ruleId"`
	RuleIndex *int          `json:"ruleIndex"`
	Rule      *sarifRuleRef `json:"rule"`
	Level     string        `json:"level"`
	Message   sarifText     `json:"message"`
	Locations []struct {
		PhysicalLocation struct {
			ArtifactLocation struct {
				URI       string `json:"uri"`
				URIBaseID string `json:"uriBaseId"`
			} `json:"artifactLocation"`
			Region struct {
				StartLine int `json:"startLine"`
				EndLine   int `json:"endLine"`
			} `json:"region"`
		} `json:"physicalLocation"`
	} `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Fingerprints        map[string]string `json:"fingerprints"`
	Suppressions        []struct {
		Kind   string `json:"kind"`
		Status string `json:"status"`
	} `json:"suppressions"`
	BaselineState string     `json:"baselineState"`
	HostedViewer  string     `json:"hostedViewerUri"`
	Properties    sarifProps `json:"properties"`
}

// sarifParser streams a SARIF log: results are decoded one at a time, so
// a large file costs little more than its own bytes.
type sarifParser struct {
	data    []byte
	dec     *json.Decoder
	visit   func(Result) error
	sum     Summary
	version string
}

// ParseSARIF reads a SARIF 2.1.0 log and calls visit for every result of
// every run. Other SARIF versions are refused.
func ParseSARIF(data []byte, visit func(Result) error) (Summary, error) {
	p := &sarifParser{data: data, dec: json.NewDecoder(bytes.NewReader(data)), visit: visit}
	err := p.log()
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) || !isSyntax(err) {
			return Summary{}, err
		}
		return Summary{}, p.errf("%v", err)
	}
	if p.dec.More() {
		return Summary{}, p.errf("data after the SARIF log")
	}
	if _, err := p.dec.Token(); err == nil {
		return Summary{}, p.errf("data after the SARIF log")
	}
	if p.version != "2.1.0" {
		if p.version == "" {
			return Summary{}, parseErr(1, "not a SARIF log: no version")
		}
		return Summary{}, parseErr(1, "SARIF version %q is not supported (want 2.1.0)", p.version)
	}
	return p.sum, nil
}

func isSyntax(err error) bool {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	return errors.As(err, &se) || errors.As(err, &te) || errors.Is(err, errUnexpected)
}

var errUnexpected = errors.New("unexpected JSON")

func (p *sarifParser) errf(format string, args ...any) error {
	return &ParseError{Msg: "SARIF: " + fmt.Sprintf(format, args...), Line: lineAt(p.data, p.dec.InputOffset())}
}

// delim reads the next token and checks it is d.
func (p *sarifParser) delim(d json.Delim, what string) error {
	t, err := p.dec.Token()
	if err != nil {
		return p.errf("%s: %v", what, err)
	}
	if got, ok := t.(json.Delim); !ok || got != d {
		return p.errf("%s: want %q, got %v", what, d, t)
	}
	return nil
}

// key reads an object key.
func (p *sarifParser) key() (string, error) {
	t, err := p.dec.Token()
	if err != nil {
		return "", p.errf("%v", err)
	}
	k, ok := t.(string)
	if !ok {
		return "", p.errf("want an object key, got %v", t)
	}
	return k, nil
}

// decode decodes the next value into v, naming what on error.
func (p *sarifParser) decode(v any, what string) error {
	if err := p.dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return p.errf("%s: %s: want %s, got %s", what, te.Field, te.Type, te.Value)
		}
		return p.errf("%s: %v", what, err)
	}
	return nil
}

func (p *sarifParser) skip(what string) error {
	var raw json.RawMessage
	return p.decode(&raw, what)
}

func (p *sarifParser) log() error {
	if err := p.delim('{', "SARIF log"); err != nil {
		return err
	}
	sawRuns := false
	for p.dec.More() {
		k, err := p.key()
		if err != nil {
			return err
		}
		switch k {
		case "version":
			if err := p.decode(&p.version, "version"); err != nil {
				return err
			}
			if p.version != "2.1.0" {
				return parseErr(lineAt(p.data, p.dec.InputOffset()), "SARIF version %q is not supported (want 2.1.0)", p.version)
			}
		case "runs":
			sawRuns = true
			if err := p.delim('[', "runs"); err != nil {
				return err
			}
			for i := 0; p.dec.More(); i++ {
				if err := p.run(i); err != nil {
					return err
				}
			}
			if err := p.delim(']', "runs"); err != nil {
				return err
			}
		default:
			if err := p.skip(k); err != nil {
				return err
			}
		}
	}
	if err := p.delim('}', "SARIF log"); err != nil {
		return err
	}
	if !sawRuns {
		return parseErr(1, "SARIF: no runs")
	}
	return nil
}

// runState is one run: its rules, and the results read before its tool.
type runState struct {
	tool     *sarifTool
	baseURIs map[string]string
	pending  []json.RawMessage
	index    int
}

func (p *sarifParser) run(index int) error {
	if err := p.delim('{', fmt.Sprintf("runs[%d]", index)); err != nil {
		return err
	}
	rs := &runState{index: index, baseURIs: map[string]string{}}
	for p.dec.More() {
		k, err := p.key()
		if err != nil {
			return err
		}
		what := fmt.Sprintf("runs[%d].%s", index, k)
		switch k {
		case "tool":
			var t sarifTool
			if err := p.decode(&t, what); err != nil {
				return err
			}
			rs.tool = &t
			if index == 0 || p.sum.Tool == "" {
				p.sum.Tool, p.sum.Organization = t.Driver.Name, t.Driver.Organization
			}
			for _, raw := range rs.pending {
				if err := p.result(rs, raw, nil); err != nil {
					return err
				}
			}
			rs.pending = nil
		case "results":
			if err := p.delim('[', what); err != nil {
				return err
			}
			for i := 0; p.dec.More(); i++ {
				if rs.tool == nil {
					// Rules unknown yet: keep the result for the end of the run.
					var raw json.RawMessage
					if err := p.decode(&raw, fmt.Sprintf("%s[%d]", what, i)); err != nil {
						return err
					}
					rs.pending = append(rs.pending, raw)
					continue
				}
				var r sarifResult
				if err := p.decode(&r, fmt.Sprintf("%s[%d]", what, i)); err != nil {
					return err
				}
				if err := p.emit(rs, &r); err != nil {
					return err
				}
			}
			if err := p.delim(']', what); err != nil {
				return err
			}
		case "automationDetails":
			var ad struct{ ID string }
			if err := p.decode(&ad, what); err != nil {
				return err
			}
			if p.sum.Category == "" {
				p.sum.Category = ad.ID
			}
		case "invocations":
			var inv []struct {
				EndTimeUTC string `json:"endTimeUtc"`
			}
			if err := p.decode(&inv, what); err != nil {
				return err
			}
			for _, v := range inv {
				if v.EndTimeUTC > p.sum.ScannedAt {
					p.sum.ScannedAt = v.EndTimeUTC
				}
			}
		case "originalUriBaseIds":
			var m map[string]struct {
				URI string `json:"uri"`
			}
			if err := p.decode(&m, what); err != nil {
				return err
			}
			for k, v := range m {
				rs.baseURIs[k] = v.URI
			}
		case "versionControlProvenance":
			var vcs []struct {
				RevisionID string `json:"revisionId"`
				Branch     string `json:"branch"`
			}
			if err := p.decode(&vcs, what); err != nil {
				return err
			}
			if len(vcs) > 0 && p.sum.Commit == "" {
				p.sum.Commit, p.sum.Ref = vcs[0].RevisionID, vcs[0].Branch
			}
		default:
			if err := p.skip(what); err != nil {
				return err
			}
		}
	}
	if err := p.delim('}', fmt.Sprintf("runs[%d]", index)); err != nil {
		return err
	}
	if len(rs.pending) > 0 {
		return p.errf("runs[%d]: results without a tool", index)
	}
	if rs.tool == nil {
		return p.errf("runs[%d]: no tool", index)
	}
	return nil
}

func (p *sarifParser) result(rs *runState, raw json.RawMessage, _ any) error {
	var r sarifResult
	if err := json.Unmarshal(raw, &r); err != nil {
		return p.errf("runs[%d].results[%d]: %v", rs.index, p.sum.Results, err)
	}
	return p.emit(rs, &r)
}

// emit maps one decoded result and visits it.
func (p *sarifParser) emit(rs *runState, r *sarifResult) error {
	res, err := mapSARIF(rs, r)
	if err != nil {
		return p.errf("runs[%d].results[%d]: %v", rs.index, p.sum.Results, err)
	}
	p.sum.Results++
	return p.visit(res)
}

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
	out.URL = r.HostedViewer
	props := r.Properties
	if rule != nil {
		out.Name = firstOf(rule.ShortDescription.Text, rule.Name, rule.ID)
		if out.Level == "" {
			out.Level = rule.DefaultConfiguration.Level
		}
		out.Recommendation = firstOf(rule.Help.Text, rule.Help.Markdown)
		if rule.HelpURI != "" {
			out.References = []string{rule.HelpURI}
		}
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
	if len(r.Locations) > 0 {
		pl := r.Locations[0].PhysicalLocation
		out.Path = repoPath(pl.ArtifactLocation.URI, pl.ArtifactLocation.URIBaseID, rs.baseURIs)
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
		out.ID = hashID(out.RuleID, out.Path, strconv.Itoa(out.StartLine), out.Description)
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
