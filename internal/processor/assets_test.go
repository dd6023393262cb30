package processor

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/scope"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

func filter(t *testing.T, st scope.Settings) *scope.Filter {
	t.Helper()
	if st.OwnerProperty == "" {
		st.OwnerProperty = scope.DefaultOwnerProperty
	}
	if st.BusinessEntityProperty == "" {
		st.BusinessEntityProperty = scope.DefaultBusinessEntityProperty
	}
	f, err := st.Filter()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// alertIn is a code scanning event of alert number in repository 1296269
// (octo-org/api) with rule severity sev at minute m, the repository
// carrying topics and custom properties (nil: no custom_properties field).
func alertIn(t *testing.T, number int, sev string, minute int, props map[string]any) []byte {
	t.Helper()
	var p map[string]any
	if err := jsonUnmarshal(codeScanningEvent(t, number, "created", minute), &p); err != nil {
		t.Fatal(err)
	}
	p["alert"].(map[string]any)["rule"].(map[string]any)["severity"] = sev
	r := p["repository"].(map[string]any)
	r["id"] = 1296269
	r["name"], r["full_name"] = "api", "octo-org/api"
	r["topics"] = []string{"payments", "go"}
	r["updated_at"] = "2026-01-01T00:00:00Z"
	delete(r, "custom_properties")
	if props != nil {
		r["custom_properties"] = props
	}
	return mustJSON(t, p)
}

func TestAssetCarriesOwnershipTagsAndProperties(t *testing.T) {
	e := newEnv(t)
	e.start(e.newProcessor(Config{Workers: 1, Scope: filter(t, scope.Settings{})}))
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert",
		alertIn(t, 1, "error", 1, map[string]any{"owner": "team-a", "business_unit": "Payments", "langs": []string{"go", "sql"}, "unset": nil}))
	e.waitDrained()
	d, ok := e.doc(finding.Key(finding.SAST, 1296269, 1))
	if !ok {
		t.Fatal("finding not stored")
	}
	want := []string{"business_unit:Payments", "langs:go", "langs:sql", "owner:team-a", "topic:go", "topic:payments"}
	if !reflect.DeepEqual(d.AssetDetail.Tags, want) {
		t.Errorf("tags %q, want %q", d.AssetDetail.Tags, want)
	}
	if d.AssetDetail.Ownership == nil || *d.AssetDetail.Ownership != (finding.Ownership{Owner: "team-a", BusinessEntity: "Payments"}) {
		t.Errorf("ownership %+v", d.AssetDetail.Ownership)
	}
	if len(d.AssetDetail.CustomProperties) != 3 || !d.AssetDetail.CustomProperties["langs"].Multi {
		t.Errorf("customProperties %+v", d.AssetDetail.CustomProperties)
	}

	// A later event whose repository lacks custom_properties keeps them.
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", alertIn(t, 1, "warning", 2, nil))
	e.waitDrained()
	d, _ = e.doc(finding.Key(finding.SAST, 1296269, 1))
	if d.Finding().Severity != finding.SeverityMedium || d.AssetDetail.Ownership == nil || d.AssetDetail.Ownership.Owner != "team-a" {
		t.Errorf("after an event without properties: severity %s ownership %+v", d.Finding().Severity, d.AssetDetail.Ownership)
	}
}

