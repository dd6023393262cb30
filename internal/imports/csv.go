package imports

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"strconv"
	"strings"
)

// Columns of a generic CSV, each recognised by any of its names (compared
// with case, spaces, '_' and '-' ignored).
const (
	colID             = "id"
	colTitle          = "title"
	colDescription    = "description"
	colSeverity       = "severity"
	colPath           = "path"
	colStartLine      = "start_line"
	colEndLine        = "end_line"
	colCWE            = "cwe"
	colRule           = "rule"
	colRecommendation = "recommendation"
	colStatus         = "status"
	colConfidence     = "confidence"
	colURL            = "url"
)

// columnNames lists the header names of each generic column.
func columnNames() map[string][]string {
	return map[string][]string{
		colID:             {"id", "finding_id", "occurrence_id", "uid"},
		colTitle:          {"title", "name", "finding", "issue"},
		colDescription:    {"description", "details", "summary", "message", "impact"},
		colSeverity:       {"severity", "risk", "level"},
		colPath:           {"file", "path", "file_path", "filename", "location"},
		colStartLine:      {"line", "start_line", "line_number"},
		colEndLine:        {"end_line"},
		colCWE:            {"cwe", "cwe_id", "cwes", "weakness"},
		colRule:           {"rule", "rule_id", "check_id", "category", "type"},
		colRecommendation: {"recommendation", "remediation", "fix", "recommended_fix"},
		colStatus:         {"status", "state"},
		colConfidence:     {"confidence"},
		colURL:            {"url", "link", "permalink"},
	}
}

// codexColumns are the columns of the Codex Security CSV export
// (candidate_id is optional).
func codexColumns() []string {
	return []string{"occurrence_id", "finding_id", "title", "summary", "severity", "confidence", "status",
		"close_reason", "note", "remediation", "path", "start_line", "end_line"}
}

// normName is a header name with case, spaces, '_' and '-' ignored.
func normName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(s)) {
		if r == ' ' || r == '_' || r == '-' || r == '\t' {
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// csvTable reads a CSV file with a header row: UTF-8 byte order mark
// removed, CRLF and quoted newlines handled by encoding/csv.
type csvTable struct {
	r      *csv.Reader
	header []string
	cols   map[string]int // normalised name → index
}

func newCSVTable(in io.Reader) (*csvTable, error) {
	br := bufio.NewReader(in)
	if bom, _ := br.Peek(3); bytes.Equal(bom, []byte("\xEF\xBB\xBF")) {
		_, _ = br.Discard(3)
	}
	r := csv.NewReader(br)
	r.ReuseRecord = false
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, parseErr(1, "CSV: empty file, want a header row")
	}
	if err != nil {
		return nil, csvErr(err)
	}
	t := &csvTable{r: r, header: header, cols: map[string]int{}}
	for i, h := range header {
		n := normName(unguard(h))
		if _, dup := t.cols[n]; !dup && n != "" {
			t.cols[n] = i
		}
	}
	return t, nil
}

func csvErr(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return parseErr(pe.Line, "CSV: %v", pe.Err)
	}
	return parseErr(0, "CSV: %v", err)
}

// next returns the next row and the line it starts on; io.EOF at the end.
func (t *csvTable) next() ([]string, int, error) {
	rec, err := t.r.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, 0, io.EOF
		}
		return nil, 0, csvErr(err)
	}
	line, _ := t.r.FieldPos(0)
	for i := range rec {
		rec[i] = strings.TrimSpace(unguard(rec[i]))
	}
	return rec, line, nil
}

// index finds a column by any of its names (-1: absent).
func (t *csvTable) index(names ...string) int {
	for _, n := range names {
		if i, ok := t.cols[normName(n)]; ok {
			return i
		}
	}
	return -1
}

func cell(rec []string, i int) string {
	if i < 0 || i >= len(rec) {
		return ""
	}
	return rec[i]
}

// lineNumber reads a line number cell ("" → 0).
func lineNumber(s string, line int, col string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, parseErr(line, "CSV: column %s: %q is not a line number", col, s)
	}
	return n, nil
}

// splitLocation splits path:line and path:start-end.
func splitLocation(s string) (path string, start, end int) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return s, 0, 0
	}
	a, b, isRange := strings.Cut(s[i+1:], "-")
	n, err := strconv.Atoi(a)
	if err != nil || n <= 0 {
		return s, 0, 0
	}
	start, end = n, n
	if isRange {
		m, err := strconv.Atoi(b)
		if err != nil || m < n {
			return s, 0, 0
		}
		end = m
	}
	return s[:i], start, end
}

// cwesOf reads a CWE cell: CWE-89, 89, "CWE-89: …", several separated by
// ';' or ','.
func cwesOf(s string) []string {
	var out []string
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' || r == '|' }) {
		out = addCWE(out, cweOf(part))
	}
	return out
}

// ParseCodexCSV reads the Codex Security CSV export.
func ParseCodexCSV(data []byte, visit func(Result) error) (Summary, error) {
	return parseCodexCSV(bytes.NewReader(data), visit)
}

