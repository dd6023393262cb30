package transform

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/jsonobject"
)

const testRepo = `{"id":1296269,"name":"Hello-World","full_name":"octocat/Hello-World","owner":{"login":"octocat"},
"html_url":"https://github.com/octocat/Hello-World","default_branch":"main","visibility":"private","archived":false}`

// alertDoc transforms one alert object (JSON) of an event in a minimal envelope.
func alertDoc(t *testing.T, event, action, alert string, rs string) finding.Finding {
	t.Helper()
	payload := fmt.Sprintf(`{"action":%q,"alert":%s,"repository":%s}`, action, alert, testRepo)
	d, err := Defaults().Alert(Event{Name: event, Payload: []byte(payload), Origin: "webhook", ReceivedAt: testReceived, RuleSeverity: rs}, testNow)
	if err != nil {
		t.Fatalf("%s", err)
	}
	return d.Findings[0]
}

func TestStatus(t *testing.T) {
	for _, tc := range []struct {
		event, action, alert, want string
	}{
		{EventCodeScanning, "created", `{"number":1,"state":"open"}`, finding.StatusActive},
		{EventCodeScanning, "fixed", `{"number":1,"state":"fixed"}`, finding.StatusFixed},
		{EventCodeScanning, "closed_by_user", `{"number":1,"state":"dismissed"}`, finding.StatusDismissed},
		{EventCodeScanning, "fixed", `{"number":1,"state":null}`, finding.StatusFixed},
		{EventCodeScanning, "closed_by_user", `{"number":1,"state":null}`, finding.StatusDismissed},
		{EventCodeScanning, "reopened_by_user", `{"number":1,"state":null}`, finding.StatusActive},
		{EventCodeScanning, "reopened", `{"number":1}`, finding.StatusActive},
		{EventCodeScanning, "created", `{"number":1,"state":null}`, finding.StatusActive},
		{EventCodeScanning, "some_future_action", `{"number":1,"state":"dismissed"}`, finding.StatusDismissed},
		{EventCodeScanning, ActionReconcile, `{"number":1,"state":"fixed"}`, finding.StatusFixed},
		{EventCodeScanning, ActionReconcileRemoved, `{"number":1}`, finding.StatusRemoved},
		{EventCodeScanning, ActionReconcileRemoved, `{"number":1,"state":"open"}`, finding.StatusRemoved},
		{EventDependabot, "created", `{"number":1,"state":"open"}`, finding.StatusActive},
		{EventDependabot, "fixed", `{"number":1,"state":"fixed"}`, finding.StatusFixed},
		{EventDependabot, "dismissed", `{"number":1,"state":"dismissed"}`, finding.StatusDismissed},
		{EventDependabot, "auto_dismissed", `{"number":1,"state":"auto_dismissed"}`, finding.StatusDismissed},
		{EventDependabot, "auto_dismissed", `{"number":1,"state":null}`, finding.StatusDismissed},
		{EventDependabot, "reintroduced", `{"number":1,"state":null}`, finding.StatusActive},
		{EventDependabot, ActionReconcileRemoved, `{"number":1}`, finding.StatusRemoved},
		{EventSecretScanning, "created", `{"number":1,"resolution":null}`, finding.StatusActive},
		{EventSecretScanning, "reopened", `{"number":1}`, finding.StatusActive},
		{EventSecretScanning, "resolved", `{"number":1,"resolution":"revoked"}`, finding.StatusFixed},
		{EventSecretScanning, "resolved", `{"number":1,"resolution":"false_positive"}`, finding.StatusDismissed},
		{EventSecretScanning, "resolved", `{"number":1,"resolution":"wont_fix"}`, finding.StatusDismissed},
		{EventSecretScanning, "resolved", `{"number":1,"resolution":"used_in_tests"}`, finding.StatusDismissed},
		{EventSecretScanning, ActionReconcile, `{"number":1,"state":"resolved","resolution":"pattern_deleted"}`, finding.StatusDismissed},
		{EventSecretScanning, ActionReconcileRemoved, `{"number":1}`, finding.StatusRemoved},
	} {
		t.Run(tc.event+"/"+tc.action+"/"+tc.alert, func(t *testing.T) {
			if got := alertDoc(t, tc.event, tc.action, tc.alert, "").FindingStatus; got != tc.want {
				t.Errorf("status %s, want %s", got, tc.want)
			}
		})
	}
}

