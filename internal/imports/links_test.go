package imports

import (
	"strings"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/transform"
)

// TestWebURL: only absolute http and https URLs with a host are links.
func TestWebURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://example.com/r/1":       "https://example.com/r/1",
		" HTTP://example.com/x ":        "HTTP://example.com/x",
		"javascript:alert(1)":           "",
		"JaVaScRiPt:alert(document.do)": "",
		" javascript:alert(1)":          "",
		"data:text/html,<script>":       "",
		"file:///etc/passwd":            "",
		"//evil.example/x":              "",
		"example.com/x":                 "",
		"/relative/path":                "",
		"https:no-host":                 "",
		"https://exa mple.com/%zz":      "",
		"vbscript:msgbox":               "",
		"":                              "",
	} {
		if got := webURL(in); got != want {
			t.Errorf("webURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRepoRelative: paths are cleaned; a relative one that climbs out of
// the repository is dropped, an absolute one stays absolute (.. at its
// root goes nowhere, as in the file system).
func TestRepoRelative(t *testing.T) {
	for in, want := range map[string]string{
		"src/app.js":            "src/app.js",
		"src/./lib//a.go":       "src/lib/a.go",
		"src/../lib/a.go":       "lib/a.go",
		`src\win\a.cs`:          "src/win/a.cs",
		"../../etc/passwd":      "",
		"a/../../b":             "",
		`..\..\windows\win.ini`: "",
		"..":                    "",
		".":                     "",
		"":                      "",
		"/abs/../x":             "/x",
		"/home/u/x.go":          "/home/u/x.go",
		`C:\x\..\..\y.cs`:       "C:/y.cs",
		"c:x.cs":                "c:/x.cs",
		"//host/share/../a":     "//host/a",
		"/../../etc/passwd":     "/etc/passwd",
	} {
		if got := repoRelative(in); got != want {
			t.Errorf("repoRelative(%q) = %q, want %q", in, got, want)
		}
	}
}

const hostileSARIF = `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"T","rules":[
  {"id":"r1","helpUri":"JaVaScRiPt:alert(1)","shortDescription":{"text":"R1"}},
  {"id":"r2","helpUri":"https://example.com/r2","shortDescription":{"text":"R2"}}]}},
 "results":[
  {"ruleId":"r1","message":{"text":"one"},"hostedViewerUri":"javascript:alert(document.cookie)",
   "locations":[{"physicalLocation":{"artifactLocation":{"uri":"../../etc/passwd"},"region":{"startLine":3}}}]},
  {"ruleId":"r2","message":{"text":"two"},"hostedViewerUri":"https://viewer.example.com/2",
   "locations":[{"physicalLocation":{"artifactLocation":{"uri":"src/./a/../b.go"},"region":{"startLine":5}}}]}
 ]}]}`

// TestHostileLinksAndPaths: a javascript: link and a path out of the
// repository are dropped from SARIF and CSV results, the findings kept;
// the document then has no link and no path (its line stays).
func TestHostileLinksAndPaths(t *testing.T) {
	rs, _, err := parseAll(t, FormatSARIF, hostileSARIF)
	if err != nil || len(rs) != 2 {
		t.Fatalf("SARIF: %d results, %v", len(rs), err)
	}
	if r := rs[0]; r.URL != "" || r.References != nil || r.Path != "" || r.StartLine != 3 || r.Name != "R1" {
		t.Errorf("SARIF hostile result: %+v", r)
	}
	if r := rs[1]; r.URL != "https://viewer.example.com/2" || len(r.References) != 1 || r.References[0] != "https://example.com/r2" || r.Path != "src/b.go" {
		t.Errorf("SARIF ordinary result: %+v", r)
	}
	csv := "title,path,url\nx,../../etc/passwd,javascript:alert(1)\ny,a/../../b,\"data:text/html;base64,PHNjcmlwdD4=\"\nz,src/z.go,https://example.com/z\n"
	crs, _, err := parseAll(t, FormatCSV, csv)
	if err != nil || len(crs) != 3 {
		t.Fatalf("CSV: %d results, %v", len(crs), err)
	}
	for _, r := range crs[:2] {
		if r.URL != "" || r.Path != "" || r.ID == "" {
			t.Errorf("CSV hostile row %s: %+v", r.Name, r)
		}
	}
	if crs[0].ID == crs[1].ID {
		t.Errorf("rows with different written paths share an id")
	}
	if r := crs[2]; r.URL != "https://example.com/z" || r.Path != "src/z.go" {
		t.Errorf("CSV ordinary row: %+v", r)
	}
	codex := "occurrence_id,finding_id,title,summary,severity,confidence,status,close_reason,note,remediation,path,start_line,end_line\n" +
		"o1,f1,T,S,high,high,open,,,,../../../etc/shadow,1,2\n"
	xrs, _, err := parseAll(t, FormatCodexCSV, codex)
	if err != nil || len(xrs) != 1 || xrs[0].Path != "" {
		t.Fatalf("Codex CSV: %+v %v", xrs, err)
	}
	im, err := transform.ParseImportMap(transform.DefaultImportJSON())
	if err != nil {
		t.Fatal(err)
	}
	asset := &finding.Document{ExternalAssetID: "https://github.com/o/r", VendorAssetID: "1"}
	d := Document(im, asset, 1, Scope{Tool: "T", ScannedAt: "2026-11-21T08:30:00Z"}, rs[0], time.Now())
	// The line is kept without the path (SARIF's region stands whatever
	// the uri); no link is built from either.
	if f := d.Finding(); f.FindingURL != "" || f.Location == nil || f.Location.Path != "" || f.Location.StartLine != 3 || f.FindingDetectionURL != "" || f.CorrelationKey != "" || len(f.References) != 0 {
		t.Errorf("document of the hostile result: url %q location %+v detection %q references %v", f.FindingURL, f.Location, f.FindingDetectionURL, f.References)
	}
	if strings.Contains(d.Finding().Description, "passwd") {
		t.Errorf("description quotes the path: %q", d.Finding().Description)
	}
}

// TestScanTimeOrder: scan times compare as times (a fraction sorts after
// the whole second), and of two complete scans with equal scan times the
// later one applied wins, both to list a finding and to fix it.
func TestScanTimeOrder(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"2026-11-21T08:30:00.5Z", "2026-11-21T08:30:00Z", 1},
		{"2026-11-21T08:30:00Z", "2026-11-21T08:30:00.001Z", -1},
		{"2026-11-21T10:30:00+02:00", "2026-11-21T08:30:00Z", 0},
		{"2026-11-21T08:30:00.1234567Z", "2026-11-21T08:30:00.1234566Z", 1},
	} {
		if got := CompareScanTimes(c.a, c.b); got != c.want {
			t.Errorf("CompareScanTimes(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
	at := func(status, lastFound string) *finding.Document {
		t := lastFound
		return &finding.Document{Findings: []finding.Finding{{FindingStatus: status, LastFoundOn: &t, FirstFoundOn: &t}}}
	}
	now := time.Now()
	if Fixed(at(finding.StatusActive, "2026-11-21T08:30:00.5Z"), "2026-11-21T08:30:00Z", now) != nil {
		t.Error("a scan half a second older fixed a finding")
	}
	if Fixed(at(finding.StatusActive, "2026-11-21T08:30:00Z"), "2026-11-21T08:30:00.5Z", now) == nil {
		t.Error("a scan half a second later did not fix a finding")
	}
	if Fixed(at(finding.StatusActive, "2026-11-21T08:30:00Z"), "2026-11-21T08:30:00Z", now) == nil {
		t.Error("a later scan with the same time did not fix a finding")
	}
	if Lifecycle(at(finding.StatusActive, "2026-11-21T08:30:00Z"), at(finding.StatusFixed, "2026-11-21T08:30:00.5Z")) != nil {
		t.Error("a scan half a second older listed a finding again")
	}
	if Lifecycle(at(finding.StatusActive, "2026-11-21T08:30:00.5Z"), at(finding.StatusFixed, "2026-11-21T08:30:00Z")) == nil {
		t.Error("a scan half a second later did not list a finding")
	}
}
