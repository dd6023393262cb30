package imports

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/transform"
)

// SARIF as real tools write it: each test is a shape a real tool writes
// that was read wrong before.

// sarifLog wraps runs (JSON objects) into a log.
func sarifLog(runs ...string) string {
	return `{"version":"2.1.0","runs":[` + strings.Join(runs, ",") + `]}`
}

func oneResult(t *testing.T, data string) Result {
	t.Helper()
	rs, _, err := parseAll(t, FormatSARIF, data)
	if err != nil || len(rs) != 1 {
		t.Fatalf("%d results, %v", len(rs), err)
	}
	return rs[0]
}

// TestLocationByIndex: a location given by artifactLocation.index alone
// (CodeQL writes it so) takes the artifact's uri and base, and keeps its
// line; an index the run does not list keeps the line without a path.
func TestLocationByIndex(t *testing.T) {
	data := sarifLog(`{"tool":{"driver":{"name":"CodeQL"}},
	 "originalUriBaseIds":{"SRCROOT":{"uri":"file:///home/runner/work/app/app/"}},
	 "artifacts":[{"location":{"uri":"src/a.js","uriBaseId":"SRCROOT"}},{"location":{"uri":"file:///home/runner/work/app/app/lib/b.js"}}],
	 "results":[
	  {"ruleId":"r","message":{"text":"one"},"locations":[{"physicalLocation":{"artifactLocation":{"index":0},"region":{"startLine":12,"endLine":14}}}]},
	  {"ruleId":"r","message":{"text":"two"},"locations":[{"physicalLocation":{"artifactLocation":{"index":1},"region":{"startLine":3}}}]},
	  {"ruleId":"r","message":{"text":"three"},"locations":[{"physicalLocation":{"artifactLocation":{"index":7},"region":{"startLine":5}}}]}]}`)
	rs, _, err := parseAll(t, FormatSARIF, data)
	if err != nil || len(rs) != 3 {
		t.Fatalf("%d results, %v", len(rs), err)
	}
	for i, want := range []struct {
		path       string
		start, end int
	}{{"src/a.js", 12, 14}, {"lib/b.js", 3, 3}, {"", 5, 5}} {
		if r := rs[i]; r.Path != want.path || r.StartLine != want.start || r.EndLine != want.end {
			t.Errorf("result %d: %q %d-%d, want %q %d-%d", i, r.Path, r.StartLine, r.EndLine, want.path, want.start, want.end)
		}
	}
	if rs[0].ID == rs[1].ID {
		t.Error("two locations by index share an id")
	}
	// The line reaches the document even without a path.
	d := Document(transform.Defaults().Imports(), &finding.Document{VendorAssetID: "1"}, 1, Scope{Tool: "CodeQL", ScannedAt: "2026-11-21T08:30:00Z"}, rs[2], time.Now())
	if l := d.Finding().Location; l == nil || l.StartLine != 5 || l.Path != "" {
		t.Errorf("document location %+v, want line 5 without a path", l)
	}
}

