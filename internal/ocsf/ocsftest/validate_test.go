package ocsftest_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/ocsf/ocsftest"
)

func load(t *testing.T) *ocsftest.Schema {
	t.Helper()
	s, err := ocsftest.Load(ocsftest.Dir())
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return s
}

// golden reads one of the ocsf package's golden events as a map.
func golden(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ocsftest.Dir(), "..", "golden", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// at walks a dotted path ("vulnerabilities.0.cwe") to the parent of its
// last step and returns the parent and the last step.
func at(t *testing.T, m map[string]any, path string) (parent any, last string) {
	t.Helper()
	steps := strings.Split(path, ".")
	var cur any = m
	for _, s := range steps[:len(steps)-1] {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[s]
		case []any:
			i, _ := strconv.Atoi(s)
			cur = c[i]
		default:
			t.Fatalf("path %s: %s is not in a container", path, s)
		}
	}
	return cur, steps[len(steps)-1]
}

func set(t *testing.T, m map[string]any, path string, v any) {
	t.Helper()
	p, k := at(t, m, path)
	switch c := p.(type) {
	case map[string]any:
		c[k] = v
	case []any:
		i, _ := strconv.Atoi(k)
		c[i] = v
	default:
		t.Fatalf("set %s: parent is %T", path, p)
	}
}

func del(t *testing.T, m map[string]any, path string) {
	t.Helper()
	p, k := at(t, m, path)
	c, ok := p.(map[string]any)
	if !ok {
		t.Fatalf("delete %s: parent is %T", path, p)
	}
	if _, ok := c[k]; !ok {
		t.Fatalf("delete %s: not present", path)
	}
	delete(c, k)
}

func validate(t *testing.T, s *ocsftest.Schema, m map[string]any) error {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return s.Validate(b)
}