func TestSeverity(t *testing.T) {
	for _, tc := range []struct {
		event, alert, cached, want string
	}{
		{EventCodeScanning, `{"number":1,"rule":{"security_severity_level":"critical","severity":"note"}}`, "", "CRITICAL"},
		{EventCodeScanning, `{"number":1,"rule":{"security_severity_level":"high","severity":"note"}}`, "low", "HIGH"},
		{EventCodeScanning, `{"number":1,"rule":{"security_severity_level":"medium"}}`, "", "MEDIUM"},
		{EventCodeScanning, `{"number":1,"rule":{"security_severity_level":"low"}}`, "", "LOW"},
		{EventCodeScanning, `{"number":1,"rule":{"severity":"error"}}`, "critical", "CRITICAL"},
		{EventCodeScanning, `{"number":1,"rule":{"security_severity_level":null,"severity":"error"}}`, "", "HIGH"},
		{EventCodeScanning, `{"number":1,"rule":{"severity":"warning"}}`, "", "MEDIUM"},
		{EventCodeScanning, `{"number":1,"rule":{"severity":"note"}}`, "", "LOW"},
		{EventCodeScanning, `{"number":1,"rule":{"severity":"none"}}`, "", "INFO"},
		{EventCodeScanning, `{"number":1,"rule":{"severity":null}}`, "", "INFO"},
		{EventCodeScanning, `{"number":1}`, "", "INFO"},
		{EventDependabot, `{"number":1,"security_vulnerability":{"severity":"critical"},"security_advisory":{"severity":"low"}}`, "", "CRITICAL"},
		{EventDependabot, `{"number":1,"security_vulnerability":{"severity":"moderate"}}`, "", "MEDIUM"},
		{EventDependabot, `{"number":1,"security_advisory":{"severity":"moderate"}}`, "", "MEDIUM"},
		{EventDependabot, `{"number":1,"security_vulnerability":null,"security_advisory":{"severity":"high"}}`, "", "HIGH"},
		{EventDependabot, `{"number":1,"security_vulnerability":{"severity":"low"}}`, "", "LOW"},
		{EventSecretScanning, `{"number":1,"validity":"active"}`, "", "CRITICAL"},
		{EventSecretScanning, `{"number":1,"validity":"inactive"}`, "", "HIGH"},
		{EventSecretScanning, `{"number":1,"validity":"unknown"}`, "", "HIGH"},
		{EventSecretScanning, `{"number":1}`, "", "HIGH"},
	} {
		t.Run(tc.event+"/"+tc.alert+"/"+tc.cached, func(t *testing.T) {
			if got := alertDoc(t, tc.event, "created", tc.alert, tc.cached).Severity; got != tc.want {
				t.Errorf("severity %s, want %s", got, tc.want)
			}
		})
	}
}

