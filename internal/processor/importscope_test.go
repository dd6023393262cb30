package processor

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/imports"
	"github.com/ghas-relay/ghas-relay/internal/scope"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

var allRules = []string{"path-traversal", "missing-authorization", "hardcoded-credential"} // HIGH, MEDIUM, CRITICAL

// helloWorldAlert is the code scanning sample on Codertocat/Hello-World,
// its repository carrying custom properties and a topic.
func helloWorldAlert(t *testing.T, props map[string]any) []byte {
	t.Helper()
	p := sample(t, "code_scanning_alert", "created.payload.json")
	r := p["repository"].(map[string]any)
	r["custom_properties"] = props
	r["topics"] = []string{"go"}
	return mustJSON(t, p)
}

// repositoryEvent is a repository event of Hello-World (action edited)
// with the given archived flag and a later updated_at.
func helloWorldEdited(t *testing.T, archived bool) []byte {
	t.Helper()
	p := sample(t, "code_scanning_alert", "created.payload.json")
	r := p["repository"].(map[string]any)
	r["archived"] = archived
	r["updated_at"] = "2026-12-01T00:00:00Z"
	r["topics"] = []string{"go"}
	delete(r, "custom_properties") // kept from the stored findings
	return mustJSON(t, map[string]any{"action": "edited", "repository": r, "installation": map[string]any{"id": 1}})
}

func statusCounts(e *env, id string) imports.Counts { return e.importStatus(id).Findings }

// TestImportsObeyTheScope: imported findings carry the asset fields of
// GitHub's findings of the repository; the type, severity, repository and
// custom property filters apply to them; out-of-scope results are never
// stored; stored ones that leave the scope are REMOVED (out-of-scope)
// once; archiving the repository under EXCLUDE_ARCHIVED removes them too.
func TestImportsObeyTheScope(t *testing.T) {
	e := newEnv(t)
	stop := e.start(e.newProcessor(Config{Scope: filter(t, scope.Settings{})}))
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", helloWorldAlert(t, map[string]any{"owner": "team-a", "business_unit": "Payments"}))
	e.waitDrained()
	github, ok := e.doc(finding.Key(finding.SAST, helloWorld, 10))
	if !ok {
		t.Fatal("the GitHub alert was not stored")
	}
	id := e.publishImport("Codertocat/Hello-World", "2026-11-21T08:00:00Z", importSARIF(t, "2026-11-21T08:00:00Z", allRules...), "")
	e.waitDrained()
	if c := statusCounts(e, id); c != (imports.Counts{New: 3}) {
		t.Fatalf("import without filters: %+v", c)
	}
	pt := e.importedDocs()["path-traversal"]
	if !reflect.DeepEqual(pt.AssetDetail.Ownership, github.AssetDetail.Ownership) || pt.AssetDetail.Ownership == nil ||
		!slices.Equal(pt.AssetDetail.Tags, github.AssetDetail.Tags) || !reflect.DeepEqual(pt.AssetDetail.CustomProperties, github.AssetDetail.CustomProperties) {
		t.Errorf("imported asset: ownership %+v tags %q props %v; GitHub's: %+v %q %v", pt.AssetDetail.Ownership, pt.AssetDetail.Tags, pt.AssetDetail.CustomProperties,
			github.AssetDetail.Ownership, github.AssetDetail.Tags, github.AssetDetail.CustomProperties)
	}
	stop()

	// Each step runs a processor with other filters and a later scan of
	// the three results.
	step := func(n int, st scope.Settings) imports.Counts {
		t.Helper()
		stop := e.start(e.newProcessor(Config{Scope: filter(t, st)}))
		defer stop()
		at := fmt.Sprintf("2026-11-22T%02d:00:00Z", n)
		id := e.publishImport("Codertocat/Hello-World", at, importSARIF(t, at, allRules...), "")
		e.waitDrained()
		return statusCounts(e, id)
	}
	status := func(rule string) (string, string) {
		f := e.importedDocs()[rule].Findings[0]
		return f.FindingStatus, f.RemovedReason
	}
	// MIN_SEVERITY HIGH: the MEDIUM finding leaves the scope.
	if c := step(1, scope.Settings{MinSeverity: "HIGH"}); c.OutOfScope != 1 || c.Changed != 2 {
		t.Errorf("MIN_SEVERITY=HIGH: %+v", c)
	}
	if s, r := status("missing-authorization"); s != finding.StatusRemoved || r != finding.RemovedOutOfScope {
		t.Errorf("MEDIUM finding under MIN_SEVERITY=HIGH: %s %q", s, r)
	}
	// Again: it stays REMOVED, nothing is written for it.
	if c := step(2, scope.Settings{MinSeverity: "HIGH"}); c.OutOfScope != 1 {
		t.Errorf("MIN_SEVERITY=HIGH again: %+v", c)
	}
	// Back in scope: ACTIVE again.
	if c := step(3, scope.Settings{}); c.OutOfScope != 0 {
		t.Errorf("no filter: %+v", c)
	}
	if s, _ := status("missing-authorization"); s != finding.StatusActive {
		t.Errorf("back in scope: %s", s)
	}
	// Every other filter takes the three out.
	for i, st := range []scope.Settings{
		{IncludeTypes: "sca,secret"},
		{ExcludeRepos: "codertocat/*"},
		{IncludeRepos: "other-org/*"},
		{IncludeProperties: "owner=team-b"},
	} {
		if c := step(4+2*i, st); c.OutOfScope != 3 || c.New+c.Changed != 0 {
			t.Errorf("%+v: %+v", st, c)
		}
		for _, rule := range allRules {
			if s, r := status(rule); s != finding.StatusRemoved || r != finding.RemovedOutOfScope {
				t.Errorf("%+v: %s is %s %q", st, rule, s, r)
			}
		}
		step(5+2*i, scope.Settings{}) // in scope again for the next filter
	}
	// A tool whose findings were never in scope stores nothing.
	stop = e.start(e.newProcessor(Config{Scope: filter(t, scope.Settings{ExcludeRepos: "codertocat/*"})}))
	before := len(e.messages(stream.FindingsStream, stream.AssetSubject(helloWorld)))
	p := imports.Params{Format: imports.FormatSARIF, Repository: "Codertocat/Hello-World", Tool: "Semgrep", ScannedAt: "2026-11-30T08:00:00Z", Complete: true}
	body := importSARIF(t, "2026-11-30T08:00:00Z", allRules...)
	msg := imports.Message(imports.ID(p, body), p, body, time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC))
	if _, err := e.js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	e.waitDrained()
	if c := statusCounts(e, imports.ID(p, body)); c != (imports.Counts{OutOfScope: 3}) {
		t.Errorf("out-of-scope tool: %+v", c)
	}
	if keys, _ := e.findings.ListKeysFiltered(t.Context(), fmt.Sprintf("sast.%d.semgrep.*", helloWorld)); keys != nil {
		for k := range keys.Keys() {
			t.Errorf("out-of-scope import stored %s", k)
		}
	}
	if got := len(e.messages(stream.FindingsStream, stream.AssetSubject(helloWorld))); got != before {
		t.Errorf("an out-of-scope import published the asset (%d messages)", got-before)
	}
	stop()

	// Archiving the repository under EXCLUDE_ARCHIVED removes the imports.
	e.start(e.newProcessor(Config{Scope: filter(t, scope.Settings{ExcludeArchived: "true"})}))
	e.publish(stream.WebhookSubject("repository"), "repository", helloWorldEdited(t, true))
	e.waitDrained()
	for _, rule := range allRules {
		if s, r := status(rule); s != finding.StatusRemoved || r != finding.RemovedOutOfScope {
			t.Errorf("archived: %s is %s %q", rule, s, r)
		}
	}
}

