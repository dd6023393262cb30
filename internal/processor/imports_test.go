package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/imports"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

const helloWorld = int64(337911632) // Codertocat/Hello-World of the webhook samples

// importSARIF returns the Claude Security sample with only the results
// whose ruleId is listed, dated endTime.
func importSARIF(t *testing.T, endTime string, rules ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "imports", "claude-security.sarif"))
	if err != nil {
		t.Fatal(err)
	}
	var log map[string]any
	if err := json.Unmarshal(b, &log); err != nil {
		t.Fatal(err)
	}
	run := log["runs"].([]any)[0].(map[string]any)
	var keep []any
	for _, r := range run["results"].([]any) {
		if slices.Contains(rules, r.(map[string]any)["ruleId"].(string)) {
			keep = append(keep, r)
		}
	}
	run["results"] = keep
	run["invocations"] = []any{map[string]any{"executionSuccessful": true, "endTimeUtc": endTime}}
	out, _ := json.MarshalIndent(log, "", " ")
	return out
}

// publishImport stores an import as the receiver would; nonce makes a
// message of its own for the same import id (a stored duplicate beyond
// JetStream's window).
func (e *env) publishImport(repo, scannedAt string, body []byte, nonce string) string {
	e.t.Helper()
	p := imports.Params{Format: imports.FormatSARIF, Repository: repo, Tool: "Claude Security", Organization: "Anthropic",
		Category: "claude-security/full-scan/", ScannedAt: scannedAt, Complete: true}
	id := imports.ID(p, body)
	msg := imports.Message(id, p, body, time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))
	msg.Header.Set(stream.HeaderMsgID, "import:"+id+nonce)
	if _, err := e.js.PublishMsg(context.Background(), msg); err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *env) importStatus(id string) imports.Status {
	e.t.Helper()
	kv, err := e.js.KeyValue(context.Background(), stream.ImportsBucket)
	if err != nil {
		e.t.Fatal(err)
	}
	st, ok, err := imports.GetStatus(context.Background(), kv, id)
	if err != nil || !ok {
		e.t.Fatalf("status of %s: %v %v", id, ok, err)
	}
	return st
}

func (e *env) importedDocs() map[string]finding.Document {
	e.t.Helper()
	out := map[string]finding.Document{}
	lister, err := e.findings.ListKeysFiltered(context.Background(), fmt.Sprintf("sast.%d.claude-security.*", helloWorld))
	if err != nil {
		e.t.Fatal(err)
	}
	for k := range lister.Keys() {
		d, _ := e.doc(k)
		out[d.Findings[0].RuleID] = d
	}
	return out
}

