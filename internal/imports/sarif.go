package imports

import (
	"bytes"
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

// sarifParser streams a SARIF log: results are decoded one at a time and
// parts the mapping does not read are skipped token by token, so what it
// holds is one result, the rules of the run and the decoder's window,
// whatever the size of the file.
type sarifParser struct {
	lines   *lineReader
	dec     *json.Decoder
	visit   func(Result) error
	sum     Summary
	version string
	// scannedAt is the latest endTimeUtc read (zero: none).
	scannedAt time.Time
}

// ParseSARIF reads a SARIF 2.1.0 log and calls visit for every result of
// every run. Other SARIF versions are refused.
func ParseSARIF(data []byte, visit func(Result) error) (Summary, error) {
	return ParseSARIFReader(bytes.NewReader(data), visit)
}

// ParseSARIFReader is ParseSARIF reading the log from r as it goes.
func ParseSARIFReader(r io.Reader, visit func(Result) error) (Summary, error) {
	lr := &lineReader{r: r}
	p := &sarifParser{lines: lr, dec: json.NewDecoder(lr), visit: visit}
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

// line is the 1-based line of the decoder's position: the lines read so
// far less those still in the decoder's buffer.
func (p *sarifParser) line() int {
	rest, _ := io.ReadAll(p.dec.Buffered()) // a bytes.Reader: no error
	return 1 + p.lines.lines - bytes.Count(rest, []byte{'\n'})
}

// lineReader counts the newlines read through it.
type lineReader struct {
	r     io.Reader
	lines int
}

func (l *lineReader) Read(b []byte) (int, error) {
	n, err := l.r.Read(b)
	l.lines += bytes.Count(b[:n], []byte{'\n'})
	return n, err
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

// skip passes over the next value token by token: a large part the
// mapping does not read (artifacts, graphs, taxonomies) is never held
// whole.
func (p *sarifParser) skip(what string) error {
	depth := 0
	for {
		t, err := p.dec.Token()
		if err != nil {
			return p.errf("%s: %v", what, err)
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
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
			// The latest end time, compared as times (the offsets and
			// fractions tools write differ); one that is not a time is
			// left out.
			for _, v := range inv {
				if t, err := time.Parse(time.RFC3339Nano, v.EndTimeUTC); err == nil && t.After(p.scannedAt) {
					p.scannedAt, p.sum.ScannedAt = t, v.EndTimeUTC
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