func TestValidGoldenEventsPass(t *testing.T) {
	s := load(t)
	for _, name := range []string{"sast-import", "sca-created", "secret-fixed"} {
		if err := validate(t, s, golden(t, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestValidatorRejects breaks a valid event one way at a time; the
// validator must name each problem.
func TestValidatorRejects(t *testing.T) {
	s := load(t)
	for _, tc := range []struct {
		name  string
		base  string // golden event
		spoil func(t *testing.T, m map[string]any)
		want  string // in the error
	}{
		{"required attribute of the class", "sast-import", func(t *testing.T, m map[string]any) { del(t, m, "metadata") }, "metadata: required attribute of vulnerability_finding missing"},
		{"required attribute of an object", "sast-import", func(t *testing.T, m map[string]any) { del(t, m, "finding_info.uid") }, "finding_info.uid: required attribute of finding_info missing"},
		{"required attribute of a nested object", "sast-import", func(t *testing.T, m map[string]any) {
			del(t, m, "vulnerabilities.0.affected_code.0.file.type_id")
		}, "vulnerabilities[0].affected_code[0].file.type_id: required attribute of file missing"},
		{"required attribute from the base object", "sca-created", func(t *testing.T, m map[string]any) {
			del(t, m, "vulnerabilities.0.affected_packages.0.version")
		}, "affected_packages[0].version: required attribute of affected_package missing"},
		{"timestamp as a string", "sast-import", func(t *testing.T, m map[string]any) { set(t, m, "time", "2026-11-21T10:00:00Z") }, "time: want an integer"},
		{"integer with a fraction", "sast-import", func(t *testing.T, m map[string]any) {
			set(t, m, "vulnerabilities.0.affected_code.0.start_line", 4.5)
		}, "start_line: 4.5 is not a integer_t"},
		{"integer_t overflow", "sast-import", func(t *testing.T, m map[string]any) {
			set(t, m, "vulnerabilities.0.affected_code.0.start_line", float64(1<<40))
		}, "does not fit an integer_t"},
		{"float as a string", "sca-created", func(t *testing.T, m map[string]any) {
			set(t, m, "vulnerabilities.0.cve.cvss.0.base_score", "5.3")
		}, "base_score: want a number"},
		{"string as a number", "sca-created", func(t *testing.T, m map[string]any) {
			set(t, m, "vulnerabilities.0.cve.uid", 2022)
		}, "cve.uid: want a string"},
		{"boolean as a string", "sca-created", func(t *testing.T, m map[string]any) {
			set(t, m, "vulnerabilities.0.is_fix_available", "yes")
		}, "is_fix_available: want a boolean"},
		{"array as an object", "sast-import", func(t *testing.T, m map[string]any) {
			set(t, m, "vulnerabilities", map[string]any{"cwe": map[string]any{"uid": "CWE-89"}})
		}, "vulnerabilities: want an array of vulnerability"},
		{"array element of the wrong type", "sast-import", func(t *testing.T, m map[string]any) {
			set(t, m, "resources.0.labels", []any{"topic:x", 7})
		}, "labels[1]: want a string"},
		{"object as a string", "sast-import", func(t *testing.T, m map[string]any) { set(t, m, "finding_info", "x") }, "finding_info: want a finding_info object"},
		{"null", "sast-import", func(t *testing.T, m map[string]any) { set(t, m, "message", nil) }, "message: want a string"},
		{"enum value", "sast-import", func(t *testing.T, m map[string]any) { set(t, m, "status_id", 7) }, "status_id: 7 is not one of"},
		{"enum value of an object", "secret-fixed", func(t *testing.T, m map[string]any) {
			set(t, m, "data_security.detection_system_id", 13)
		}, "detection_system_id: 13 is not one of"},
		{"caption of an enum value", "sast-import", func(t *testing.T, m map[string]any) { set(t, m, "severity", "Severe") }, `severity: "Severe" is not the caption "Critical"`},
		{"deprecated enum value", "secret-fixed", func(t *testing.T, m map[string]any) {
			set(t, m, "activity_id", 4)
			set(t, m, "activity_name", "Suppressed")
			set(t, m, "type_uid", 200604)
		}, "enum value 4 (Suppressed) is deprecated"},
		{"deprecated attribute", "sast-import", func(t *testing.T, m map[string]any) {
			set(t, m, "resource", map[string]any{"name": "x"})
		}, "resource: deprecated attribute"},
		{"type_uid", "sast-import", func(t *testing.T, m map[string]any) { set(t, m, "type_uid", 200202) }, "type_uid: 200202, want class_uid*100 + activity_id = 200201"},
		{"category_uid", "sast-import", func(t *testing.T, m map[string]any) { set(t, m, "category_uid", 3) }, "category_uid: 3, want 2"},
		{"unknown class", "sast-import", func(t *testing.T, m map[string]any) { set(t, m, "class_uid", 2099) }, "class_uid: 2099 is not a class"},
		{"unknown attribute", "sast-import", func(t *testing.T, m map[string]any) { set(t, m, "findingKey", "x") }, "findingKey: not an attribute of vulnerability_finding"},
		{"unknown nested attribute", "sast-import", func(t *testing.T, m map[string]any) {
			set(t, m, "vulnerabilities.0.cwe.name", "SQL injection")
		}, "vulnerabilities[0].cwe.name: not an attribute of cwe"},
		{"attribute of another class", "sast-import", func(t *testing.T, m map[string]any) {
			set(t, m, "data_security", map[string]any{"detection_system_id": 11})
		}, "data_security: not an attribute of vulnerability_finding"},
		{"just_one: two", "sast-import", func(t *testing.T, m map[string]any) {
			set(t, m, "vulnerabilities.0.cve", map[string]any{"uid": "CVE-2024-1"})
		}, "vulnerability needs exactly one of [advisory cve cwe], has 2"},
		{"just_one: none", "sast-import", func(t *testing.T, m map[string]any) { del(t, m, "vulnerabilities.0.cwe") }, "vulnerability needs exactly one of [advisory cve cwe], has 0"},
		{"at_least_one", "sast-import", func(t *testing.T, m map[string]any) {
			del(t, m, "resources.0.uid")
			del(t, m, "resources.0.name")
		}, "resources[0]: resource_details needs at least one of [name uid]"},
		{"at_least_one inherited by an object", "sast-import", func(t *testing.T, m map[string]any) {
			del(t, m, "resources.0.owner.name")
		}, "resources[0].owner: user needs at least one of [account name uid]"},
		{"type pattern", "sast-import", func(t *testing.T, m map[string]any) { set(t, m, "resources.0.ip", "not-an-ip") }, `resources[0].ip: "not-an-ip" does not match the ip_t pattern`},
		{"applied profile's required attribute", "sast-import", func(t *testing.T, m map[string]any) {
			set(t, m, "metadata.profiles", []any{"cloud"})
		}, "cloud: required attribute of vulnerability_finding missing"},
		{"trailing data", "sast-import", nil, "data after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := golden(t, tc.base)
			var err error
			if tc.spoil == nil {
				b, _ := json.Marshal(m)
				err = s.Validate(append(b, []byte(`{}`)...))
			} else {
				tc.spoil(t, m)
				err = validate(t, s, m)
			}
			if err == nil {
				t.Fatalf("accepted; want an error with %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n%v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// TestProfileAttributeAllowedWithoutProfile: an attribute a profile brings
// is known to the class, and required only when the profile is applied.
func TestProfileAttributeAllowedWithoutProfile(t *testing.T) {
	s := load(t)
	m := golden(t, "sast-import")
	set(t, m, "is_alert", true) // security_control profile
	if err := validate(t, s, m); err != nil {
		t.Fatalf("profile attribute rejected: %v", err)
	}
}