func TestPropertyChangeUpdatesEveryFindingOfTheRepository(t *testing.T) {
	e := newEnv(t)
	e.start(e.newProcessor(Config{Workers: 2, Scope: filter(t, scope.Settings{})}))
	props := map[string]any{"owner": "team-a", "env": "prod"}
	for n := 1; n <= 3; n++ {
		e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", alertIn(t, n, "error", n, props))
	}
	// Another repository's finding must not change.
	other := sample(t, "dependabot_alert", "created.payload.json")
	e.publish(stream.WebhookSubject("dependabot_alert"), "dependabot_alert", mustJSON(t, other))
	e.waitDrained()
	before := len(e.messages(stream.FindingsStream, "ghas.findings."))

	ev := map[string]any{
		"action":              "updated",
		"repository":          map[string]any{"id": 1296269, "name": "api", "full_name": "octo-org/api", "html_url": "https://github.com/octo-org/api", "owner": map[string]any{"login": "octo-org"}, "topics": []string{"go"}},
		"new_property_values": []map[string]any{{"property_name": "owner", "value": "team-b"}, {"property_name": "regions", "value": []string{"eu", "us"}}, {"property_name": "env", "value": nil}},
		"old_property_values": []map[string]any{{"property_name": "owner", "value": "team-a"}, {"property_name": "env", "value": "prod"}},
		"organization":        map[string]any{"login": "octo-org"},
		"installation":        map[string]any{"id": 1},
	}
	e.publish(stream.WebhookSubject("custom_property_values"), "custom_property_values", mustJSON(t, ev))
	e.waitDrained()
	wantTags := []string{"owner:team-b", "regions:eu", "regions:us", "topic:go"}
	for n := int64(1); n <= 3; n++ {
		d, _ := e.doc(finding.Key(finding.SAST, 1296269, n))
		if !reflect.DeepEqual(d.AssetDetail.Tags, wantTags) || d.AssetDetail.Ownership == nil || d.AssetDetail.Ownership.Owner != "team-b" {
			t.Errorf("finding %d after the property change: tags %q ownership %+v", n, d.AssetDetail.Tags, d.AssetDetail.Ownership)
		}
		if _, ok := d.AssetDetail.CustomProperties["env"]; ok {
			t.Errorf("finding %d keeps env, which lost its value", n)
		}
		if d.Finding().FindingStatus != finding.StatusActive {
			t.Errorf("finding %d status %s", n, d.Finding().FindingStatus)
		}
	}
	// One pass: one message per finding of the repository, none for the other.
	if got := len(e.messages(stream.FindingsStream, "ghas.findings.")) - before; got != 3 {
		t.Errorf("%d finding messages for the property change, want 3", got)
	}
	assets := e.messages(stream.FindingsStream, stream.AssetSubject(1296269))
	if len(assets) != 1 {
		t.Fatalf("%d asset messages, want 1", len(assets))
	}
	var asset finding.Document
	if err := jsonUnmarshal(assets[0].Data, &asset); err != nil || !reflect.DeepEqual(asset.AssetDetail.Tags, wantTags) {
		t.Errorf("asset message tags %q (%v)", asset.AssetDetail.Tags, err)
	}
}

func TestOutOfScopeFindingsAreNeverStored(t *testing.T) {
	for _, c := range []struct {
		name string
		st   scope.Settings
	}{
		{"type", scope.Settings{IncludeTypes: "sca,secret"}},
		{"repository", scope.Settings{ExcludeRepos: "octo-org/*"}},
		{"include", scope.Settings{IncludeRepos: "other-org/*"}},
		{"severity", scope.Settings{MinSeverity: "CRITICAL"}},
		{"property", scope.Settings{IncludeProperties: "owner=team-z"}},
		{"property unknown", scope.Settings{IncludeProperties: "owner=team-a"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.start(e.newProcessor(Config{Workers: 1, Scope: filter(t, c.st)}))
			props := map[string]any{"owner": "team-a"}
			if c.name == "property unknown" {
				props = nil
			}
			e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", alertIn(t, 1, "error", 1, props))
			e.waitDrained()
			if _, ok := e.doc(finding.Key(finding.SAST, 1296269, 1)); ok {
				t.Errorf("out-of-scope finding stored")
			}
			if got := e.messages(stream.FindingsStream, ""); len(got) != 0 {
				t.Errorf("%d messages published for an out-of-scope finding", len(got))
			}
		})
	}
	// The same event in scope is stored (the test above can fail).
	e := newEnv(t)
	e.start(e.newProcessor(Config{Workers: 1, Scope: filter(t, scope.Settings{IncludeTypes: "sast", IncludeRepos: "octo-org/*", MinSeverity: "HIGH", IncludeProperties: "owner=team-a"})}))
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", alertIn(t, 1, "error", 1, map[string]any{"owner": "team-a"}))
	e.waitDrained()
	if _, ok := e.doc(finding.Key(finding.SAST, 1296269, 1)); !ok {
		t.Errorf("in-scope finding not stored")
	}
}

func TestForkExcluded(t *testing.T) {
	e := newEnv(t)
	e.start(e.newProcessor(Config{Workers: 1, Scope: filter(t, scope.Settings{ExcludeForks: "true"})}))
	// The Dependabot sample's repository is a fork.
	e.publish(stream.WebhookSubject("dependabot_alert"), "dependabot_alert", mustJSON(t, sample(t, "dependabot_alert", "created.payload.json")))
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", alertIn(t, 1, "error", 1, nil))
	e.waitDrained()
	if got := e.messages(stream.FindingsStream, "ghas.findings.sca."); len(got) != 0 {
		t.Errorf("finding of a fork published")
	}
	if _, ok := e.doc(finding.Key(finding.SAST, 1296269, 1)); !ok {
		t.Errorf("finding of a repository that is not a fork dropped")
	}
}

