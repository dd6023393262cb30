package scope

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/config"
	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// build parses env through the same flag set the binaries use.
func build(t *testing.T, env map[string]string, args ...string) (*Filter, error) {
	t.Helper()
	s := config.New("test", func(k string) string { return env[k] }, io.Discard)
	get := Flags(s)
	if err := s.Parse(args); err != nil {
		return nil, err
	}
	return get()
}

func mustBuild(t *testing.T, env map[string]string) *Filter {
	t.Helper()
	f, err := build(t, env)
	if err != nil {
		t.Fatalf("build %v: %v", env, err)
	}
	return f
}

func TestSettingsInvalidNameTheSetting(t *testing.T) {
	for _, c := range []struct{ env, value string }{
		{EnvIncludeRepos, "octo-org/["},
		{EnvIncludeRepos, "repo-*"},
		{EnvExcludeRepos, "a/b,,c/d"},
		{EnvExcludeRepos, "a/b/c"},
		{EnvIncludeTypes, "sast,dast"},
		{EnvMinSeverity, "SEVERE"},
		{EnvExcludeArchived, "yes please"},
		{EnvExcludeForks, "maybe"},
		{EnvIncludeProperties, "team"},
		{EnvIncludeProperties, "=x"},
		{EnvIncludeProperties, "team="},
		{EnvOwnerProperty, "a,b"},
	} {
		_, err := build(t, map[string]string{c.env: c.value})
		var ce *config.Error
		if !errors.As(err, &ce) || ce.Setting != c.env || config.ExitCode(err) != 2 {
			t.Errorf("%s=%q: got %v, want a config error naming %s", c.env, c.value, err, c.env)
		}
	}
}

func TestFlagWinsOverEnv(t *testing.T) {
	f, err := build(t, map[string]string{EnvMinSeverity: "LOW"}, "-min-severity", "HIGH")
	if err != nil {
		t.Fatal(err)
	}
	if f.Severity(finding.SeverityMedium) || !f.Severity(finding.SeverityHigh) {
		t.Errorf("flag -min-severity HIGH not applied over env LOW")
	}
}

func TestDefaultsKeepEverything(t *testing.T) {
	f := mustBuild(t, nil)
	if !f.All() || f.Fingerprint() != "" {
		t.Errorf("defaults: All=%v fingerprint=%q, want true and empty", f.All(), f.Fingerprint())
	}
	var nilF *Filter
	r := Repository{FullName: "a/b", Archived: true, Fork: true}
	for _, g := range []*Filter{f, nilF} {
		if g.Repository(r) != In || !g.Type(finding.Secret) || !g.Severity("") {
			t.Errorf("defaults left something out")
		}
	}
}

func doc(dataset, severity string) *finding.Document {
	typ := map[string]string{finding.SAST: finding.TypeSAST, finding.SCA: finding.TypeSCA, finding.Secret: finding.TypeSecret}[dataset]
	return &finding.Document{FindingKey: finding.Key(dataset, 1, 1), FindingTypeName: typ, Findings: []finding.Finding{{Severity: severity}}}
}

func props(kv ...string) map[string]finding.PropertyValue {
	m := map[string]finding.PropertyValue{}
	for i := 0; i+1 < len(kv); i += 2 {
		if strings.Contains(kv[i+1], "|") {
			m[kv[i]] = finding.PropertyValue{Values: strings.Split(kv[i+1], "|"), Multi: true}
		} else {
			m[kv[i]] = finding.PropertyValue{Values: []string{kv[i+1]}}
		}
	}
	return m
}