func TestCWE(t *testing.T) {
	for _, tc := range []struct {
		event, alert string
		want         []string
	}{
		{EventCodeScanning, `{"number":1,"rule":{"tags":["security","external/cwe/cwe-022"]}}`, []string{"CWE-22"}},
		{EventCodeScanning, `{"number":1,"rule":{"tags":["external/cwe/cwe-079","security","external/cwe/cwe-116","external/cwe/cwe-0079"]}}`, []string{"CWE-79", "CWE-116"}},
		{EventCodeScanning, `{"number":1,"rule":{"tags":["external/cwe/cwe-1333","external/cwe/cwe-020"]}}`, []string{"CWE-1333", "CWE-20"}},
		{EventCodeScanning, `{"number":1,"rule":{"tags":["external/cwe/cwe-000","external/cwe/cwe-","external/cwe/cwe-x1","external/owasp/a1"]}}`, []string{"CWE-0"}},
		{EventCodeScanning, `{"number":1,"rule":{"tags":null}}`, []string{}},
		{EventCodeScanning, `{"number":1,"rule":{"tags":["External/CWE/CWE-089"]}}`, []string{"CWE-89"}},
		{EventDependabot, `{"number":1,"security_advisory":{"cwes":[{"cwe_id":"CWE-1333","name":"x"},{"cwe_id":"CWE-400"}]}}`, []string{"CWE-1333", "CWE-400"}},
		{EventDependabot, `{"number":1,"security_advisory":{"cwes":[]}}`, []string{}},
	} {
		t.Run(tc.alert, func(t *testing.T) {
			f := alertDoc(t, tc.event, "created", tc.alert, "")
			if f.FindingType == nil || f.FindingType.Vulnerability == nil {
				t.Fatal("no findingType.vulnerability")
			}
			got := f.FindingType.Vulnerability.CWEIDs
			if strings.Join(got, ",") != strings.Join(tc.want, ",") || got == nil {
				t.Errorf("cweIds %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDetectionURLAndLocation(t *testing.T) {
	// Current shape: most_recent_instance wins over instances.
	f := alertDoc(t, EventCodeScanning, "created", `{"number":1,
		"most_recent_instance":{"ref":"refs/heads/main","commit_sha":"abc","location":{"path":"src/a b.js","start_line":3,"end_line":7}},
		"instances":[{"ref":"refs/heads/old","location":{"path":"old.js","start_line":1,"end_line":1}}]}`, "")
	if want := "https://github.com/octocat/Hello-World/blob/main/src/a%20b.js#L3-L7"; f.FindingDetectionURL != want {
		t.Errorf("detection URL %q, want %q", f.FindingDetectionURL, want)
	}
	if f.Location == nil || f.Location.Path != "src/a b.js" || f.Location.StartLine != 3 || f.Location.EndLine != 7 || f.Location.Ref != "refs/heads/main" || f.Location.CommitSHA != "abc" {
		t.Errorf("location %+v", f.Location)
	}
	// Old shape: instances[0].
	f = alertDoc(t, EventCodeScanning, "created", `{"number":1,"instances":[{"ref":"refs/heads/old","location":{"path":"old.js","start_line":1,"end_line":2}}]}`, "")
	if want := "https://github.com/octocat/Hello-World/blob/main/old.js#L1-L2"; f.FindingDetectionURL != want {
		t.Errorf("detection URL %q, want %q", f.FindingDetectionURL, want)
	}
	// No location: no URL.
	f = alertDoc(t, EventCodeScanning, "created", `{"number":1,"instances":[{"ref":"refs/heads/old"}]}`, "")
	if f.FindingDetectionURL != "" {
		t.Errorf("detection URL %q without a path", f.FindingDetectionURL)
	}
}

func TestTimes(t *testing.T) {
	for _, tc := range []struct {
		event, action, alert string
		lastFound, lastFixed string
	}{
		{EventDependabot, "fixed", `{"number":1,"updated_at":"2024-01-02T00:00:00Z","fixed_at":"2024-01-01T00:00:00Z"}`, "2024-01-02T00:00:00Z", "2024-01-01T00:00:00Z"},
		{EventCodeScanning, "fixed", `{"number":1,"fixed_at":"2024-01-01T00:00:00Z"}`, "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"},
		{EventCodeScanning, "closed_by_user", `{"number":1,"dismissed_at":"2024-02-01T00:00:00Z"}`, "2024-02-01T00:00:00Z", ""},
		{EventCodeScanning, "created", `{"number":1,"created_at":"2024-03-01T00:00:00Z"}`, "2024-03-01T00:00:00Z", ""},
		{EventCodeScanning, "reopened", `{"number":1,"created_at":"2024-03-01T00:00:00Z"}`, testReceived.Format("2006-01-02T15:04:05Z07:00"), ""},
		{EventDependabot, "auto_dismissed", `{"number":1,"auto_dismissed_at":"2024-04-01T00:00:00Z"}`, "2024-04-01T00:00:00Z", ""},
		{EventSecretScanning, "resolved", `{"number":1,"resolution":"revoked","resolved_at":"2024-05-01T00:00:00Z"}`, "2024-05-01T00:00:00Z", "2024-05-01T00:00:00Z"},
		{EventSecretScanning, "resolved", `{"number":1,"resolution":"revoked","resolved_at":"2024-05-01T00:00:00Z","updated_at":"2024-05-02T00:00:00Z"}`, "2024-05-02T00:00:00Z", "2024-05-01T00:00:00Z"},
	} {
		t.Run(tc.event+"/"+tc.action, func(t *testing.T) {
			f := alertDoc(t, tc.event, tc.action, tc.alert, "")
			if deref(f.LastFoundOn) != tc.lastFound || deref(f.LastFixedOn) != tc.lastFixed {
				t.Errorf("lastFoundOn %q lastFixedOn %q, want %q %q", deref(f.LastFoundOn), deref(f.LastFixedOn), tc.lastFound, tc.lastFixed)
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TestSecretNeverStored: the secret value appears nowhere in the output.
func TestSecretNeverStored(t *testing.T) {
	repo := listedRepository(t)
	for _, s := range restSamples(t) {
		if s.event != EventSecretScanning {
			continue
		}
		var a struct{ Secret string }
		if err := json.Unmarshal(s.alert, &a); err != nil || a.Secret == "" {
			t.Fatalf("%s: sample has no secret (%v)", s.name, err)
		}
		d, err := Defaults().Alert(Event{Name: s.event, Payload: envelope(t, ActionReconcile, s.alert, repo)}, testNow)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(render(t, d)), a.Secret) {
			t.Errorf("%s: document holds the secret", s.name)
		}
	}
	// And no map may read it.
	bad := strings.Replace(string(DefaultJSON("secret")), `"secretScanningAlerts.secret_type"}`, `"secretScanningAlerts.secret"}`, 1)
	if _, err := ParseMap("secret", []byte(bad)); err == nil || !strings.Contains(err.Error(), "never stored") {
		t.Errorf("a map reading the secret: err %v", err)
	}
}

func TestInvalid(t *testing.T) {
	maps := Defaults()
	for _, tc := range []struct{ name, event, payload string }{
		{"not json", EventCodeScanning, `{"alert":`},
		{"array", EventCodeScanning, `[]`},
		{"trailing data", EventCodeScanning, `{"alert":{"number":1},"repository":{"id":1}} x`},
		{"no alert", EventCodeScanning, `{"repository":{"id":1}}`},
		{"null alert", EventCodeScanning, `{"alert":null,"repository":{"id":1}}`},
		{"alert is a string", EventCodeScanning, `{"alert":"x","repository":{"id":1}}`},
		{"no repository", EventDependabot, `{"alert":{"number":1}}`},
		{"repository id a string", EventDependabot, `{"alert":{"number":1},"repository":{"id":"1"}}`},
		{"number fractional", EventSecretScanning, `{"alert":{"number":1.5},"repository":{"id":1}}`},
		{"no number", EventSecretScanning, `{"alert":{},"repository":{"id":1}}`},
		{"rule id an object", EventCodeScanning, `{"alert":{"number":1,"rule":{"id":{}}},"repository":{"id":1}}`},
		{"start line a string", EventCodeScanning, `{"alert":{"number":1,"most_recent_instance":{"location":{"path":"a","start_line":"x"}}},"repository":{"id":1}}`},
		{"tags a string", EventCodeScanning, `{"alert":{"number":1,"rule":{"tags":"x"}},"repository":{"id":1}}`},
		{"unknown event", "push", `{"alert":{"number":1},"repository":{"id":1}}`},
		{"bad escape", EventCodeScanning, `{"alert":{"number":1},"repository":{"id":1},"x":"\q"}`},
		{"deep nesting", EventCodeScanning, `{"x":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `,"alert":{"number":1},"repository":{"id":1}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := Event{Name: tc.event, Payload: []byte(tc.payload)}
			if _, err := maps.Alert(ev, testNow); !errors.Is(err, ErrInvalid) {
				t.Errorf("Alert: err %v, want ErrInvalid", err)
			}
			if tc.name == "rule id an object" || tc.name == "start line a string" || tc.name == "tags a string" {
				return // Inspect does not read these
			}
			if _, err := Inspect(ev); !errors.Is(err, ErrInvalid) {
				t.Errorf("Inspect: err %v, want ErrInvalid", err)
			}
		})
	}
	// The receiver and the transform share one depth limit: what the
	// receiver stores is transformed, one level more is refused by both.
	for _, depth := range []int{jsonobject.MaxDepth, jsonobject.MaxDepth + 1} {
		for _, where := range []string{"x", "alert"} { // skipped, and decoded (an alert field)
			payload := `{"alert":{"number":1,"x":` + strings.Repeat("[", depth-2) + strings.Repeat("]", depth-2) + `},"repository":{"id":1}}`
			if where == "x" {
				payload = `{"x":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `,"alert":{"number":1},"repository":{"id":1}}`
			}
			_, err := maps.Alert(Event{Name: EventCodeScanning, Payload: []byte(payload)}, testNow)
			if stored := jsonobject.Valid([]byte(payload)); stored != (err == nil) || stored != (depth <= jsonobject.MaxDepth) {
				t.Errorf("nested %d deep under %s: receiver accepts %v, transform error %v", depth, where, stored, err)
			}
		}
	}
	// Unknown fields and actions are fine.
	if _, err := maps.Alert(Event{Name: EventCodeScanning, Payload: []byte(`{"action":"brand_new","new":{"a":[1,2,{"b":null}]},"alert":{"number":1,"new_field":true},"repository":{"id":1,"x":"\u00e9\ud83d\ude00"}}`)}, testNow); err != nil {
		t.Errorf("unknown fields: %v", err)
	}
}

func TestInspect(t *testing.T) {
	m, err := Inspect(Event{Name: EventCodeScanning, Payload: readFile(t, repoRoot+"/webhooks/code_scanning_alert/created.payload.json")})
	if err != nil {
		t.Fatal(err)
	}
	want := Meta{Dataset: "sast", RepositoryID: 337911632, Number: 10, Action: "created", InstallationID: 14662836,
		Owner: "Codertocat", Repo: "Hello-World", RuleID: "java/sql-injection"}
	if m != want {
		t.Errorf("got %+v\nwant %+v", m, want)
	}
	if m.Key() != "sast.337911632.10" {
		t.Errorf("key %s", m.Key())
	}
	repo := listedRepository(t)
	m, err = Inspect(Event{Name: EventCodeScanning, Payload: envelope(t, ActionReconcile, readFile(t, repoRoot+"/rest/code-scanning-get-alert.json"), repo)})
	if err != nil {
		t.Fatal(err)
	}
	want = Meta{Dataset: "sast", RepositoryID: 1296269, Number: 42, Action: "reconcile", InstallationID: 42,
		Owner: "octocat", Repo: "Hello-World", RuleID: "js/zipslip", HasSecuritySeverity: true}
	if m != want {
		t.Errorf("got %+v\nwant %+v", m, want)
	}
}

func TestAsset(t *testing.T) {
	repo := listedRepository(t)
	for _, ds := range Datasets() {
		d, err := Defaults().Asset(ds, repo, testNow)
		if err != nil {
			t.Fatal(err)
		}
		if d.ExternalAssetID != "https://github.com/octocat/Hello-World" || d.VendorAssetID != "1296269" ||
			d.AssetDetail.FullName != "octocat/Hello-World" || d.AssetDetail.RepositoryAssetClass.Owner != "octocat" ||
			d.AssetDetail.RepositoryAssetClass.Visibility != "public" || d.VendorName != "GitHub" || d.Findings != nil ||
			d.FindingTypeName != typeName(ds) || d.ObservedAt != "2026-11-21T10:00:00Z" {
			t.Errorf("%s: asset %+v", ds, d)
		}
		// The asset part equals the one of a full alert document.
		a, err := Defaults().Alert(Event{Name: map[string]string{"sast": EventCodeScanning, "sca": EventDependabot, "secret": EventSecretScanning}[ds],
			Payload: envelope(t, ActionReconcile, json.RawMessage(`{"number":1}`), repo)}, testNow)
		if err != nil {
			t.Fatal(err)
		}
		a.Findings, a.FindingKey = nil, ""
		if string(render(t, a)) != string(render(t, d)) {
			t.Errorf("%s: asset document differs from the alert's asset part:\n%s\n%s", ds, render(t, a), render(t, d))
		}
	}
	// A renamed, archived repository from a repository webhook.
	var ev struct{ Repository json.RawMessage }
	if err := json.Unmarshal(readFile(t, repoRoot+"/webhooks/repository/renamed.payload.json"), &ev); err != nil {
		t.Fatal(err)
	}
	d, err := Defaults().Asset("sast", ev.Repository, testNow)
	if err != nil || d.AssetDetail.FullName == "" || d.VendorAssetID == "" {
		t.Errorf("renamed: %v %+v", err, d)
	}
	if _, err := Defaults().Asset("sast", []byte(`"x"`), testNow); !errors.Is(err, ErrInvalid) {
		t.Errorf("asset of a string: %v", err)
	}
}