func TestSeverityDropLeavesTheScopeOnce(t *testing.T) {
	e := newEnv(t)
	e.start(e.newProcessor(Config{Workers: 1, Scope: filter(t, scope.Settings{MinSeverity: "HIGH"})}))
	key := finding.Key(finding.SAST, 1296269, 1)
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", alertIn(t, 1, "error", 1, map[string]any{}))
	e.waitDrained()
	if d, ok := e.doc(key); !ok || d.Finding().FindingStatus != finding.StatusActive {
		t.Fatalf("HIGH finding not stored ACTIVE")
	}
	// The rule's severity drops to MEDIUM: out of scope, REMOVED once.
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", alertIn(t, 1, "warning", 2, map[string]any{}))
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", alertIn(t, 1, "note", 3, map[string]any{}))
	e.waitDrained()
	d, _ := e.doc(key)
	if f := d.Finding(); f.FindingStatus != finding.StatusRemoved || f.RemovedReason != finding.RemovedOutOfScope {
		t.Fatalf("after the drop: %s %q, want REMOVED out-of-scope", f.FindingStatus, f.RemovedReason)
	}
	msgs := e.messages(stream.FindingsStream, "ghas.findings.sast.")
	if len(msgs) != 2 {
		t.Errorf("%d finding messages, want 2 (ACTIVE, then REMOVED once)", len(msgs))
	}
	// Back to HIGH by a newer event: in scope again.
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", alertIn(t, 1, "error", 4, map[string]any{}))
	e.waitDrained()
	if d, _ := e.doc(key); d.Finding().FindingStatus != finding.StatusActive || d.Finding().RemovedReason != "" {
		t.Errorf("back in scope: %s %q", d.Finding().FindingStatus, d.Finding().RemovedReason)
	}
}

func TestArchivingLeavesTheScope(t *testing.T) {
	e := newEnv(t)
	e.start(e.newProcessor(Config{Workers: 1, Scope: filter(t, scope.Settings{ExcludeArchived: "true"})}))
	for n := 1; n <= 2; n++ {
		e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", alertIn(t, n, "error", n, map[string]any{"owner": "team-a"}))
	}
	e.waitDrained()
	repoEvent := func(action string, archived bool, updated string) []byte {
		r := sample(t, "repository", "edited.payload.json")
		r["action"] = action
		rr := r["repository"].(map[string]any)
		rr["id"], rr["name"], rr["full_name"] = 1296269, "api", "octo-org/api"
		rr["archived"], rr["updated_at"] = archived, updated
		rr["custom_properties"] = map[string]any{"owner": "team-a"}
		return mustJSON(t, r)
	}
	e.publish(stream.WebhookSubject("repository"), "repository", repoEvent("archived", true, "2026-02-01T00:00:00Z"))
	e.waitDrained()
	for n := int64(1); n <= 2; n++ {
		d, _ := e.doc(finding.Key(finding.SAST, 1296269, n))
		if f := d.Finding(); f.FindingStatus != finding.StatusRemoved || f.RemovedReason != finding.RemovedOutOfScope || !d.AssetDetail.RepositoryAssetClass.Archived {
			t.Errorf("finding %d after archiving: %s %q archived=%v", n, f.FindingStatus, f.RemovedReason, d.AssetDetail.RepositoryAssetClass.Archived)
		}
	}
	if got := e.messages(stream.FindingsStream, stream.AssetSubject(1296269)); len(got) != 0 {
		t.Errorf("asset of an out-of-scope repository published")
	}
	// Unarchived: the asset follows; the findings come back at the next
	// full pull (GitHub's state of each alert is not in the event).
	e.publish(stream.WebhookSubject("repository"), "repository", repoEvent("unarchived", false, "2026-03-01T00:00:00Z"))
	e.waitDrained()
	d, _ := e.doc(finding.Key(finding.SAST, 1296269, 1))
	if d.AssetDetail.RepositoryAssetClass.Archived || d.Finding().FindingStatus != finding.StatusRemoved {
		t.Errorf("after unarchiving: archived=%v status %s", d.AssetDetail.RepositoryAssetClass.Archived, d.Finding().FindingStatus)
	}
	if got := e.messages(stream.FindingsStream, stream.AssetSubject(1296269)); len(got) != 1 {
		t.Errorf("%d asset messages after unarchiving, want 1", len(got))
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