func parseCodexCSV(in io.Reader, visit func(Result) error) (Summary, error) {
	t, err := newCSVTable(in)
	if err != nil {
		return Summary{}, err
	}
	idx := map[string]int{}
	for _, c := range codexColumns() {
		i := t.index(c)
		if i < 0 {
			return Summary{}, parseErr(1, "CSV: missing column %s (the Codex Security export has %s)", c, strings.Join(codexColumns(), ", "))
		}
		idx[c] = i
	}
	candidate := t.index("candidate_id")
	sum := Summary{Tool: "Codex Security"}
	for {
		rec, line, err := t.next()
		if errors.Is(err, io.EOF) {
			return sum, nil
		}
		if err != nil {
			return Summary{}, err
		}
		get := func(c string) string { return cell(rec, idx[c]) }
		r := Result{
			RuleID:         get("finding_id"),
			Name:           get("title"),
			Description:    get("summary"),
			Severity:       get("severity"),
			Confidence:     get("confidence"),
			Status:         get("status"),
			CloseReason:    get("close_reason"),
			Note:           get("note"),
			Recommendation: get("remediation"),
			Path:           get("path"),
			Line:           line,
		}
		if r.StartLine, err = lineNumber(get("start_line"), line, "start_line"); err != nil {
			return Summary{}, err
		}
		if r.EndLine, err = lineNumber(get("end_line"), line, "end_line"); err != nil {
			return Summary{}, err
		}
		r.EndLine = max(r.EndLine, r.StartLine)
		if r.Name == "" {
			return Summary{}, parseErr(line, "CSV: row without a title")
		}
		r.CWEs = cwesInText(nil, r.Name, r.Description)
		switch {
		case get("occurrence_id") != "":
			r.ID = importID(get("occurrence_id"))
		case cell(rec, candidate) != "":
			r.ID = importID(cell(rec, candidate))
		case r.RuleID != "":
			r.ID = importID(r.RuleID)
		default:
			r.ID = hashID(r.Name, r.Path, strconv.Itoa(r.StartLine))
		}
		r.Path = repoRelative(r.Path) // identity above from the path as written
		sum.Results++
		if err := visit(r); err != nil {
			return Summary{}, err
		}
	}
}

// ParseCSV reads any tool's CSV by its column names. A title (or rule)
// column and a path column are required, and so is a value in each row.
func ParseCSV(data []byte, visit func(Result) error) (Summary, error) {
	return parseCSV(bytes.NewReader(data), visit)
}

func parseCSV(in io.Reader, visit func(Result) error) (Summary, error) {
	t, err := newCSVTable(in)
	if err != nil {
		return Summary{}, err
	}
	names := columnNames()
	idx := map[string]int{}
	for c, ns := range names {
		idx[c] = t.index(ns...)
	}
	if idx[colTitle] < 0 && idx[colRule] < 0 {
		return Summary{}, parseErr(1, "CSV: no title column (one of %s) and no rule column (one of %s)",
			strings.Join(names[colTitle], ", "), strings.Join(names[colRule], ", "))
	}
	if idx[colPath] < 0 {
		return Summary{}, parseErr(1, "CSV: no path column (one of %s)", strings.Join(names[colPath], ", "))
	}
	var sum Summary
	for {
		rec, line, err := t.next()
		if errors.Is(err, io.EOF) {
			return sum, nil
		}
		if err != nil {
			return Summary{}, err
		}
		get := func(c string) string { return cell(rec, idx[c]) }
		r := Result{
			RuleID:         get(colRule),
			Name:           get(colTitle),
			Description:    get(colDescription),
			Severity:       get(colSeverity),
			Confidence:     get(colConfidence),
			Status:         get(colStatus),
			Recommendation: get(colRecommendation),
			URL:            webURL(get(colURL)),
			CWEs:           cwesOf(get(colCWE)),
			Line:           line,
		}
		if r.Name == "" {
			r.Name = r.RuleID
		}
		if r.Name == "" {
			return Summary{}, parseErr(line, "CSV: row without a title or rule")
		}
		r.Path, r.StartLine, r.EndLine = splitLocation(get(colPath))
		if r.Path == "" {
			return Summary{}, parseErr(line, "CSV: row without a path")
		}
		if s := get(colStartLine); s != "" {
			if r.StartLine, err = lineNumber(s, line, "line"); err != nil {
				return Summary{}, err
			}
			r.EndLine = r.StartLine
		}
		if s := get(colEndLine); s != "" {
			if r.EndLine, err = lineNumber(s, line, "end_line"); err != nil {
				return Summary{}, err
			}
		}
		r.EndLine = max(r.EndLine, r.StartLine)
		if id := get(colID); id != "" {
			r.ID = importID(id)
		} else {
			r.ID = hashID(firstOf(r.RuleID, r.Name), r.Path, strconv.Itoa(r.StartLine))
		}
		// Identity above from the path as written; the finding keeps it
		// only inside the repository.
		r.Path = repoRelative(r.Path)
		sum.Results++
		if err := visit(r); err != nil {
			return Summary{}, err
		}
	}
}
