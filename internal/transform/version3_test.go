package transform

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// restDoc transforms one REST alert (JSON) in the reconciler's envelope,
// read by a pull at pulledAt.
func restDoc(t *testing.T, event, alert string, pulledAt time.Time) finding.Document {
	t.Helper()
	payload := fmt.Sprintf(`{"action":%q,"alert":%s,"repository":%s,"installation":{"id":42}}`, ActionReconcile, alert, testRepo)
	d, err := Defaults().Alert(Event{Name: event, Payload: []byte(payload), Origin: "reconcile", ReceivedAt: pulledAt}, pulledAt)
	if err != nil {
		t.Fatalf("%s", err)
	}
	return d
}

// TestLastFoundOnNeverThePullClock: a REST item is dated by its own
// timestamps — updated_at, else the latest of the others — so the same
// item read by two pulls at different times gives the same document, and
// an unchanged alert is not published again every night.
func TestLastFoundOnNeverThePullClock(t *testing.T) {
	first := time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC)
	second := first.Add(24 * time.Hour)
	for _, tc := range []struct {
		name, event, alert, want string
	}{
		{"code scanning open, created only", EventCodeScanning,
			`{"number":1,"state":"open","created_at":"2024-01-01T00:00:00Z","fixed_at":null,"dismissed_at":null}`, "2024-01-01T00:00:00Z"},
		{"code scanning dismissed", EventCodeScanning,
			`{"number":1,"state":"dismissed","created_at":"2024-01-01T00:00:00Z","dismissed_at":"2024-02-01T00:00:00Z"}`, "2024-02-01T00:00:00Z"},
		{"code scanning fixed", EventCodeScanning,
			`{"number":1,"state":"fixed","created_at":"2024-01-01T00:00:00Z","fixed_at":"2024-03-01T00:00:00Z","dismissed_at":"2024-02-01T00:00:00Z"}`, "2024-03-01T00:00:00Z"},
		// Compared as instants: 2024-02-01T03:00:00+05:00 is before 2024-02-01T00:00:00Z.
		{"compared as instants", EventCodeScanning,
			`{"number":1,"state":"dismissed","created_at":"2024-02-01T03:00:00+05:00","dismissed_at":"2024-02-01T00:00:00Z"}`, "2024-02-01T00:00:00Z"},
		// GitHub's own example dismisses before it creates; the latest wins.
		{"dismissed before created", EventCodeScanning,
			`{"number":1,"state":"dismissed","created_at":"2020-06-19T11:21:34Z","dismissed_at":"2020-02-14T12:29:18Z"}`, "2020-06-19T11:21:34Z"},
		{"dependabot auto-dismissed", EventDependabot,
			`{"number":1,"state":"auto_dismissed","created_at":"2024-01-01T00:00:00Z","auto_dismissed_at":"2024-04-01T00:00:00Z"}`, "2024-04-01T00:00:00Z"},
		{"secret resolved", EventSecretScanning,
			`{"number":1,"state":"resolved","resolution":"revoked","created_at":"2024-01-01T00:00:00Z","resolved_at":"2024-05-01T00:00:00Z"}`, "2024-05-01T00:00:00Z"},
		{"updated_at wins", EventSecretScanning,
			`{"number":1,"state":"resolved","resolution":"revoked","created_at":"2024-01-01T00:00:00Z","resolved_at":"2024-05-01T00:00:00Z","updated_at":"2024-04-01T00:00:00Z"}`, "2024-04-01T00:00:00Z"},
		{"no timestamp at all", EventDependabot, `{"number":1,"state":"open"}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := restDoc(t, tc.event, tc.alert, first), restDoc(t, tc.event, tc.alert, second)
			if got := deref(a.Findings[0].LastFoundOn); got != tc.want {
				t.Errorf("lastFoundOn %q, want %q", got, tc.want)
			}
			if a.ContentHash() != b.ContentHash() {
				t.Errorf("two pulls give two documents:\n%s\n%s", render(t, a), render(t, b))
			}
		})
	}
	// A removal event is no more dated by the pull than the item itself.
	payload := fmt.Sprintf(`{"action":%q,"alert":{"number":1},"repository":%s}`, ActionReconcileRemoved, testRepo)
	d, err := Defaults().Alert(Event{Name: EventCodeScanning, Payload: []byte(payload), Origin: "reconcile", ReceivedAt: first}, first)
	if err != nil || d.Findings[0].LastFoundOn != nil {
		t.Errorf("reconcile_removed without timestamps: lastFoundOn %v, err %v", deref(d.Findings[0].LastFoundOn), err)
	}
}

// TestLastFoundOnWebhook: a webhook is dated like a REST item, its
// action's time counting as one of its timestamps; the receive time dates
// only a webhook whose alert and action carry none.
func TestLastFoundOnWebhook(t *testing.T) {
	received := testReceived.Format(time.RFC3339)
	for _, tc := range []struct {
		name, event, action, alert, want string
	}{
		{"no timestamp", EventSecretScanning, "reopened", `{"number":1,"secret_type":"x","resolution":null}`, received},
		{"updated_at wins over the receive time", EventDependabot, "reopened",
			`{"number":1,"created_at":"2024-01-01T00:00:00Z","updated_at":"2024-06-01T00:00:00Z"}`, "2024-06-01T00:00:00Z"},
		{"the action's own time", EventCodeScanning, "closed_by_user",
			`{"number":1,"created_at":"2024-01-01T00:00:00Z","dismissed_at":"2024-02-01T00:00:00Z"}`, "2024-02-01T00:00:00Z"},
		{"created", EventCodeScanning, "created", `{"number":1,"created_at":"2024-01-01T00:00:00Z"}`, "2024-01-01T00:00:00Z"},
		// A reopen carries no time of its own: it happened when it was
		// sent, later than the alert's creation or its earlier dismissal.
		{"reopen", EventCodeScanning, "reopened_by_user",
			`{"number":1,"created_at":"2024-01-01T00:00:00Z","dismissed_at":null}`, received},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := deref(alertDoc(t, tc.event, tc.action, tc.alert, "").LastFoundOn); got != tc.want {
				t.Errorf("lastFoundOn %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFirstElseLatestRefusesNonTimes(t *testing.T) {
	for _, alert := range []string{
		`{"number":1,"updated_at":"yesterday"}`,
		`{"number":1,"created_at":"2024-01-01T00:00:00Z","dismissed_at":"soon"}`,
		`{"number":1,"created_at":1704067200}`,
	} {
		payload := fmt.Sprintf(`{"action":"reconcile","alert":%s,"repository":%s}`, alert, testRepo)
		if _, err := Defaults().Alert(Event{Name: EventCodeScanning, Payload: []byte(payload)}, testNow); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err %v, want ErrInvalid", alert, err)
		}
	}
}

// TestThirdVersionFields: each field of the document's third version is
// what the payload says, in the webhook and REST shapes GitHub uses, and
// absent when the payload lacks it.
func TestThirdVersionFields(t *testing.T) {
	t.Run("sca", func(t *testing.T) {
		f := alertDoc(t, EventDependabot, "created", `{"number":1,
			"dependency":{"package":{"ecosystem":"npm","name":"x"},"scope":"development","relationship":"transitive"},
			"security_advisory":{"withdrawn_at":"2024-07-01T00:00:00Z",
				"identifiers":[{"type":"GHSA","value":"GHSA-aaaa-bbbb-cccc"},{"type":"CVE","value":"CVE-2024-1"}],
				"cvss_severities":{"cvss_v3":{"vector_string":"CVSS:3.1/AV:N","score":7.5},"cvss_v4":{"vector_string":"CVSS:4.0/AV:N","score":8.7}},
				"epss":{"percentage":0.00045,"percentile":"0.16001e0"}},
			"assignees":[{"login":"octocat"},{"login":"hubot"}]}`, "")
		v := f.FindingType.Vulnerability
		if v.CVSS == nil || deref64(v.CVSS.CVSS4Base) != 8.7 || v.CVSS.CVSS4Vector != "CVSS:4.0/AV:N" || deref64(v.CVSS.CVSS3Base) != 7.5 {
			t.Errorf("cvss %+v", v.CVSS)
		}
		if deref64(v.ExploitCodeMaturity) != 0.00045 || deref64(v.EPSSPercentile) != 0.16001 {
			t.Errorf("epss %v %v", deref64(v.ExploitCodeMaturity), deref64(v.EPSSPercentile))
		}
		if v.AdvisoryWithdrawnAt != "2024-07-01T00:00:00Z" || strings.Join(v.Identifiers, ",") != "GHSA-aaaa-bbbb-cccc,CVE-2024-1" {
			t.Errorf("withdrawn %q identifiers %q", v.AdvisoryWithdrawnAt, v.Identifiers)
		}
		if f.Product.DependencyScope != "development" || f.Product.DependencyRelationship != "transitive" {
			t.Errorf("product %+v", f.Product)
		}
		if strings.Join(f.Assignees, ",") != "octocat,hubot" {
			t.Errorf("assignees %q", f.Assignees)
		}
		// EPSS as a list (the first element), a v4 score of 0 (no score).
		f = alertDoc(t, EventDependabot, "created", `{"number":1,"security_advisory":{
			"cvss_severities":{"cvss_v4":{"vector_string":null,"score":0}},
			"epss":[{"percentage":0.5,"percentile":0.9},{"percentage":0.1,"percentile":0.2}]}}`, "")
		v = f.FindingType.Vulnerability
		if deref64(v.ExploitCodeMaturity) != 0.5 || deref64(v.EPSSPercentile) != 0.9 {
			t.Errorf("epss list: %v %v", deref64(v.ExploitCodeMaturity), deref64(v.EPSSPercentile))
		}
		if v.CVSS != nil || v.Identifiers != nil || v.AdvisoryWithdrawnAt != "" || f.Product != nil || f.Assignees != nil {
			t.Errorf("absent values written: cvss %+v, identifiers %q, withdrawn %q, product %+v, assignees %q", v.CVSS, v.Identifiers, v.AdvisoryWithdrawnAt, f.Product, f.Assignees)
		}
		payload := fmt.Sprintf(`{"action":"created","alert":{"number":1,"security_advisory":{"epss":{"percentile":"high"}}},"repository":%s}`, testRepo)
		if _, err := Defaults().Alert(Event{Name: EventDependabot, Payload: []byte(payload)}, testNow); !errors.Is(err, ErrInvalid) {
			t.Errorf("a percentile that is no number: %v", err)
		}
	})
	t.Run("sast", func(t *testing.T) {
		for _, shape := range []string{
			`"most_recent_instance":{"analysis_key":"ci.yml:build","category":"ci.yml:build/language:js","message":{"text":"Tainted path"},"classifications":["test","library"],"location":{"path":"a.js","start_line":3,"end_line":3,"start_column":7,"end_column":18}}`,
			`"instances":[{"analysis_key":"ci.yml:build","category":"ci.yml:build/language:js","message":{"text":"Tainted path"},"classifications":["test","library"],"location":{"path":"a.js","start_line":3,"end_line":3,"start_column":7,"end_column":18}}]`,
		} {
			f := alertDoc(t, EventCodeScanning, "created", `{"number":1,"tool":{"name":"CodeQL","version":"2.20.1"},"assignees":[{"login":"octocat"}],`+shape+`}`, "")
			if strings.Join(f.Classifications, ",") != "test,library" || f.Message != "Tainted path" ||
				f.Location.StartColumn != 7 || f.Location.EndColumn != 18 || strings.Join(f.Assignees, ",") != "octocat" {
				t.Errorf("%s: classifications %q message %q location %+v assignees %q", shape[:20], f.Classifications, f.Message, f.Location, f.Assignees)
			}
			if f.Analysis == nil || *f.Analysis != (finding.Analysis{ToolVersion: "2.20.1", Category: "ci.yml:build/language:js", AnalysisKey: "ci.yml:build"}) {
				t.Errorf("%s: analysis %+v", shape[:20], f.Analysis)
			}
		}
		f := alertDoc(t, EventCodeScanning, "created", `{"number":1,"tool":{"name":"CodeQL","version":null},"most_recent_instance":{"message":{"text":""},"classifications":[]}}`, "")
		if f.Analysis != nil || f.Message != "" || len(f.Classifications) != 0 {
			t.Errorf("absent values written: analysis %+v message %q classifications %q", f.Analysis, f.Message, f.Classifications)
		}
	})
	t.Run("secret", func(t *testing.T) {
		f := alertDoc(t, EventSecretScanning, "created", `{"number":1,"validity":"active","publicly_leaked":true,"multi_repo":false,
			"push_protection_bypassed":true,"push_protection_bypassed_by":{"login":"monalisa"},"push_protection_bypassed_at":"2020-11-06T21:48:51Z",
			"assigned_to":{"login":"octocat"}}`, "")
		if f.Validity != "active" || f.PubliclyLeaked == nil || !*f.PubliclyLeaked || f.MultiRepo == nil || *f.MultiRepo {
			t.Errorf("validity %q publiclyLeaked %v multiRepo %v", f.Validity, f.PubliclyLeaked, f.MultiRepo)
		}
		if f.PushProtectionBypass == nil || *f.PushProtectionBypass != (finding.PushProtectionBypass{By: "monalisa", At: "2020-11-06T21:48:51Z"}) {
			t.Errorf("bypass %+v", f.PushProtectionBypass)
		}
		if strings.Join(f.Assignees, ",") != "octocat" {
			t.Errorf("assignees %q", f.Assignees)
		}
		// Not bypassed: no bypass, whatever else the alert says.
		f = alertDoc(t, EventSecretScanning, "created", `{"number":1,"push_protection_bypassed":false,"push_protection_bypassed_by":{"login":"monalisa"},"push_protection_bypassed_at":"2020-11-06T21:48:51Z"}`, "")
		if f.PushProtectionBypass != nil || f.PubliclyLeaked != nil || f.MultiRepo != nil || f.Validity != "" || f.Assignees != nil {
			t.Errorf("absent values written: %+v", f)
		}
	})
	// A false boolean is a fact GitHub gave: it is in the document.
	d := restDoc(t, EventSecretScanning, `{"number":1,"publicly_leaked":false,"multi_repo":false}`, testNow)
	if b := render(t, d); !strings.Contains(string(b), `"publiclyLeaked": false`) || !strings.Contains(string(b), `"multiRepo": false`) {
		t.Errorf("false booleans left out:\n%s", b)
	}
}

func deref64(f *float64) float64 {
	if f == nil {
		return -1
	}
	return *f
}
