package imports

import (
	"errors"
	"strings"
	"testing"
)

func parseAll(t *testing.T, format, data string) ([]Result, Summary, error) {
	t.Helper()
	var rs []Result
	sum, err := Parse(format, []byte(data), func(r Result) error {
		rs = append(rs, r)
		return nil
	})
	return rs, sum, err
}

// TestMalformed: every broken file is refused with the line of its
// problem, and visits nothing past it.
func TestMalformed(t *testing.T) {
	for _, c := range []struct {
		name, format, data string
		line               int
		msg                string
	}{
		{"bad JSON", FormatSARIF, "{\"version\":\"2.1.0\",\n\"runs\":[{\"tool\":{\"driver\":{\"name\":\"x\"}},\n\"results\":[{\"ruleId\":\"r\",]}]}", 3, "SARIF"},
		{"SARIF 2.0", FormatSARIF, "{\n\"version\": \"2.0.0\", \"runs\": []}", 2, "2.0.0"},
		{"no version", FormatSARIF, `{"runs":[]}`, 1, "no version"},
		{"not an object", FormatSARIF, `[1,2]`, 1, "want"},
		{"no runs", FormatSARIF, `{"version":"2.1.0"}`, 1, "no runs"},
		{"result without rule or message", FormatSARIF, `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"x"}},"results":[{}]}]}`, 1, "no ruleId"},
		{"wrong type", FormatSARIF, "{\"version\":\"2.1.0\",\"runs\":[{\"tool\":{\"driver\":{\"name\":7}}}]}", 1, "want string"},
		{"trailing data", FormatSARIF, "{\"version\":\"2.1.0\",\"runs\":[]}\n{}", 2, "data after"},
		{"codex missing column", FormatCodexCSV, "occurrence_id,finding_id,title\n1,2,x\n", 1, "missing column summary"},
		{"csv no path column", FormatCSV, "title,severity\nx,high\n", 1, "no path column"},
		{"csv no title column", FormatCSV, "path,severity\na.go,high\n", 1, "no title column"},
		{"csv row without path", FormatCSV, "title,path\nx,a.go\ny,\n", 3, "without a path"},
		{"csv bad line number", FormatCSV, "title,path,line\nx,a.go,12\ny,b.go,twelve\n", 3, "not a line number"},
		{"csv field count", FormatCSV, "title,path\r\nx,a.go\r\ny,b.go,extra\r\n", 3, "fields"},
		{"csv bare quote", FormatCSV, "title,path\nx\"y,a.go\n", 2, "quote"},
		{"empty csv", FormatCSV, "", 1, "empty"},
		{"unknown format", "xml", "<a/>", 0, "unknown format"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := parseAll(t, c.format, c.data)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a ParseError", err)
			}
			if pe.Line != c.line || !strings.Contains(pe.Msg, c.msg) {
				t.Errorf("got line %d %q, want line %d containing %q", pe.Line, pe.Msg, c.line, c.msg)
			}
		})
	}
}

// TestCSVShapes: a byte order mark, CRLF, quoted newlines, formula guards,
// header spelling and path:line forms.
func TestCSVShapes(t *testing.T) {
	data := "\xEF\xBB\xBFFile-Path,ISSUE , cwe_id,Line Number,End_Line,Status\r\n" +
		"src/a.js:10-12,\"two\r\nlines\",CWE-89; 79,,,False Positive\r\n" +
		"src/b.js:7,'=SUM(1),89,,,fixed\r\n" +
		"src/c.js,plain,CWE-0089: SQL injection,30,31,\r\n"
	rs, sum, err := parseAll(t, FormatCSV, data)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Results != 3 || len(rs) != 3 {
		t.Fatalf("%d results", len(rs))
	}
	if r := rs[0]; r.Path != "src/a.js" || r.StartLine != 10 || r.EndLine != 12 || r.Name != "two\nlines" ||
		strings.Join(r.CWEs, ",") != "CWE-89,CWE-79" || r.Status != "False Positive" || r.Line != 2 {
		t.Errorf("row 1: %+v", r)
	}
	if r := rs[1]; r.Name != "=SUM(1)" || r.StartLine != 7 || r.EndLine != 7 || r.Line != 4 {
		t.Errorf("row 2 (formula guard, line after a quoted newline): %+v", r)
	}
	if r := rs[2]; r.StartLine != 30 || r.EndLine != 31 || strings.Join(r.CWEs, ",") != "CWE-89" {
		t.Errorf("row 3: %+v", r)
	}
	if rs[0].ID == rs[1].ID || rs[0].ID == "" {
		t.Errorf("ids %q %q: want distinct hashes", rs[0].ID, rs[1].ID)
	}
	again, _, _ := parseAll(t, FormatCSV, data)
	if again[0].ID != rs[0].ID {
		t.Error("the same row gets another id on a second parse")
	}
}

// TestSARIFIdentityPath: the path form a result without fingerprints is
// identified by is the one it always was (ids stay across upgrades).
func TestSARIFIdentityPath(t *testing.T) {
	bases := map[string]sarifBase{"%SRCROOT%": {uri: "file:///work/repo/"}}
	for in, want := range map[[2]string]string{
		{"src/a.js", "%SRCROOT%"}:          "src/a.js",
		{"file:///work/repo/src/a.js", ""}: "src/a.js",
		{"file:///other/place/b.js", ""}:   "other/place/b.js",
		{"./lib/c%20d.go", ""}:             "lib/c d.go",
		{"file://host/share/e.py", ""}:     "share/e.py",
		{"", ""}:                           "",
	} {
		if got := identityPath(in[0], in[1], bases); got != want {
			t.Errorf("identityPath(%q, %q) = %q, want %q", in[0], in[1], got, want)
		}
	}
}

// TestSARIFResultsBeforeTool: a run that lists results before its tool
// still resolves their rules.
func TestSARIFResultsBeforeTool(t *testing.T) {
	data := `{"version":"2.1.0","runs":[{"results":[{"ruleIndex":0,"message":{"text":"m"},"locations":[{"physicalLocation":{"artifactLocation":{"uri":"a.go"},"region":{"startLine":3}}}]}],
	"tool":{"driver":{"name":"T","rules":[{"id":"R1","shortDescription":{"text":"Rule one"},"properties":{"tags":["CWE-78"],"security-severity":9.5}}]}}}]}`
	rs, sum, err := parseAll(t, FormatSARIF, data)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Tool != "T" || len(rs) != 1 || rs[0].RuleID != "R1" || rs[0].Name != "Rule one" || rs[0].SecuritySeverity != "9.5" || rs[0].CWEs[0] != "CWE-78" {
		t.Errorf("got %+v %+v", sum, rs)
	}
}

func TestCWEOf(t *testing.T) {
	for in, want := range map[string]string{
		"external/cwe/cwe-089": "CWE-89", "CWE-89": "CWE-89", "cwe-22: Path": "CWE-22", "89": "CWE-89",
		"security": "", "OWASP-A03": "", "0": "",
	} {
		if got := cweOf(in); got != want {
			t.Errorf("cweOf(%q) = %q, want %q", in, got, want)
		}
	}
}
