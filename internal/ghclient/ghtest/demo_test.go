package ghtest

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/webhook/webhooktest"
)

// The demo world varies: several rules, tools, severities, advisories
// and secret types, and each alert's JSON agrees with its state.
func TestSeedDemoVaries(t *testing.T) {
	s := testServer(t, Options{})
	d := s.SeedDemo()
	rules, tools, sevs, advisories, secrets := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, r := range d.Repositories {
		for _, k := range Kinds() {
			for _, a := range s.Alerts(r.ID, k) {
				var m struct {
					State string
					Rule  struct {
						ID                    string
						SecuritySeverityLevel *string `json:"security_severity_level"`
					}
					Tool             struct{ Name string }
					SecurityAdvisory struct {
						GHSAID string `json:"ghsa_id"`
					} `json:"security_advisory"`
					SecretType string `json:"secret_type"`
				}
				if err := json.Unmarshal(a.Raw, &m); err != nil {
					t.Fatalf("%s alert %d of %s: %v", k, a.Number, r.FullName, err)
				}
				if m.State != a.State {
					t.Errorf("%s alert %d of %s: JSON state %q, alert state %q", k, a.Number, r.FullName, m.State, a.State)
				}
				switch k {
				case CodeScanning:
					rules[m.Rule.ID], tools[m.Tool.Name] = true, true
					if m.Rule.SecuritySeverityLevel != nil {
						sevs[*m.Rule.SecuritySeverityLevel] = true
					}
				case Dependabot:
					advisories[m.SecurityAdvisory.GHSAID] = true
				case SecretScanning:
					secrets[m.SecretType] = true
				}
			}
		}
	}
	if len(rules) < 8 || len(tools) < 3 || len(sevs) < 3 || len(advisories) < 5 || len(secrets) < 4 {
		t.Errorf("not varied: %d rules, %d tools, %d security severities, %d advisories, %d secret types", len(rules), len(tools), len(sevs), len(advisories), len(secrets))
	}
}

// AddDelivered makes the sample deliveries' repositories and alerts
// exist, with their ids, in their latest state; two repositories of one
// name are told apart.
func TestAddDelivered(t *testing.T) {
	s := testServer(t, Options{})
	s.SeedDemo()
	samples, err := webhooktest.Samples(filepath.Join("..", "..", "..", "testdata", "webhooks"))
	if err != nil {
		t.Fatal(err)
	}
	var ds []Delivered
	for _, sm := range samples {
		ds = append(ds, Delivered{Event: sm.Event, Payload: sm.Body})
	}
	made := s.AddDelivered(ds)
	byID := map[int64]Repository{}
	for _, r := range made {
		byID[r.ID] = r
	}
	for id, name := range map[int64]string{337911632: "Codertocat/Hello-World", 512875663: "wolfy1339/pika-pack", 1296269: "octocat/hello-world"} {
		if r, ok := byID[id]; !ok || r.FullName != name {
			t.Errorf("repository %d: %+v, want %s", id, r, name)
		}
	}
	names := map[string]bool{}
	for _, r := range made {
		if names[strings.ToLower(r.FullName)] {
			t.Errorf("two repositories named %s", r.FullName)
		}
		names[strings.ToLower(r.FullName)] = true
	}
	// Every alert of a delivery is there, in the state of its latest one.
	for _, sm := range samples {
		kind, ok := deliveredKinds[sm.Event]
		if !ok {
			continue
		}
		var p struct {
			Alert      struct{ Number int64 } `json:"alert"`
			Repository struct{ ID int64 }     `json:"repository"`
		}
		if json.Unmarshal(sm.Body, &p) != nil || p.Alert.Number == 0 {
			continue
		}
		found := false
		for _, a := range s.Alerts(p.Repository.ID, kind) {
			found = found || a.Number == p.Alert.Number && a.Raw != nil
		}
		if !found {
			t.Errorf("%s/%s: alert %d of repository %d missing", sm.Event, sm.Name, p.Alert.Number, p.Repository.ID)
		}
	}
	var fixed bool
	for _, a := range s.Alerts(337911632, CodeScanning) {
		fixed = a.Number == 10 && a.State == "fixed"
	}
	if !fixed {
		t.Error("Codertocat/Hello-World's alert 10 is not in its latest state (fixed)")
	}
	auth := token(t, s, made[0].InstallationID)
	if st, _, body := get(t, s, s.URL()+"repos/Codertocat/Hello-World/code-scanning/alerts/10", auth); st != 200 || !strings.Contains(string(body), `"number":10`) {
		t.Errorf("GET alert 10: %d %.100s", st, body)
	}
}