// TestImportLifecycle drives imports of one scope through the processor:
// the first import creates findings on GitHub's asset, a re-import
// publishes nothing, a later scan without a finding fixes it, an older
// scan arriving late changes nothing, a finding that returns is ACTIVE
// again with its first-found date kept.
func TestImportLifecycle(t *testing.T) {
	e := newEnv(t)
	e.start(e.newProcessor(Config{}))
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", mustJSON(t, sample(t, "code_scanning_alert", "created.payload.json")))
	e.waitDrained()
	github, ok := e.doc(finding.Key(finding.SAST, helloWorld, 10))
	if !ok {
		t.Fatal("the GitHub alert was not stored")
	}
	findingMsgs := func() int {
		return len(e.messages(stream.FindingsStream, stream.FindingSubject(finding.SAST, helloWorld)))
	}
	before := findingMsgs()

	all := []string{"path-traversal", "missing-authorization", "hardcoded-credential"}
	first := e.publishImport("codertocat/hello-world", "2026-11-21T08:30:00Z", importSARIF(t, "2026-11-21T08:30:00Z", all...), "")
	e.waitDrained()
	st := e.importStatus(first)
	if st.Status != imports.StatusProcessed || st.Results != 3 || st.Findings != (imports.Counts{New: 3}) {
		t.Fatalf("first import: %+v", st)
	}
	docs := e.importedDocs()
	pt := docs["path-traversal"]
	if len(docs) != 3 || pt.ExternalAssetID != github.ExternalAssetID || pt.VendorAssetID != github.VendorAssetID || pt.AssetDetail.FullName != github.AssetDetail.FullName {
		t.Fatalf("imported findings not on GitHub's asset: %d docs, %+v", len(docs), pt)
	}
	wantSources := []string{"Anthropic - Claude Security", github.Source}
	slices.Sort(wantSources)
	if !slices.Equal(pt.AssetDetail.Sources, wantSources) || pt.VendorName != "Anthropic" || pt.Origin != stream.OriginImport {
		t.Errorf("attribution: sources %v vendor %q origin %q", pt.AssetDetail.Sources, pt.VendorName, pt.Origin)
	}
	assets := e.messages(stream.FindingsStream, stream.AssetSubject(helloWorld))
	if len(assets) == 0 {
		t.Fatal("no asset published when the repository gained a source")
	}
	var asset finding.Document
	_ = json.Unmarshal(assets[len(assets)-1].Data, &asset)
	if !slices.Equal(asset.AssetDetail.Sources, wantSources) {
		t.Errorf("asset sources %v, want %v", asset.AssetDetail.Sources, wantSources)
	}
	if got := findingMsgs() - before; got != 3 {
		t.Fatalf("%d finding messages for 3 new imported findings", got)
	}

	// The same import stored again, and the same file re-encoded (another
	// import id, same content): nothing is published.
	e.publishImport("codertocat/hello-world", "2026-11-21T08:30:00Z", importSARIF(t, "2026-11-21T08:30:00Z", all...), "-again")
	body := importSARIF(t, "2026-11-21T08:30:00Z", all...)
	reencoded := e.publishImport("Codertocat/Hello-World", "2026-11-21T08:30:00Z", append(body, '\n'), "")
	e.waitDrained()
	if st := e.importStatus(reencoded); st.Findings != (imports.Counts{Unchanged: 3}) {
		t.Errorf("re-import: %+v", st.Findings)
	}
	if got := findingMsgs() - before; got != 3 {
		t.Fatalf("re-imports published %d more finding messages", got-3)
	}

	// A later complete scan without missing-authorization fixes it.
	later := e.publishImport("Codertocat/Hello-World", "2026-11-22T08:30:00Z", importSARIF(t, "2026-11-22T08:30:00Z", "path-traversal", "hardcoded-credential"), "")
	e.waitDrained()
	if st := e.importStatus(later); st.Findings.Fixed != 1 || st.Findings.Changed != 2 {
		t.Errorf("later scan: %+v", st.Findings)
	}
	docs = e.importedDocs()
	ma := docs["missing-authorization"].Findings[0]
	if ma.FindingStatus != finding.StatusFixed || ma.LastFixedOn == nil || *ma.LastFixedOn != "2026-11-22T08:30:00Z" {
		t.Errorf("absent finding: status %s lastFixedOn %v", ma.FindingStatus, ma.LastFixedOn)
	}
	if f := docs["path-traversal"].Findings[0]; *f.FirstFoundOn != "2026-11-21T08:30:00Z" || *f.LastFoundOn != "2026-11-22T08:30:00Z" {
		t.Errorf("listed again: first %s last %s", *f.FirstFoundOn, *f.LastFoundOn)
	}
	afterLater := findingMsgs()

	// An older scan arriving late changes nothing.
	e.publishImport("Codertocat/Hello-World", "2026-11-21T12:00:00Z", importSARIF(t, "2026-11-21T12:00:00Z", all...), "")
	e.waitDrained()
	if got := findingMsgs(); got != afterLater {
		t.Errorf("an older scan published %d finding messages", got-afterLater)
	}
	if f := e.importedDocs()["missing-authorization"].Findings[0]; f.FindingStatus != finding.StatusFixed {
		t.Errorf("an older scan reopened a fixed finding: %s", f.FindingStatus)
	}

	// It comes back: ACTIVE again, first found at the first scan.
	e.publishImport("Codertocat/Hello-World", "2026-11-23T08:30:00Z", importSARIF(t, "2026-11-23T08:30:00Z", all...), "")
	e.waitDrained()
	f := e.importedDocs()["missing-authorization"].Findings[0]
	if f.FindingStatus != finding.StatusActive || *f.FirstFoundOn != "2026-11-21T08:30:00Z" || *f.LastFoundOn != "2026-11-23T08:30:00Z" {
		t.Errorf("returned finding: %s first %s last %s", f.FindingStatus, *f.FirstFoundOn, *f.LastFoundOn)
	}
}

// TestImportUnknownRepository: a repository the system cannot resolve
// fails the import with the reason and dead-letters it.
func TestImportUnknownRepository(t *testing.T) {
	e := newEnv(t)
	e.start(e.newProcessor(Config{}))
	id := e.publishImport("nobody/nothing", "2026-11-21T08:30:00Z", importSARIF(t, "2026-11-21T08:30:00Z", "path-traversal"), "")
	e.waitDrained()
	st := e.importStatus(id)
	if st.Status != imports.StatusFailed || !strings.Contains(st.Error, "nobody/nothing") {
		t.Errorf("status %+v, want failed naming the repository", st)
	}
	dlq := e.messages(stream.DLQStream, "")
	if len(dlq) != 1 || !strings.Contains(dlq[0].Header.Get(stream.HeaderError), "repository not found") {
		t.Errorf("dead letters: %d", len(dlq))
	}
}