// TestTaxonomyCWEs: gosec and KICS name a rule's CWE only by a
// relationship to a taxonomy named CWE; others by the taxonomy's index or
// guid, or by the result's taxa. All sources merge, sorted by number, and
// the finding gets its correlationKey.
func TestTaxonomyCWEs(t *testing.T) {
	gosec := sarifLog(`{"results":[{"ruleId":"G404","level":"error","message":{"text":"weak rand"},
	  "locations":[{"physicalLocation":{"artifactLocation":{"uri":"main.go"},"region":{"startLine":15}}}]}],
	 "taxonomies":[{"name":"CWE","guid":"f2856fc0","taxa":[{"id":"338","guid":"0512047f"}]}],
	 "tool":{"driver":{"name":"gosec","rules":[{"id":"G404","properties":{"tags":["security","HIGH"]},
	  "relationships":[{"kinds":["superset"],"target":{"id":"338","guid":"0512047f","toolComponent":{"guid":"f2856fc0","name":"CWE"}}}]}]}}}`)
	r := oneResult(t, gosec)
	if !slices.Equal(r.CWEs, []string{"CWE-338"}) {
		t.Errorf("gosec: %v, want [CWE-338]", r.CWEs)
	}
	d := Document(transform.Defaults().Imports(), &finding.Document{VendorAssetID: "1"}, 1, Scope{Tool: "gosec", ScannedAt: "2026-11-21T08:30:00Z"}, r, time.Now())
	if d.Finding().CorrelationKey == "" {
		t.Error("gosec finding without correlationKey")
	}
	kics := sarifLog(`{"tool":{"driver":{"name":"KICS","rules":[{"id":"q1","relationships":[
	  {"target":{"id":"CAT007","index":15,"toolComponent":{"name":"Categories"}}},
	  {"target":{"id":"CWE-79","toolComponent":{"name":"CWE"}}},
	  {"target":{"index":1,"toolComponent":{"index":1}}},
	  {"target":{"guid":"g-22","toolComponent":{"guid":"cwe-guid"}}}]}]}},
	 "taxonomies":[{"name":"Categories","taxa":[{"id":"CAT000"}]},{"name":"CWE","guid":"cwe-guid","taxa":[{"id":"22","guid":"g-22"},{"id":"611"}]}],
	 "results":[{"ruleId":"q1","ruleIndex":0,"message":{"text":"m"},"taxa":[{"id":"78","toolComponent":{"name":"CWE"}},{"id":"CAT001","toolComponent":{"name":"Categories"}}],
	  "properties":{"tags":["external/cwe/cwe-089"]},
	  "locations":[{"physicalLocation":{"artifactLocation":{"uri":"main.tf"},"region":{"startLine":3}}}]}]}`)
	if r := oneResult(t, kics); !slices.Equal(r.CWEs, []string{"CWE-22", "CWE-78", "CWE-79", "CWE-89", "CWE-611"}) {
		t.Errorf("KICS: %v, want CWE-22, 78, 79, 89, 611", r.CWEs)
	}
	// A category taxonomy is no CWE, whatever its ids look like.
	cats := sarifLog(`{"tool":{"driver":{"name":"T","rules":[{"id":"q","relationships":[{"target":{"id":"79","toolComponent":{"name":"OWASP"}}}]}]}},
	 "results":[{"ruleId":"q","message":{"text":"m"}}]}`)
	if r := oneResult(t, cats); len(r.CWEs) != 0 {
		t.Errorf("a taxonomy not named CWE gave %v", r.CWEs)
	}
}

// TestSuppressionStatuses: SARIF's suppression statuses. Accepted, or
// none (SARIF's default), dismisses unless another entry is under review;
// a rejected entry counts for nothing; an empty list is no suppression.
func TestSuppressionStatuses(t *testing.T) {
	for _, c := range []struct {
		suppressions string
		want         bool
	}{
		{`[{"kind":"inSource"}]`, true},
		{`[{"kind":"external","status":"accepted","justification":"test code"}]`, true},
		{`[{"kind":"external","status":"underReview"}]`, false},
		{`[{"kind":"inSource"},{"kind":"external","status":"underReview"}]`, false},
		{`[{"kind":"external","status":"rejected"}]`, false},
		{`[{"kind":"external","status":"rejected"},{"kind":"inSource","status":"accepted"}]`, true},
		{`[]`, false},
	} {
		r := oneResult(t, sarifLog(`{"tool":{"driver":{"name":"T"}},"results":[{"ruleId":"r","message":{"text":"m"},"suppressions":`+c.suppressions+`}]}`))
		if r.Suppressed != c.want {
			t.Errorf("%s: suppressed %v, want %v", c.suppressions, r.Suppressed, c.want)
		}
		want := finding.StatusActive
		if c.want {
			want = finding.StatusDismissed
		}
		if s := FindingStatus(transform.Defaults().Imports(), r); s != want {
			t.Errorf("%s: %s, want %s", c.suppressions, s, want)
		}
	}
}