// TestRepositoryEventKeepsSources: a repository event refreshes every
// finding of a repository with imports, and each keeps the repository's
// full list of sources, as does the asset it publishes.
func TestRepositoryEventKeepsSources(t *testing.T) {
	e := newEnv(t)
	e.start(e.newProcessor(Config{Scope: filter(t, scope.Settings{})}))
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", helloWorldAlert(t, map[string]any{"owner": "team-a"}))
	e.waitDrained()
	github, _ := e.doc(finding.Key(finding.SAST, helloWorld, 10))
	e.publishImport("Codertocat/Hello-World", "2026-11-21T08:00:00Z", importSARIF(t, "2026-11-21T08:00:00Z", allRules...), "")
	e.waitDrained()
	want := []string{"Anthropic - Claude Security", github.Source}
	slices.Sort(want)

	e.publish(stream.WebhookSubject("repository"), "repository", helloWorldEdited(t, false))
	e.waitDrained()
	keys, err := e.findings.ListKeysFiltered(t.Context(), fmt.Sprintf("*.%d.>", helloWorld))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for k := range keys.Keys() {
		n++
		d, _ := e.doc(k)
		if d.AssetDetail.SourceUpdatedAt != "2026-12-01T00:00:00Z" {
			t.Errorf("%s: asset not refreshed (sourceUpdatedAt %s)", k, d.AssetDetail.SourceUpdatedAt)
		}
		if !slices.Equal(d.AssetDetail.Sources, want) {
			t.Errorf("%s: sources %q, want %q", k, d.AssetDetail.Sources, want)
		}
		if d.AssetDetail.Ownership == nil || d.AssetDetail.Ownership.Owner != "team-a" {
			t.Errorf("%s: ownership %+v", k, d.AssetDetail.Ownership)
		}
	}
	if n != 4 {
		t.Errorf("%d findings of the repository, want 4", n)
	}
	assets := e.messages(stream.FindingsStream, stream.AssetSubject(helloWorld))
	var asset finding.Document
	if err := json.Unmarshal(assets[len(assets)-1].Data, &asset); err != nil {
		t.Fatal(err)
	}
	if asset.AssetDetail.SourceUpdatedAt != "2026-12-01T00:00:00Z" || !slices.Equal(asset.AssetDetail.Sources, want) {
		t.Errorf("published asset: updated %s sources %q, want %q", asset.AssetDetail.SourceUpdatedAt, asset.AssetDetail.Sources, want)
	}
}
