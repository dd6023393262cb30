package transform

import (
	"strings"
	"testing"
)

func TestDefaultsValid(t *testing.T) {
	for _, ds := range Datasets() {
		if _, err := ParseMap(ds, DefaultJSON(ds)); err != nil {
			t.Errorf("embedded %s map: %v", ds, err)
		}
	}
	m := Defaults()
	for _, ds := range Datasets() {
		if m.Map(ds) == nil || m.Map(ds).Dataset() != ds || len(m.Map(ds).Rows()) == 0 {
			t.Errorf("Defaults() has no usable %s map", ds)
		}
	}
	if DefaultJSON("nope") != nil {
		t.Error("DefaultJSON of an unknown dataset")
	}
}

func TestParseMapRejects(t *testing.T) {
	base := string(DefaultJSON("sast"))
	for _, tc := range []struct{ name, dataset, json, want string }{
		{"bad json", "sast", `{"dataset":`, "parse sast map"},
		{"unknown field", "sast", `{"dataset":"sast","rows":[],"extra":1}`, "unknown field"},
		{"wrong dataset", "sca", base, `dataset field is "sast"`},
		{"unknown dataset", "dast", base, "unknown dataset"},
		{"unknown function", "sast", strings.Replace(base, `"function": "cweFromTags"`, `"function": "cweFromTagz"`, 1), `unknown function "cweFromTagz"`},
		{"unknown target", "sast", strings.Replace(base, `"target": "findings[0].ruleId"`, `"target": "findings[0].cweId"`, 1), `unknown target "findings[0].cweId"`},
		{"missing required", "sast", strings.Replace(base, `"target": "findings[0].severity"`, `"target": "findings[0].name2"`, 1), "required target"},
		{"foreign alert root", "sast", strings.Replace(base, `"codeScanningAlerts.rule.id"}`, `"dependabotAlerts.rule.id"}`, 1), "reads codeScanningAlerts"},
		{"unknown context", "sast", strings.Replace(base, `"$action"`, `"$actoin"`, 1), "unknown context source"},
		{"bad path", "sast", strings.Replace(base, `"codeScanningAlerts.rule.id"}`, `"codeScanningAlerts.rule[x].id"}`, 1), "bad index"},
		{"whole alert", "sast", strings.Replace(base, `"codeScanningAlerts.rule.id"}`, `"codeScanningAlerts"}`, 1), "name a field of the alert"},
		{"arity", "sast", strings.Replace(base, `"source": ["codeScanningAlerts.state", "$action"]`, `"source": ["codeScanningAlerts.state"]`, 1), "takes 2 to 2 sources"},
		{"template without format", "sca", strings.Replace(string(DefaultJSON("sca")), `"format": "Upgrade {0} to {1}"`, `"fmt": "x"`, 1), "needs args.format"},
		{"value of wrong type", "sast", strings.Replace(base, `{"target": "vendorName", "value": "GitHub"}`, `{"target": "vendorName", "value": {"a":1}}`, 1), "want a string"},
		{"firstElseLatest with one source", "sast", strings.Replace(base, `"function": "firstElseLatest", "source": ["codeScanningAlerts.updated_at", "codeScanningAlerts.fixed_at", "codeScanningAlerts.dismissed_at", "codeScanningAlerts.created_at", "$eventTime"]`, `"function": "firstElseLatest", "source": ["codeScanningAlerts.updated_at"]`, 1), "takes at least 2 sources"},
		{"duplicate target", "sast", strings.Replace(base, `"target": "findings[0].name"`, `"target": "findings[0].ruleId"`, 1), "mapped twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseMap(tc.dataset, []byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want one containing %q", err, tc.want)
			}
		})
	}
	// Without a severity row at all.
	var kept []string
	for _, line := range strings.Split(base, "\n") {
		if !strings.Contains(line, `"findings[0].severity"`) {
			kept = append(kept, line)
		}
	}
	if _, err := ParseMap("sast", []byte(strings.Join(kept, "\n"))); err == nil || !strings.Contains(err.Error(), "required target") {
		t.Errorf("no severity row: %v", err)
	}
}

// TestMapIsData: an operator's change to a map changes the output.
func TestMapIsData(t *testing.T) {
	changed := strings.Replace(string(DefaultJSON("sast")), `"value": "GitHub Code Security"`, `"value": "CodeQL at ACME"`, 1)
	changed = strings.Replace(changed, `{"target": "findings[0].ruleId", "source": "codeScanningAlerts.rule.id"}`,
		`{"target": "findings[0].ruleId", "source": "codeScanningAlerts.rule.id", "function": "template", "args": {"format": "gh:{0}"}}`, 1)
	mp, err := ParseMap("sast", []byte(changed))
	if err != nil {
		t.Fatal(err)
	}
	maps := Defaults().With("sast", mp)
	d, err := maps.Alert(Event{Name: EventCodeScanning, Payload: readFile(t, repoRoot+"/webhooks/code_scanning_alert/created.payload.json")}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if d.VendorProductName != "CodeQL at ACME" || d.Findings[0].RuleID != "gh:java/sql-injection" {
		t.Errorf("changed map not applied: %q %q", d.VendorProductName, d.Findings[0].RuleID)
	}
	// With leaves the original alone and ignores a map of another dataset.
	if Defaults().With("sca", mp).Map("sca") == mp {
		t.Error("With accepted a sast map as sca")
	}
	d, _ = Defaults().Alert(Event{Name: EventCodeScanning, Payload: readFile(t, repoRoot+"/webhooks/code_scanning_alert/created.payload.json")}, testNow)
	if d.VendorProductName != "GitHub Code Security" {
		t.Errorf("defaults changed: %q", d.VendorProductName)
	}
}

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{"a.b.c", "a b c"},
		{"a.b[0].c", "a b [0] c"},
		{"a.b[].c", "a b [] c"},
		{"a[1][2]", "a [1] [2]"},
	} {
		segs, err := parsePath(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		var parts []string
		for _, s := range segs {
			switch {
			case s.index == -1:
				parts = append(parts, s.key)
			case s.index == -2:
				parts = append(parts, "[]")
			default:
				parts = append(parts, "["+string(rune('0'+s.index))+"]")
			}
		}
		if got := strings.Join(parts, " "); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"", "[0]", "a..b", "a[", "a[x]", "a]b", "a[0]b"} {
		if _, err := parsePath(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
