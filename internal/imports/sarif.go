package imports

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// The SARIF 2.1.0 subset the mapping reads. Everything else is skipped.
type sarifTool struct {
	Driver     sarifComponent   `json:"driver"`
	Extensions []sarifComponent `json:"extensions"`
}

type sarifComponent struct {
	Name         string      `json:"name"`
	GUID         string      `json:"guid"`
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
	// Relationships is read leniently (relations.go): a shape no tool
	// agreed on must not refuse a log that was accepted before.
	Relationships json.RawMessage `json:"relationships"`
}

type sarifProps struct {
	Tags             []string        `json:"tags"`
	SecuritySeverity json.RawMessage `json:"security-severity"`
	Precision        string          `json:"precision"`
	Confidence       string          `json:"confidence"`
	CWE              json.RawMessage `json:"cwe"`
}

type sarifRuleRef struct {
	ID            string        `json:"id"`
	Index         *int          `json:"index"`
	ToolComponent *sarifCompRef `json:"toolComponent"`
}

// sarifCompRef is a toolComponentReference: by index, name or guid.
type sarifCompRef struct {
	Index *int   `json:"index"`
	Name  string `json:"name"`
	GUID  string `json:"guid"`
}

// optIndex is an array index read leniently: anything but a
// non-negative integer is no index.
type optIndex struct {
	n  int
	ok bool
}

func (o *optIndex) UnmarshalJSON(b []byte) error {
	var n int
	if json.Unmarshal(b, &n) == nil && n >= 0 {
		*o = optIndex{n: n, ok: true}
	} else {
		*o = optIndex{}
	}
	return nil
}

type sarifArtifactLocation struct {
	URI       string   `json:"uri"`
	URIBaseID string   `json:"uriBaseId"`
	Index     optIndex `json:"index"`
}

type sarifResult struct {
	RuleID    string        `json:"ruleId"`
	RuleIndex *int          `json:"ruleIndex"`
	Rule      *sarifRuleRef `json:"rule"`
	Level     string        `json:"level"`
	Message   sarifText     `json:"message"`
	Locations []struct {
		PhysicalLocation struct {
			ArtifactLocation sarifArtifactLocation `json:"artifactLocation"`
			Region           struct {
				StartLine int `json:"startLine"`
				EndLine   int `json:"endLine"`
			} `json:"region"`
		} `json:"physicalLocation"`
	} `json:"locations"`
	PartialFingerprints map[string]string `json:"partialFingerprints"`
	Fingerprints        map[string]string `json:"fingerprints"`
	Suppressions        []struct {
		Kind          string `json:"kind"`
		Status        string `json:"status"`
		Justification string `json:"justification"`
	} `json:"suppressions"`
	BaselineState string     `json:"baselineState"`
	HostedViewer  string     `json:"hostedViewerUri"`
	Properties    sarifProps `json:"properties"`
	// Taxa is read leniently, like a rule's relationships.
	Taxa json.RawMessage `json:"taxa"`
}

// maxRuns bounds the runs of one log: a run costs the summary a few
// words, and a log of a million empty runs must not cost a million.
const maxRuns = 10000

// sarifParser reads a SARIF log: results are decoded one at a time and
// parts the mapping does not read are skipped token by token, so what it
// holds is one result, the rules of the run and the decoder's window,
// whatever the size of the file. With keep it also holds what locates and
// classifies results (artifacts, taxonomies): the processor's first pass.
// With known (the runs of a first pass) results are mapped with
// everything their run says, wherever in the run it stands: the
// processor's second pass.
type sarifParser struct {
	lines   *lineReader
	dec     *json.Decoder
	visit   func(Result) error
	sum     Summary
	version string
	// scannedAt is the latest endTimeUtc read (zero: none).
	scannedAt time.Time
	keep      bool
	known     []*runState
	runs      []*runState
}

// ParseSARIF reads a SARIF 2.1.0 log held whole and calls visit for every
// result of every run, mapped with everything its run states (see
// OpenSARIF). Other SARIF versions are refused.
func ParseSARIF(data []byte, visit func(Result) error) (Summary, error) {
	f, err := openSARIF(data)
	if err != nil {
		return Summary{}, err
	}
	return f.Summary, f.Each(visit)
}

// ParseSARIFReader reads a SARIF log from r as it goes and calls visit for
// every result: what validating an upload needs, in bounded memory. A
// result is mapped with what its run stated before it (a location given
// only by an artifact index listed after the results has no path here);
// the summary and the errors are those of ParseSARIF.
func ParseSARIFReader(r io.Reader, visit func(Result) error) (Summary, error) {
	p := newSARIFParser(r, visit)
	return p.parse()
}

func newSARIFParser(r io.Reader, visit func(Result) error) *sarifParser {
	lr := &lineReader{r: r}
	return &sarifParser{lines: lr, dec: json.NewDecoder(lr), visit: visit}
}

