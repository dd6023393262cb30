package imports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/transform"
)

// The corpus: SARIF logs real tools wrote, gathered from public
// repositories (testdata/imports/corpus; its README names each log's
// source, commit and licence), each with an expectation written by hand
// from the contract, not from this code (<name>.expect.json). Where the
// code and an expectation disagree, the code changes.

// CorpusExpect is a log's expectation: the import's query parameters
// (each starting with &), what the POST answers, and per scan and per
// finding the parts the contract decides.
type CorpusExpect struct {
	Query    string          `json:"query"`
	Status   string          `json:"status"`
	Results  int             `json:"results"`
	Scans    []CorpusScan    `json:"scans"`
	Findings []CorpusFinding `json:"findings"`
}

// CorpusScan is one scan of a log: a tool (its slug in finding keys, its
// vendor) and a category.
type CorpusScan struct {
	Tool     string `json:"tool"`
	Slug     string `json:"slug"`
	Vendor   string `json:"vendor"`
	Category string `json:"category"`
}

// CorpusFinding is what an expectation says of one finding.
type CorpusFinding struct {
	Slug           string   `json:"slug"`
	RuleID         string   `json:"ruleId"`
	Path           string   `json:"path"`
	StartLine      int      `json:"startLine"`
	Severity       string   `json:"severity"`
	Status         string   `json:"status"`
	CWEIDs         []string `json:"cweIds"`
	CorrelationKey bool     `json:"correlationKey"`
}

// CorpusCase is one log of the corpus with its expectation.
type CorpusCase struct {
	Name   string
	Body   []byte
	Expect CorpusExpect
}

// CorpusCases reads the corpus.
func CorpusCases(t testing.TB) []CorpusCase {
	t.Helper()
	dir := filepath.Join("..", "..", "testdata", "imports", "corpus")
	logs, err := filepath.Glob(filepath.Join(dir, "*.sarif"))
	if err != nil || len(logs) < 10 {
		t.Fatalf("corpus: %d logs, %v", len(logs), err)
	}
	var out []CorpusCase
	for _, p := range logs {
		name := strings.TrimSuffix(filepath.Base(p), ".sarif")
		body, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, name+".expect.json"))
		if err != nil {
			t.Fatalf("%s: no expectation: %v", name, err)
		}
		var e CorpusExpect
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("%s.expect.json: %v", name, err)
		}
		out = append(out, CorpusCase{Name: name, Body: body, Expect: e})
	}
	return out
}

// CorpusFindingOf is what an expectation says of a finding document.
func CorpusFindingOf(d finding.Document) CorpusFinding {
	f := d.Finding()
	_, _, slug, _, _ := finding.ParseImportKey(d.FindingKey)
	c := CorpusFinding{Slug: slug, RuleID: f.RuleID, Severity: f.Severity, Status: f.FindingStatus, CWEIDs: []string{}, CorrelationKey: f.CorrelationKey != ""}
	if f.Location != nil {
		c.Path, c.StartLine = f.Location.Path, f.Location.StartLine
	}
	if f.FindingType != nil && f.FindingType.Vulnerability != nil && f.FindingType.Vulnerability.CWEIDs != nil {
		c.CWEIDs = f.FindingType.Vulnerability.CWEIDs
	}
	return c
}

// SameFindings compares two lists of findings as multisets: "" when they
// hold the same, else what differs.
func SameFindings(got, want []CorpusFinding) string {
	key := func(c CorpusFinding) string { b, _ := json.Marshal(c); return string(b) }
	count := map[string]int{}
	for _, w := range want {
		count[key(w)]++
	}
	var extra, missing []string
	for _, g := range got {
		if count[key(g)] == 0 {
			extra = append(extra, key(g))
			continue
		}
		count[key(g)]--
	}
	for k, n := range count {
		for range n {
			missing = append(missing, k)
		}
	}
	if len(extra)+len(missing) == 0 {
		return ""
	}
	slices.Sort(extra)
	slices.Sort(missing)
	return fmt.Sprintf("%d findings, want %d\n  unexpected:\n    %s\n  missing:\n    %s", len(got), len(want),
		strings.Join(extra, "\n    "), strings.Join(missing, "\n    "))
}

// TestCorpus takes every log of the corpus the way an import goes — the
// receiver's streaming validation and parameters, the message's headers,
// the processor's scans and documents — and compares what comes out with
// the hand-written expectation. TestCorpusEndToEnd does the same through
// the receiver, JetStream and a real processor.
func TestCorpus(t *testing.T) {
	im := transform.Defaults().Imports()
	asset := testAsset(t)
	repoID, _ := strconv.ParseInt(asset.VendorAssetID, 10, 64)
	received := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	for _, c := range CorpusCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			// The receiver.
			q, err := url.ParseQuery("repository=o/r" + c.Expect.Query)
			if err != nil {
				t.Fatal(err)
			}
			p, err := ParseQuery(q, FormatSARIF, received)
			if err != nil {
				t.Fatal(err)
			}
			sum, err := ParseReader(FormatSARIF, bytes.NewReader(c.Body), func(Result) error { return nil })
			if err != nil {
				t.Fatalf("validation: %v", err)
			}
			if _, herr := plan(&p, sum, received); herr != nil {
				t.Fatal(herr)
			}
			if sum.Results != c.Expect.Results {
				t.Errorf("%d results, want %d", sum.Results, c.Expect.Results)
			}
			// The message.
			_, p = FromHeaders(Message("0123456789abcdef0123456789abcdef", p, c.Body, received).Header)
			// The processor.
			f, err := Open(FormatSARIF, c.Body)
			if err != nil {
				t.Fatal(err)
			}
			scans, err := Scans(p, f.Summary)
			if err != nil {
				t.Fatal(err)
			}
			var gotScans []CorpusScan
			for _, sc := range scans {
				gotScans = append(gotScans, CorpusScan{Tool: sc.Tool, Slug: finding.ToolSlug(sc.Tool), Vendor: im.Vendor(sc.Tool, sc.Organization).VendorName, Category: sc.Category})
			}
			if !slices.Equal(gotScans, c.Expect.Scans) {
				t.Errorf("scans %+v, want %+v", gotScans, c.Expect.Scans)
			}
			scanOf := ScanOfRun(scans, len(f.Runs))
			keys := map[string]bool{}
			var got []CorpusFinding
			if err := f.Each(func(r Result) error {
				if scanOf[r.Run] < 0 {
					return nil
				}
				sc := scans[scanOf[r.Run]]
				d := Document(im, &asset, repoID, sc.Scope, r, received)
				if keys[d.FindingKey] {
					return nil // the same finding twice: one document
				}
				keys[d.FindingKey] = true
				if fd := d.Finding(); fd.DetectionMethod != sc.Tool || d.VendorName != im.Vendor(sc.Tool, sc.Organization).VendorName {
					t.Errorf("%s: detectionMethod %q vendor %q in a scan of %q", d.FindingKey, fd.DetectionMethod, d.VendorName, sc.Tool)
				}
				got = append(got, CorpusFindingOf(d))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if diff := SameFindings(got, c.Expect.Findings); diff != "" {
				t.Error(diff)
			}
		})
	}
}
