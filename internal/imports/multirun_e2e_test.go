package imports_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/imports"
)

// twoTools is a log with a run of Alpha Scanner and a run of Beta Scanner;
// each result is a rule at a line of a.go, and the same rule at the same
// line in both runs would get the same id.
func twoTools(alpha, beta []string) []byte {
	run := func(tool string, rules []string) string {
		var rs []string
		for _, r := range rules {
			rs = append(rs, fmt.Sprintf(`{"ruleId":%q,"level":"error","message":{"text":"found"},
			  "locations":[{"physicalLocation":{"artifactLocation":{"uri":"a.go"},"region":{"startLine":7}}}]}`, r))
		}
		return fmt.Sprintf(`{"tool":{"driver":{"name":%q,"organization":%q}},"results":[%s]}`, tool, strings.Fields(tool)[0]+" Inc", strings.Join(rs, ","))
	}
	var runs []string
	if alpha != nil {
		runs = append(runs, run("Alpha Scanner", alpha))
	}
	if beta != nil {
		runs = append(runs, run("Beta Scanner", beta))
	}
	return []byte(`{"version":"2.1.0","runs":[` + strings.Join(runs, ",") + `]}`)
}

// TestEveryRunCountsOnItsOwn: a log with runs of two tools gives one
// finding per result of each run, attributed to its run's tool (key,
// vendor, detectionMethod) — the same rule at the same place in both runs
// are two findings. Each tool's runs are a scan of its own scope: a later
// log settles each scope by what its run lists, the status counts every
// scan, a repeat of the log is a duplicate only while it is the latest
// import of every scope it scans, and a tool parameter that would merge
// the runs is refused.
func TestEveryRunCountsOnItsOwn(t *testing.T) {
	p := startPipeline(t)
	docs := func() map[string]finding.Document {
		out := map[string]finding.Document{}
		for _, d := range allFindings(t, p.kvFindings) {
			if d.Finding().DetectionMethod != "" && strings.HasSuffix(d.Finding().DetectionMethod, "Scanner") {
				out[d.Finding().DetectionMethod+" "+d.Finding().RuleID] = d
			}
		}
		return out
	}
	post := func(body []byte, query, want string) imports.Status {
		t.Helper()
		acc := postImport(t, p.ts.URL, query, "application/sarif+json", body)
		if acc.Status != want {
			t.Fatalf("POST answered %+v, want %s", acc, want)
		}
		return waitProcessed(t, p.ts.URL, acc.Import)
	}

	st := post(twoTools([]string{"R1", "R2"}, []string{"R1"}), "", "accepted")
	if st.Results != 3 || st.Findings.New != 3 || st.Tool != "Alpha Scanner, Beta Scanner" {
		t.Errorf("first log: %+v", st)
	}
	got := docs()
	if len(got) != 3 {
		t.Fatalf("%d findings, want 3: %v", len(got), got)
	}
	for key, d := range got {
		tool := strings.TrimSuffix(key, " R1")
		tool = strings.TrimSuffix(tool, " R2")
		if !strings.Contains(d.FindingKey, "."+finding.ToolSlug(tool)+".") || d.VendorName != strings.Fields(tool)[0]+" Inc" || d.Finding().ImportScope.Tool != tool {
			t.Errorf("%s: key %s vendor %s scope %+v", key, d.FindingKey, d.VendorName, d.Finding().ImportScope)
		}
	}

	// Alpha no longer lists R2; Beta lists R1 and a new R2.
	second := twoTools([]string{"R1"}, []string{"R1", "R2"})
	st = post(second, "", "accepted")
	if st.Results != 3 || st.Findings.New != 1 || st.Findings.Fixed != 1 || st.Findings.Changed != 2 {
		t.Errorf("second log: %+v", st)
	}
	want := map[string]string{"Alpha Scanner R1": finding.StatusActive, "Alpha Scanner R2": finding.StatusFixed,
		"Beta Scanner R1": finding.StatusActive, "Beta Scanner R2": finding.StatusActive}
	got = docs()
	for k, s := range want {
		if d, ok := got[k]; !ok || d.Findings[0].FindingStatus != s {
			t.Errorf("after the second log %s is %+v, want %s", k, d.Findings, s)
		}
	}
	post(second, "", "duplicate")

	// A log of Beta alone is a scan of Beta's scope only.
	post(twoTools(nil, []string{"R1"}), "", "accepted")
	got = docs()
	if s := got["Beta Scanner R2"].Findings[0].FindingStatus; s != finding.StatusFixed {
		t.Errorf("Beta's R2 after a Beta scan without it: %s", s)
	}
	if s := got["Alpha Scanner R1"].Findings[0].FindingStatus; s != finding.StatusActive {
		t.Errorf("Alpha's R1 after a Beta scan: %s", s)
	}
	// The second log is no longer the latest of Beta's scope: a new scan.
	post(second, "", "accepted")

	// A tool parameter would merge the two tools' findings.
	req, _ := http.NewRequest(http.MethodPost, p.ts.URL+"/imports?repository=Codertocat/Hello-World&tool=Gamma", bytes.NewReader(second))
	req.Header.Set("Authorization", "Bearer t0k")
	req.Header.Set("Content-Type", "application/sarif+json")
	var e struct{ Error string }
	if code := do(t, req, &e); code != http.StatusBadRequest || !strings.Contains(e.Error, "Alpha Scanner, Beta Scanner") {
		t.Errorf("tool parameter on a log of two tools: %d %q", code, e.Error)
	}
}