func (p *sarifParser) parse() (Summary, error) {
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
	return &ParseError{Msg: "SARIF: " + fmt.Sprintf(format, args...), Line: p.line()}
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
				return parseErr(p.line(), "SARIF version %q is not supported (want 2.1.0)", p.version)
			}
		case "runs":
			sawRuns = true
			if err := p.delim('[', "runs"); err != nil {
				return err
			}
			for i := 0; p.dec.More(); i++ {
				if i >= maxRuns {
					return p.errf("more than %d runs", maxRuns)
				}
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

func (p *sarifParser) run(index int) error {
	if err := p.delim('{', fmt.Sprintf("runs[%d]", index)); err != nil {
		return err
	}
	rs := p.runState(index)
	p.sum.Runs = append(p.sum.Runs, Run{})
	for p.dec.More() {
		k, err := p.key()
		if err != nil {
			return err
		}
		what := fmt.Sprintf("runs[%d].%s", index, k)
		switch k {
		case "tool":
			if err := p.tool(rs, what); err != nil {
				return err
			}
		case "results":
			if err := p.results(rs, what); err != nil {
				return err
			}
		case "automationDetails":
			var ad struct{ ID string }
			if err := p.decode(&ad, what); err != nil {
				return err
			}
			p.sum.Runs[index].Category = ad.ID
			if p.sum.Category == "" {
				p.sum.Category = ad.ID
			}
		case "invocations":
			if err := p.invocations(what); err != nil {
				return err
			}
		case "originalUriBaseIds":
			var m map[string]struct {
				URI       string `json:"uri"`
				URIBaseID string `json:"uriBaseId"`
			}
			if err := p.decode(&m, what); err != nil {
				return err
			}
			if p.known == nil {
				for k, v := range m {
					rs.bases[k] = sarifBase{uri: v.URI, baseID: v.URIBaseID}
				}
			}
		case "artifacts":
			if err := p.elements(what, func(_ int, raw json.RawMessage) {
				if p.keep {
					rs.addArtifact(raw)
				}
			}); err != nil {
				return err
			}
		case "taxonomies":
			if err := p.elements(what, func(_ int, raw json.RawMessage) {
				if p.keep {
					rs.addTaxonomy(raw)
				}
			}); err != nil {
				return err
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
	if rs.tool == nil {
		// A run without a tool: its results name their rules by id alone,
		// and the request's tool parameter names the tool (scans.go).
		rs.tool = &sarifTool{}
		rs.indexRules()
	}
	for _, raw := range rs.pending {
		if err := p.result(rs, raw); err != nil {
			return err
		}
	}
	rs.pending = nil
	return nil
}

// runState is the run of index i: a first pass's (known), else a new one.
func (p *sarifParser) runState(i int) *runState {
	if i < len(p.known) {
		return p.known[i]
	}
	rs := newRunState(i)
	p.runs = append(p.runs, rs)
	return rs
}

func (p *sarifParser) tool(rs *runState, what string) error {
	if rs.tool != nil && p.known != nil {
		return p.skip(what) // known from the first pass
	}
	var t sarifTool
	if err := p.decode(&t, what); err != nil {
		return err
	}
	rs.tool = &t
	rs.indexRules()
	run := &p.sum.Runs[rs.index]
	run.Tool, run.Organization = t.Driver.Name, t.Driver.Organization
	if rs.index == 0 || p.sum.Tool == "" {
		p.sum.Tool, p.sum.Organization = t.Driver.Name, t.Driver.Organization
	}
	for _, raw := range rs.pending {
		if err := p.result(rs, raw); err != nil {
			return err
		}
	}
	rs.pending = nil
	return nil
}

// results reads a run's results: mapped as they come once the run's tool
// is known (in a second pass it always is), kept raw until then.
func (p *sarifParser) results(rs *runState, what string) error {
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
	return p.delim(']', what)
}

func (p *sarifParser) invocations(what string) error {
	var inv []struct {
		EndTimeUTC string `json:"endTimeUtc"`
	}
	if err := p.decode(&inv, what); err != nil {
		return err
	}
	// The latest end time, compared as times (the offsets and fractions
	// tools write differ); one that is not a time is left out.
	for _, v := range inv {
		if t, err := time.Parse(time.RFC3339Nano, v.EndTimeUTC); err == nil && t.After(p.scannedAt) {
			p.scannedAt, p.sum.ScannedAt = t, v.EndTimeUTC
		}
	}
	return nil
}

func (p *sarifParser) result(rs *runState, raw json.RawMessage) error {
	var r sarifResult
	if err := json.Unmarshal(raw, &r); err != nil {
		return p.errf("runs[%d].results[%d]: %v", rs.index, p.sum.Runs[rs.index].Results, err)
	}
	return p.emit(rs, &r)
}

// emit maps one decoded result and visits it.
func (p *sarifParser) emit(rs *runState, r *sarifResult) error {
	run := &p.sum.Runs[rs.index]
	res, err := rs.mapResult(r)
	if err != nil {
		return p.errf("runs[%d].results[%d]: %v", rs.index, run.Results, err)
	}
	res.Run = rs.index
	run.Results++
	p.sum.Results++
	return p.visit(res)
}