// TestAbsolutePaths: a path is made repository-relative through
// originalUriBaseIds (bases chain), and an absolute one no base makes
// relative stays absolute, drive letter and all, never passed off as a
// path of the repository; \ becomes /.
func TestAbsolutePaths(t *testing.T) {
	bases := `"originalUriBaseIds":{
	  "REPOROOT":{"uri":"file:///C:/Users/Mary/code/TheProject/"},
	  "SRCROOT":{"uri":"src/","uriBaseId":"REPOROOT"},
	  "LIBROOT":{"uri":"lib/","uriBaseId":"SRCROOT"},
	  "CHECKOUT":{"uri":"file:///home/runner/work/app/app/"},
	  "NOURI":{"description":{"text":"the root, not said where"}}}`
	for _, c := range []struct{ uri, base, want string }{
		{"file:///C:/x", "", "C:/x"},
		{"file:///C:/Users/Mary/code/TheProject/src/a.c", "", "src/a.c"},
		{"file:///c:/users/mary/code/theproject/b.c", "", "b.c"},
		{"a.c", "SRCROOT", "src/a.c"},
		{"z.c", "LIBROOT", "src/lib/z.c"},
		{"file:///home/runner/work/app/app/pkg/x.go", "", "pkg/x.go"},
		{"/home/runner/work/app/app/pkg/y.go", "", "pkg/y.go"},
		{"file:///home/u/elsewhere.go", "", "/home/u/elsewhere.go"},
		{"/some/path/somefile-1.txt", "", "/some/path/somefile-1.txt"},
		{`C:\build\out\gen.cs`, "", "C:/build/out/gen.cs"},
		{`src\win\a.cs`, "", "src/win/a.cs"},
		{"file://server/share/f.c", "", "//server/share/f.c"},
		{"x.c", "NOURI", "x.c"},
		{"k.c", "%SRCROOT%", "k.c"},
		{"https://example.com/a.js", "", ""},
		{"../../outside.c", "SRCROOT", ""},
	} {
		base := ""
		if c.base != "" {
			base = `,"uriBaseId":"` + c.base + `"`
		}
		r := oneResult(t, sarifLog(`{"tool":{"driver":{"name":"T"}},`+bases+`,"results":[{"ruleId":"r","message":{"text":"m"},
		  "locations":[{"physicalLocation":{"artifactLocation":{"uri":`+fmt.Sprintf("%q", c.uri)+base+`},"region":{"startLine":1}}}]}]}`))
		if r.Path != c.want {
			t.Errorf("%s (%s): %q, want %q", c.uri, c.base, r.Path, c.want)
		}
	}
	// No blob link is built from an absolute path.
	im := transform.Defaults().Imports()
	asset := &finding.Document{ExternalAssetID: "https://github.com/o/r", VendorAssetID: "1"}
	asset.AssetDetail.RepositoryAssetClass.DefaultBranch = "main"
	d := Document(im, asset, 1, Scope{Tool: "T", ScannedAt: "2026-11-21T08:30:00Z"}, Result{ID: "x", Name: "n", Path: "/home/u/elsewhere.go", StartLine: 3}, time.Now())
	if f := d.Finding(); f.Location == nil || f.Location.Path != "/home/u/elsewhere.go" || f.FindingDetectionURL != "" {
		t.Errorf("absolute path: location %+v, detection url %q", f.Location, f.FindingDetectionURL)
	}
}