func TestEachFilterAloneAndCombined(t *testing.T) {
	plain := Repository{FullName: "Octo-Org/api", PropertiesKnown: true, Properties: props("team", "payments", "env", "prod|staging")}
	archived := plain
	archived.Archived = true
	fork := plain
	fork.Fork = true
	other := plain
	other.FullName = "octo-org/legacy-web"
	unknownProps := Repository{FullName: "octo-org/api"}
	cases := []struct {
		name string
		env  map[string]string
		doc  *finding.Document
		repo Repository
		want Verdict
	}{
		{"include glob matches case-insensitively", map[string]string{EnvIncludeRepos: "octo-org/a*"}, doc("sast", "LOW"), plain, In},
		{"include glob misses", map[string]string{EnvIncludeRepos: "octo-org/a*"}, doc("sast", "LOW"), other, Out},
		{"exclude glob", map[string]string{EnvExcludeRepos: "*/legacy-*"}, doc("sast", "LOW"), other, Out},
		{"exclude wins over include", map[string]string{EnvIncludeRepos: "octo-org/*", EnvExcludeRepos: "octo-org/api"}, doc("sast", "LOW"), plain, Out},
		{"type in", map[string]string{EnvIncludeTypes: "sast, SCA"}, doc("sca", "LOW"), plain, In},
		{"type out", map[string]string{EnvIncludeTypes: "sast"}, doc("secret", "CRITICAL"), plain, Out},
		{"severity at the minimum", map[string]string{EnvMinSeverity: "high"}, doc("sca", "HIGH"), plain, In},
		{"severity below", map[string]string{EnvMinSeverity: "HIGH"}, doc("sca", "MEDIUM"), plain, Out},
		{"unknown severity is INFO", map[string]string{EnvMinSeverity: "LOW"}, doc("sast", ""), plain, Out},
		{"archived kept by default", nil, doc("sast", "LOW"), archived, In},
		{"archived excluded", map[string]string{EnvExcludeArchived: "true"}, doc("sast", "LOW"), archived, Out},
		{"fork excluded", map[string]string{EnvExcludeForks: "true"}, doc("sast", "LOW"), fork, Out},
		{"fork kept when only archived excluded", map[string]string{EnvExcludeArchived: "true"}, doc("sast", "LOW"), fork, In},
		{"property single-select holds", map[string]string{EnvIncludeProperties: "team=payments"}, doc("sast", "LOW"), plain, In},
		{"property multi-select holds on any value", map[string]string{EnvIncludeProperties: "env=staging"}, doc("sast", "LOW"), plain, In},
		{"all conditions must hold", map[string]string{EnvIncludeProperties: "team=payments,env=dev"}, doc("sast", "LOW"), plain, Out},
		{"missing property", map[string]string{EnvIncludeProperties: "tier=1"}, doc("sast", "LOW"), plain, Out},
		{"properties unknown", map[string]string{EnvIncludeProperties: "team=payments"}, doc("sast", "LOW"), unknownProps, Unknown},
		{"name decides before unknown properties", map[string]string{EnvIncludeProperties: "team=payments", EnvExcludeRepos: "octo-org/*"}, doc("sast", "LOW"), unknownProps, Out},
		{"combined: all hold", map[string]string{EnvIncludeRepos: "octo-org/*", EnvIncludeTypes: "sast,sca", EnvMinSeverity: "MEDIUM", EnvExcludeArchived: "true", EnvExcludeForks: "true", EnvIncludeProperties: "team=payments"}, doc("sca", "CRITICAL"), plain, In},
		{"combined: one fails", map[string]string{EnvIncludeRepos: "octo-org/*", EnvIncludeTypes: "sast,sca", EnvMinSeverity: "MEDIUM", EnvExcludeArchived: "true", EnvExcludeForks: "true", EnvIncludeProperties: "team=payments"}, doc("sca", "CRITICAL"), archived, Out},
	}
	for _, c := range cases {
		f := mustBuild(t, c.env)
		if got := f.Finding(c.doc, c.repo); got != c.want {
			t.Errorf("%s: Finding = %s, want %s", c.name, got, c.want)
		}
		if f.All() {
			if c.env != nil {
				t.Errorf("%s: All() with filters set", c.name)
			}
		} else if f.Fingerprint() == "" {
			t.Errorf("%s: empty fingerprint with filters set", c.name)
		}
	}
}

func TestFingerprint(t *testing.T) {
	a := mustBuild(t, map[string]string{EnvIncludeRepos: "a/*,b/*", EnvIncludeTypes: "sast,sca"})
	b := mustBuild(t, map[string]string{EnvIncludeRepos: " B/*, a/* ", EnvIncludeTypes: "sca,sast"})
	c := mustBuild(t, map[string]string{EnvIncludeRepos: "a/*", EnvIncludeTypes: "sast,sca"})
	d := mustBuild(t, map[string]string{EnvOwnerProperty: "team"})
	if a.Fingerprint() != b.Fingerprint() {
		t.Errorf("same configuration written differently: %q vs %q", a.Fingerprint(), b.Fingerprint())
	}
	if a.Fingerprint() == c.Fingerprint() {
		t.Errorf("a narrower INCLUDE_REPOS kept the fingerprint %q", a.Fingerprint())
	}
	if d.Fingerprint() == "" {
		t.Errorf("another OWNER_PROPERTY kept the default fingerprint")
	}
}

