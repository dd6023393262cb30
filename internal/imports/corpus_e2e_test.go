package imports_test

import (
	"strings"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/imports"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// TestCorpusEndToEnd posts every log of the corpus to /imports — each on
// a ref of its own, so that each is a scan of scopes of its own — lets a
// real processor apply it on in-process JetStream, and compares the
// status and the stored findings with the log's hand-written expectation
// (corpus_test.go).
func TestCorpusEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	p := startPipeline(t)
	cases := imports.CorpusCases(t)
	ids := map[string]string{}
	for _, c := range cases {
		acc := postImport(t, p.ts.URL, c.Expect.Query+"&ref=corpus-"+c.Name, "application/sarif+json", c.Body)
		if acc.Status != c.Expect.Status || acc.Results != c.Expect.Results {
			t.Errorf("%s: POST answered %+v, want %s with %d results", c.Name, acc, c.Expect.Status, c.Expect.Results)
		}
		ids[c.Name] = acc.Import
	}
	byRef := map[string][]finding.Document{}
	for _, c := range cases {
		st := waitProcessed(t, p.ts.URL, ids[c.Name])
		var tools []string
		for _, sc := range c.Expect.Scans {
			tools = append(tools, sc.Tool)
		}
		if st.Status != imports.StatusProcessed || st.Results != c.Expect.Results || st.Findings.New != len(c.Expect.Findings) || st.Tool != strings.Join(tools, ", ") {
			t.Errorf("%s: status %+v, want processed, %d results, %d new, tool %q", c.Name, st, c.Expect.Results, len(c.Expect.Findings), strings.Join(tools, ", "))
		}
	}
	for _, d := range allFindings(t, p.kvFindings) {
		if d.Origin == stream.OriginImport && d.Finding().ImportScope != nil {
			ref := d.Finding().ImportScope.Ref
			byRef[ref] = append(byRef[ref], d)
		}
	}
	for _, c := range cases {
		var got []imports.CorpusFinding
		vendors := map[string]string{}
		for _, sc := range c.Expect.Scans {
			vendors[sc.Slug] = sc.Vendor
		}
		for _, d := range byRef["refs/heads/corpus-"+c.Name] {
			cf := imports.CorpusFindingOf(d)
			if v := vendors[cf.Slug]; d.VendorName != v {
				t.Errorf("%s: %s has vendor %q, want %q", c.Name, d.FindingKey, d.VendorName, v)
			}
			got = append(got, cf)
		}
		if diff := imports.SameFindings(got, c.Expect.Findings); diff != "" {
			t.Errorf("%s: %s", c.Name, diff)
		}
	}
}
