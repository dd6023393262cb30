package imports

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/transform"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// samples are the files of testdata/imports with their format and tool
// parameter (as a caller would give them).
func samples() []struct{ file, format, tool string } {
	return []struct{ file, format, tool string }{
		{"codeql.sarif", FormatSARIF, ""},
		{"semgrep.sarif", FormatSARIF, ""},
		{"claude-security.sarif", FormatSARIF, ""},
		{"codex-security.csv", FormatCodexCSV, ""},
		{"generic.csv", FormatCSV, "Snyk Code"},
	}
}

func readSample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "imports", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testAsset is the repository asset of the webhook samples (the same
// typed asset GitHub's alerts use).
func testAsset(t testing.TB) finding.Document {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "webhooks", "code_scanning_alert", "created.payload.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Repository json.RawMessage `json:"repository"`
	}
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	a, err := transform.Defaults().Asset(finding.SAST, ev.Repository, time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestGolden maps every sample file and compares the documents with the
// golden files: they are the reviewed specification of the mapping.
func TestGolden(t *testing.T) {
	asset := testAsset(t)
	asset.AssetDetail.Sources = []string{"GitHub Advanced Security - Code Security"}
	im := transform.Defaults().Imports()
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	repoID, err := strconv.ParseInt(asset.VendorAssetID, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples() {
		t.Run(s.file, func(t *testing.T) {
			data := readSample(t, s.file)
			sum, err := Parse(s.format, data, func(Result) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			tool := s.tool
			if tool == "" {
				tool = sum.Tool
			}
			sc := Scope{Tool: tool, Organization: sum.Organization, Category: sum.Category, Ref: sum.Ref, Commit: sum.Commit, ScannedAt: "2026-11-21T08:30:00Z"}
			var docs []finding.Document
			if _, err := Parse(s.format, data, func(r Result) error {
				docs = append(docs, Document(im, &asset, repoID, sc, r, now))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(docs) != sum.Results || len(docs) == 0 {
				t.Fatalf("%d documents for %d results", len(docs), sum.Results)
			}
			got, _ := json.MarshalIndent(docs, "", "  ")
			got = append(got, '\n')
			path := filepath.Join("testdata", "golden", strings.TrimSuffix(s.file, filepath.Ext(s.file))+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("documents differ from %s (go test -update rewrites it after review):\n%s", path, got)
			}
		})
	}
}
