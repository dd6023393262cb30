// Package imports owns findings imported from other code-security tools:
// the POST /imports and GET /imports/{id} handlers of the receiver, the
// parsers of the accepted formats (SARIF 2.1.0, the Codex Security CSV
// export, any tool's CSV by column names), the import's parameters as
// message headers on ghas.import.<format>, the status records in KV
// ghas_imports, and the pure mapping of one parsed result to a finding
// document (the tables it uses are data: transform.ImportMap).
package imports

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// Formats of an import (query parameter format, the last subject token).
const (
	FormatSARIF    = "sarif"
	FormatCodexCSV = "codex-csv"
	FormatCSV      = "csv"
)

// Formats lists the accepted formats.
func Formats() []string { return []string{FormatSARIF, FormatCodexCSV, FormatCSV} }

// Result is one finding of an imported file as the file states it, before
// the mapping tables turn words into the document's vocabulary.
type Result struct {
	// ID is the finding's stable id ([A-Za-z0-9_-], at most 64).
	ID          string
	RuleID      string
	Name        string
	Description string
	// Level is SARIF's level (the result's, else the rule's default).
	Level string
	// SecuritySeverity is SARIF's security-severity score, "" when absent.
	SecuritySeverity string
	// Severity is a CSV severity word.
	Severity   string
	Confidence string
	// Status is a CSV status word (with CloseReason for the Codex export).
	Status      string
	CloseReason string
	Note        string
	// Suppressed: SARIF has an accepted suppression. Absent: SARIF's
	// baselineState is absent.
	Suppressed bool
	Absent     bool
	Path       string
	StartLine  int
	EndLine    int
	CWEs       []string
	// Recommendation is the fix advice.
	Recommendation string
	URL            string
	References     []string
	// Line is where the result starts in the file (CSV row line; SARIF 0).
	Line int
	// Run is the index of the SARIF run the result belongs to (CSV 0).
	Run int
}

// Summary is what a file says about the scan as a whole.
type Summary struct {
	// Tool is the tool's name (SARIF: the first run's tool.driver.name,
	// else the first named run's; CSV: none).
	Tool string
	// Organization is that run's tool.driver.organization.
	Organization string
	// Category is the first automationDetails.id a run states.
	Category string
	// ScannedAt is SARIF's latest invocations[].endTimeUtc.
	ScannedAt string
	// Commit and Ref come from SARIF versionControlProvenance.
	Commit, Ref string
	// Results is the number of results.
	Results int
	// Runs are SARIF's runs, in order (CSV: none).
	Runs []Run
}

// Run is one SARIF run as the summary gives it.
type Run struct {
	// Tool and Organization are its tool.driver's name and organization.
	Tool, Organization string
	// Category is its automationDetails.id.
	Category string
	Results  int
}

// ParseError is a file that cannot be imported: Line is the CSV row or
// the line of the JSON problem (0 when unknown).
type ParseError struct {
	Msg  string
	Line int
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

func parseErr(line int, format string, args ...any) error {
	return &ParseError{Msg: fmt.Sprintf(format, args...), Line: line}
}

// Parse reads a file of format held whole and calls visit for each
// result, in file order. A visit error stops the parse and is returned as
// is.
func Parse(format string, data []byte, visit func(Result) error) (Summary, error) {
	f, err := Open(format, data)
	if err != nil {
		return Summary{}, err
	}
	return f.Summary, f.Each(visit)
}

// File is a file held whole, read once: its summary is known before its
// results are visited (the processor settles each scan's scope from it).
type File struct {
	Summary
	format string
	data   []byte
	// runs are the SARIF runs of the first pass (what locates and
	// classifies a result, wherever in its run it stands).
	runs []*runState
}

// Open reads a file of format held whole: it is validated and summarised,
// its results not yet visited (Each).
func Open(format string, data []byte) (*File, error) {
	if format == FormatSARIF {
		return openSARIF(data)
	}
	sum, err := ParseReader(format, bytes.NewReader(data), func(Result) error { return nil })
	if err != nil {
		return nil, err
	}
	return &File{Summary: sum, format: format, data: data}, nil
}

func openSARIF(data []byte) (*File, error) {
	p := newSARIFParser(bytes.NewReader(data), func(Result) error { return nil })
	p.keep = true
	sum, err := p.parse()
	if err != nil {
		return nil, err
	}
	return &File{Summary: sum, format: FormatSARIF, data: data, runs: p.runs}, nil
}

// Each calls visit for every result of the file, in file order; a visit
// error stops it and is returned as is.
func (f *File) Each(visit func(Result) error) error {
	if f.format != FormatSARIF {
		_, err := ParseReader(f.format, bytes.NewReader(f.data), visit)
		return err
	}
	p := newSARIFParser(bytes.NewReader(f.data), visit)
	p.known = f.runs
	_, err := p.parse()
	return err
}

// ParseReader is Parse reading the file from r as it goes: one result at a
// time, nothing of the file kept, so that validating a large upload costs
// a bounded amount of memory whatever its size.
func ParseReader(format string, r io.Reader, visit func(Result) error) (Summary, error) {
	switch format {
	case FormatSARIF:
		return ParseSARIFReader(r, visit)
	case FormatCodexCSV:
		return parseCodexCSV(r, visit)
	case FormatCSV:
		return parseCSV(r, visit)
	}
	return Summary{}, parseErr(0, "unknown format %q (want sarif, codex-csv or csv)", format)
}

var (
	cweRe     = regexp.MustCompile(`(?i)^(?:external/cwe/)?cwe[-_ :]?0*(\d+)`)
	cweTextRe = regexp.MustCompile(`\bCWE-0*(\d{1,5})\b`)
)

// cweOf is "CWE-<n>" for a tag or cell like external/cwe/cwe-089, CWE-89,
// "CWE-89: SQL Injection" or 89; "" otherwise.
func cweOf(s string) string {
	s = strings.TrimSpace(s)
	if m := cweRe.FindStringSubmatch(s); m != nil {
		return "CWE-" + m[1]
	}
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return "CWE-" + strconv.Itoa(n)
	}
	return ""
}

// addCWE appends c to list unless empty or present.
func addCWE(list []string, c string) []string {
	if c == "" {
		return list
	}
	for _, x := range list {
		if x == c {
			return list
		}
	}
	return append(list, c)
}

// cwesInText finds explicit CWE-<n> mentions in free text.
func cwesInText(list []string, texts ...string) []string {
	for _, t := range texts {
		for _, m := range cweTextRe.FindAllStringSubmatch(t, 8) {
			n, _ := strconv.Atoi(m[1])
			if n > 0 {
				list = addCWE(list, "CWE-"+strconv.Itoa(n))
			}
		}
	}
	return list
}

// unguard removes the leading ' a spreadsheet export puts before a cell
// that starts like a formula (=, +, -, @, tab, carriage return).
func unguard(s string) string {
	if len(s) >= 2 && s[0] == '\'' && strings.IndexByte("=+-@\t\r", s[1]) >= 0 {
		return s[1:]
	}
	return s
}

// importID is the id made of parts (see finding.ImportID).
func importID(parts ...string) string { return finding.ImportID(parts...) }

// hashID is the id of a result without an id of its own: a hash of what
// places it, so the same finding in a later file gets the same id.
func hashID(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:16])
}

// sortedPairs lists a fingerprint map as k=v in key order.
func sortedPairs(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(m))
	for _, k := range keys {
		out = append(out, k+"="+m[k])
	}
	return out
}
