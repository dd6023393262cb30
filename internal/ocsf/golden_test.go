package ocsf_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ocsf"
	"github.com/ghas-relay/ghas-relay/internal/ocsf/ocsftest"
)

var update = flag.Bool("update", false, "rewrite the golden OCSF events under testdata/golden")

// transformGolden holds the finding documents the transform's golden tests
// produce from real GitHub payloads; they are read, never written, here.
const transformGolden = "../transform/testdata/golden"

// goldenCase is one document revision and the event file it must give.
type goldenCase struct {
	name string // testdata/golden/<name>.json
	doc  string // the document, relative to this package
	rev  ocsf.Revision
}

func goldenCases() []goldenCase {
	tg := func(p string) string { return filepath.Join(transformGolden, p) }
	own := func(p string) string { return filepath.Join("testdata", "documents", p) }
	notFirst := func(prev string) ocsf.Revision { return ocsf.Revision{PreviousStatus: prev} }
	return []goldenCase{
		// GitHub code scanning: no CWE → the rule is the advisory.
		{"sast-created", tg("code_scanning_alert/created.payload.json"), ocsf.Revision{First: true}},
		{"sast-fixed", tg("code_scanning_alert/fixed.payload.json"), notFirst(finding.StatusActive)},
		{"sast-reopened", tg("code_scanning_alert/reopened.payload.json"), notFirst(finding.StatusDismissed)},
		// With a CWE, dismissed, previous status unknown → Close.
		{"sast-dismissed-cwe", tg("code_scanning_alert/rest/code-scanning-get-alert.json"), notFirst("")},
		{"sast-removed", own("sast-removed.json"), notFirst(finding.StatusActive)},
		{"sast-import", own("import-sarif.json"), ocsf.Revision{First: true}},
		// Dependabot: CVE with CVSS (and EPSS from REST).
		{"sca-created", tg("dependabot_alert/created.payload.json"), ocsf.Revision{First: true}},
		{"sca-fixed", tg("dependabot_alert/fixed.payload.json"), notFirst(finding.StatusActive)},
		{"sca-active-epss", tg("dependabot_alert/rest/dependabot-get-alert.json"), notFirst(finding.StatusActive)},
		// Closed to closed is an update, not a second Close.
		{"sca-dismissed", tg("dependabot_alert/rest/dependabot-update-alert.dismissed.json"), notFirst(finding.StatusFixed)},
		{"sca-ghsa-only", own("sca-ghsa-only.json"), ocsf.Revision{First: true}},
		// Secret scanning → Data Security Finding.
		{"secret-reopened", tg("secret_scanning_alert/reopened.payload.json"), notFirst(finding.StatusDismissed)},
		{"secret-dismissed", tg("secret_scanning_alert/rest/secret-scanning-list-alerts-for-org.0.json"), ocsf.Revision{First: true}},
		{"secret-fixed", own("secret-fixed.json"), notFirst(finding.StatusActive)},
	}
}

// loadSchema loads the OCSF schema kept under testdata.
func loadSchema(t testing.TB) *ocsftest.Schema {
	t.Helper()
	s, err := ocsftest.Load(ocsftest.Dir())
	if err != nil {
		t.Fatalf("load schema: %v", err)
	}
	return s
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readDoc(t testing.TB, path string) finding.Document {
	t.Helper()
	doc, err := finding.Decode(readFile(t, path))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// revisionTime is what the sink uses: the document's observedAt.
func revisionTime(t testing.TB, doc finding.Document) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, doc.ObservedAt)
	if err != nil {
		t.Fatalf("observedAt: %v", err)
	}
	return tm
}

// encode is the event as the sink sends it (ocsf.Encode), indented.
func encode(t testing.TB, doc finding.Document, rev ocsf.Revision) []byte {
	t.Helper()
	b, err := ocsf.Encode(doc, rev)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatal(err)
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// TestGolden converts each golden document revision and compares the
// event with testdata/golden/<name>.json (rewritten with -update); every
// event must validate against the OCSF 1.6.0 schema.
func TestGolden(t *testing.T) {
	s := loadSchema(t)
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			doc := readDoc(t, c.doc)
			c.rev.Time = revisionTime(t, doc)
			got := encode(t, doc, c.rev)
			if err := s.Validate(got); err != nil {
				t.Errorf("event does not validate:\n%v", err)
			}
			path := filepath.Join("testdata", "golden", c.name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs (run with -update after reviewing):\ngot:\n%s", path, got)
			}
		})
	}
}

// importsGolden holds the documents the imports package's golden tests
// produce from sample SARIF and CSV files (JSON arrays of documents).
const importsGolden = "../imports/testdata/golden"

// TestEveryImportGoldenValidates converts every imported document of the
// imports package's golden files, in each kind of revision.
func TestEveryImportGoldenValidates(t *testing.T) {
	s := loadSchema(t)
	files, _ := filepath.Glob(filepath.Join(importsGolden, "*.json"))
	n := 0
	for _, p := range files {
		var docs []json.RawMessage
		if err := json.Unmarshal(readFile(t, p), &docs); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for i, raw := range docs {
			doc, err := finding.Decode(raw)
			if err != nil {
				t.Fatalf("%s[%d]: %v", p, i, err)
			}
			n++
			for _, rev := range []ocsf.Revision{{First: true}, {PreviousStatus: finding.StatusActive}} {
				rev.Time = revisionTime(t, doc)
				b, err := ocsf.Encode(doc, rev)
				if err != nil {
					t.Errorf("%s[%d]: %v", p, i, err)
					continue
				}
				if err := s.Validate(b); err != nil {
					t.Errorf("%s[%d]: %v", p, i, err)
				}
			}
		}
	}
	if n == 0 {
		t.Skip("no import golden documents")
	}
}

// TestEveryTransformGoldenValidates converts every document the transform
// produces from the sample payloads, in each kind of revision.
func TestEveryTransformGoldenValidates(t *testing.T) {
	s := loadSchema(t)
	docs, err := filepath.Glob(filepath.Join(transformGolden, "*", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	rest, _ := filepath.Glob(filepath.Join(transformGolden, "*", "rest", "*.json"))
	docs = append(docs, rest...)
	own, _ := filepath.Glob(filepath.Join("testdata", "documents", "*.json"))
	docs = append(docs, own...)
	if len(docs) < 20 {
		t.Fatalf("found only %d golden documents", len(docs))
	}
	for _, p := range docs {
		doc := readDoc(t, p)
		for _, rev := range []ocsf.Revision{{First: true}, {PreviousStatus: finding.StatusActive}, {}} {
			rev.Time = revisionTime(t, doc)
			b, err := ocsf.Encode(doc, rev)
			if err != nil {
				t.Errorf("%s: %v", p, err)
				continue
			}
			if err := s.Validate(b); err != nil {
				t.Errorf("%s (%+v): %v", p, rev, err)
			}
		}
	}
}