// TestRuleReferences: ruleIndex (or rule.index with rule.toolComponent)
// names the rule's metadata; ruleId stays the finding's rule, and comes
// from the rule when the result gives only an index.
func TestRuleReferences(t *testing.T) {
	driver := `"tool":{"driver":{"name":"T","rules":[
	  {"id":"CWE-78","shortDescription":{"text":"Command injection"},"defaultConfiguration":{"level":"error"},"properties":{"tags":["CWE-78"]}},
	  {"id":"R2","shortDescription":{"text":"Second"}}]},
	 "extensions":[{"name":"pack","rules":[{"id":"E1","shortDescription":{"text":"From the pack"},"properties":{"tags":["external/cwe/cwe-079"]}}]}]}`
	for _, c := range []struct{ result, ruleID, name, level string }{
		{`"ruleId":"CWE-78/api-handler","ruleIndex":0`, "CWE-78/api-handler", "Command injection", "error"},
		{`"ruleIndex":1`, "R2", "Second", "warning"},
		{`"rule":{"index":0,"toolComponent":{"index":0}}`, "E1", "From the pack", "warning"},
		{`"rule":{"id":"E1","index":0,"toolComponent":{"name":"pack"}}`, "E1", "From the pack", "warning"},
		{`"ruleId":"E1","ruleIndex":0`, "E1", "Command injection", "error"},
		{`"ruleId":"E1"`, "E1", "From the pack", "warning"},
		{`"ruleId":"R2/sub"`, "R2/sub", "Second", "warning"},
	} {
		r := oneResult(t, sarifLog(`{`+driver+`,"results":[{`+c.result+`,"message":{"text":"m"}}]}`))
		if r.RuleID != c.ruleID || r.Name != c.name || r.Level != c.level {
			t.Errorf("{%s}: rule %q name %q level %q, want %q %q %q", c.result, r.RuleID, r.Name, r.Level, c.ruleID, c.name, c.level)
		}
	}
}

// TestSeverityWithoutLevel: a result without a level, whose rule states
// none, is SARIF's default level warning: MEDIUM, whatever the map's
// default severity for words it does not know.
func TestSeverityWithoutLevel(t *testing.T) {
	r := oneResult(t, sarifLog(`{"tool":{"driver":{"name":"Bandit","rules":[{"id":"B104","name":"hardcoded_bind_all_interfaces"}]}},
	 "results":[{"ruleId":"B104","ruleIndex":0,"message":{"text":"Possible binding to all interfaces."}}]}`))
	im := transform.Defaults().Imports()
	im.DefaultSeverity = finding.SeverityLow
	if s := severity(im, r); s != finding.SeverityMedium {
		t.Errorf("severity %s, want MEDIUM", s)
	}
}

// TestAbsentFixesWhateverStatus: a complete scan that no longer lists a
// DISMISSED finding fixes it; its triage and mitigation stay on the
// document. A FIXED or REMOVED one is left as it is.
func TestAbsentFixesWhateverStatus(t *testing.T) {
	at := "2026-11-21T08:00:00Z"
	stored := &finding.Document{FindingKey: "sast.1.t.x", Findings: []finding.Finding{{FindingStatus: finding.StatusDismissed, LastFoundOn: &at,
		Mitigation: &finding.Mitigation{MitigationStrategy: "suppressed", Comment: "test code"}}}}
	d := Fixed(stored, "2026-11-22T08:00:00Z", time.Now())
	if d == nil || d.Finding().FindingStatus != finding.StatusFixed || d.Finding().Mitigation == nil || d.Finding().Mitigation.Comment != "test code" {
		t.Fatalf("a dismissed finding absent from a later scan: %+v", d)
	}
	for _, s := range []string{finding.StatusFixed, finding.StatusRemoved} {
		stored.Findings[0].FindingStatus = s
		if Fixed(stored, "2026-11-22T08:00:00Z", time.Now()) != nil {
			t.Errorf("a %s finding written again", s)
		}
	}
}

// TestManyRulesManyResults: rules are found by id through an index, not a
// scan of every rule per result — 50,000 results naming rules among
// 50,000 (none of them found) take well under a second, not the minutes a
// scan per result takes.
func TestManyRulesManyResults(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"T","rules":[`)
	const n = 50000
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"rule-%d"}`, i)
	}
	b.WriteString(`]}},"results":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"ruleId":"other-%d","message":{"text":"m"}}`, i)
	}
	b.WriteString(`]}]}`)
	start := time.Now()
	sum, err := Parse(FormatSARIF, []byte(b.String()), func(Result) error { return nil })
	if err != nil || sum.Results != n {
		t.Fatalf("%d results, %v", sum.Results, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("%d results against %d rules took %s", n, n, d)
	}
}