func TestDecorate(t *testing.T) {
	f := mustBuild(t, nil)
	r, err := ParseRepository([]byte(`{"id":7,"full_name":"octo-org/api","fork":true,"topics":["go","api","go"],
		"custom_properties":{"owner":"team-a","business_unit":["Payments","Risk"],"env":"prod","empty":null}}`))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Fork || !r.PropertiesKnown || r.ID != 7 {
		t.Fatalf("ParseRepository = %+v", r)
	}
	var ad finding.AssetDetail
	f.Decorate(&ad, r)
	wantTags := []string{"business_unit:Payments", "business_unit:Risk", "env:prod", "owner:team-a", "topic:api", "topic:go"}
	if !reflect.DeepEqual(ad.Tags, wantTags) {
		t.Errorf("tags = %q, want %q", ad.Tags, wantTags)
	}
	if ad.Ownership == nil || ad.Ownership.Owner != "team-a" || ad.Ownership.BusinessEntity != "Payments, Risk" {
		t.Errorf("ownership = %+v", ad.Ownership)
	}
	if _, ok := ad.CustomProperties["empty"]; ok || len(ad.CustomProperties) != 3 || !ad.CustomProperties["business_unit"].Multi {
		t.Errorf("customProperties = %+v", ad.CustomProperties)
	}

	// Unknown properties leave what the asset had (a stored document's)
	// and recompute the tags from it.
	r2, _ := ParseRepository([]byte(`{"id":7,"full_name":"octo-org/api","topics":["new"]}`))
	f.Decorate(&ad, r2)
	if ad.CustomProperties == nil || ad.Ownership == nil || !reflect.DeepEqual(ad.Tags[len(ad.Tags)-1], "topic:new") {
		t.Errorf("after unknown properties: %+v", ad)
	}
	// Known and empty clears them.
	r3, _ := ParseRepository([]byte(`{"id":7,"full_name":"octo-org/api","custom_properties":{}}`))
	f.Decorate(&ad, r3)
	if ad.CustomProperties != nil || ad.Ownership != nil || ad.Tags != nil {
		t.Errorf("after empty properties: %+v", ad)
	}

	// Other property names.
	g := mustBuild(t, map[string]string{EnvOwnerProperty: "env", EnvBusinessEntityProperty: "tier"})
	g.Decorate(&ad, r)
	if ad.Ownership == nil || ad.Ownership.Owner != "prod" || ad.Ownership.BusinessEntity != "" {
		t.Errorf("OWNER_PROPERTY=env: ownership = %+v", ad.Ownership)
	}
}

func TestPropertiesFromList(t *testing.T) {
	m, err := PropertiesFromList([]PropertyValue{
		{Name: "team", Value: []byte(`"a"`)}, {Name: "langs", Value: []byte(`["go","js"]`)}, {Name: "gone", Value: []byte(`null`)}, {Name: "absent"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := props("team", "a", "langs", "go|js")
	if !reflect.DeepEqual(m, want) {
		t.Errorf("PropertiesFromList = %+v, want %+v", m, want)
	}
	if _, err := PropertiesFromList([]PropertyValue{{Name: "x", Value: []byte(`{}`)}}); err == nil {
		t.Errorf("an object value was accepted")
	}
}

func TestRepositoryOfDocument(t *testing.T) {
	d := &finding.Document{VendorAssetID: "9", AssetDetail: finding.AssetDetail{FullName: "o/r", RepositoryAssetClass: finding.RepositoryAssetClass{Archived: true},
		Tags: []string{"team:x", "topic:go"}, CustomProperties: props("team", "x")}}
	r := RepositoryOfDocument(d)
	if r.ID != 9 || r.FullName != "o/r" || !r.Archived || !r.PropertiesKnown || !reflect.DeepEqual(r.Topics, []string{"go"}) {
		t.Errorf("RepositoryOfDocument = %+v", r)
	}
}

func FuzzSettings(f *testing.F) {
	f.Add("octo-org/*,a/b", "*/legacy-*", "sast,sca", "HIGH", "true", "false", "team=a,env=prod", "octo/api")
	f.Add("[", "", "secret", "info", "1", "0", "x", "")
	f.Fuzz(func(t *testing.T, inc, exc, types, sev, arch, forks, props, name string) {
		st := Settings{IncludeRepos: inc, ExcludeRepos: exc, IncludeTypes: types, MinSeverity: sev, ExcludeArchived: arch, ExcludeForks: forks, IncludeProperties: props, OwnerProperty: "owner"}
		flt, err := st.Filter()
		if err != nil {
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Setting == "" {
				t.Fatalf("error without a setting: %v", err)
			}
			return
		}
		// Deterministic, and the fingerprint is stable.
		again, err := st.Filter()
		if err != nil || again.Fingerprint() != flt.Fingerprint() {
			t.Fatalf("second parse differs: %v", err)
		}
		r := Repository{FullName: name, PropertiesKnown: true}
		_ = flt.Finding(doc(finding.SAST, sev), r)
		if !flt.Name(name) && flt.Repository(r) != Out {
			t.Fatalf("a repository excluded by name is not out")
		}
	})
}

func FuzzParseRepository(f *testing.F) {
	f.Add([]byte(`{"id":1,"full_name":"a/b","topics":["x"],"custom_properties":{"a":"b","c":["d"],"e":null}}`))
	f.Add([]byte(`{"custom_properties":{"a":1}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRepository(b)
		if err != nil {
			return
		}
		var ad finding.AssetDetail
		(*Filter)(nil).Decorate(&ad, r)
		for i := 1; i < len(ad.Tags); i++ {
			if ad.Tags[i-1] >= ad.Tags[i] {
				t.Fatalf("tags not sorted and unique: %q", ad.Tags)
			}
		}
	})
}
