package priority_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/priority"
	"github.com/ghas-relay/ghas-relay/internal/transform"
)

func ptr[T any](v T) *T { return &v }

// doc is an ACTIVE finding of a type on a private, unarchived repository.
func doc(typeName, severity string) *finding.Document {
	return &finding.Document{
		FindingKey:      "x.1.1",
		FindingTypeName: typeName,
		AssetDetail:     finding.AssetDetail{RepositoryAssetClass: finding.RepositoryAssetClass{Visibility: "private"}},
		Findings:        []finding.Finding{{FindingStatus: finding.StatusActive, Severity: severity}},
	}
}

func sast(severity string) *finding.Document { return doc(finding.TypeSAST, severity) }
func secret(severity string) *finding.Document {
	return doc(finding.TypeSecret, severity)
}
func sca(severity string) *finding.Document {
	d := doc(finding.TypeSCA, severity)
	d.Findings[0].FindingType = &finding.FindingType{Vulnerability: &finding.Vulnerability{}}
	d.Findings[0].Product = &finding.Product{}
	return d
}

func with(d *finding.Document, fn func(d *finding.Document, f *finding.Finding)) *finding.Document {
	fn(d, &d.Findings[0])
	return d
}

// f is a factor in short.
func f(name, value string, points int) finding.Factor {
	return finding.Factor{Name: name, Value: value, Points: points}
}

func defaults(t testing.TB) *priority.Table {
	t.Helper()
	pt := transform.Defaults().Priority()
	if pt == nil {
		t.Fatal("no default priority table")
	}
	return pt
}

// TestScore: each factor of the default table alone, then combinations,
// with the exact score and factors.
func TestScore(t *testing.T) {
	pt := defaults(t)
	cases := []struct {
		name  string
		doc   *finding.Document
		score int
		want  []finding.Factor
	}{
		// severity: the word, or a numeric score × 10.
		{"critical", sast("CRITICAL"), 90, []finding.Factor{f("severity", "CRITICAL", 90)}},
		{"high", sast("HIGH"), 70, []finding.Factor{f("severity", "HIGH", 70)}},
		{"medium", sast("MEDIUM"), 45, []finding.Factor{f("severity", "MEDIUM", 45)}},
		{"low", sast("LOW"), 20, []finding.Factor{f("severity", "LOW", 20)}},
		{"info", sast("INFO"), 5, []finding.Factor{f("severity", "INFO", 5)}},
		{"unknown word", sast("SEVERE"), 0, []finding.Factor{f("severity", "SEVERE", 0)}},
		{"security-severity replaces the word", with(sast("HIGH"), func(_ *finding.Document, f *finding.Finding) { f.SecuritySeverityScore = ptr(8.8) }),
			88, []finding.Factor{f("severity", "security-severity 8.8", 88)}},
		{"security-severity rounds half up", with(sast("MEDIUM"), func(_ *finding.Document, f *finding.Finding) { f.SecuritySeverityScore = ptr(6.65) }),
			67, []finding.Factor{f("severity", "security-severity 6.65", 67)}},
		{"security-severity out of range is ignored", with(sast("HIGH"), func(_ *finding.Document, f *finding.Finding) { f.SecuritySeverityScore = ptr(42.0) }),
			70, []finding.Factor{f("severity", "HIGH", 70)}},
		{"cvss3", with(sca("CRITICAL"), func(_ *finding.Document, f *finding.Finding) {
			f.FindingType.Vulnerability.CVSS = &finding.CVSS{CVSS3Base: ptr(9.8), CVSS4Base: ptr(9.3)}
		}), 98, []finding.Factor{f("severity", "cvss3 9.8", 98)}},
		{"cvss4 when no v3", with(sca("HIGH"), func(_ *finding.Document, f *finding.Finding) {
			f.FindingType.Vulnerability.CVSS = &finding.CVSS{CVSS4Base: ptr(7.1)}
		}), 71, []finding.Factor{f("severity", "cvss4 7.1", 71)}},
		{"cvss without a score", with(sca("MEDIUM"), func(_ *finding.Document, f *finding.Finding) {
			f.FindingType.Vulnerability.CVSS = &finding.CVSS{Vector: "CVSS:3.1/AV:N"}
		}), 45, []finding.Factor{f("severity", "MEDIUM", 45)}},
		// epss bands.
		{"epss 0.5", with(sca("HIGH"), func(_ *finding.Document, f *finding.Finding) {
			f.FindingType.Vulnerability.ExploitCodeMaturity = ptr(0.5)
		}),
			85, []finding.Factor{f("severity", "HIGH", 70), f("epss", "0.5", 15)}},
		{"epss 0.97", with(sca("HIGH"), func(_ *finding.Document, f *finding.Finding) {
			f.FindingType.Vulnerability.ExploitCodeMaturity = ptr(0.97)
		}),
			85, []finding.Factor{f("severity", "HIGH", 70), f("epss", "0.97", 15)}},
		{"epss 0.1", with(sca("HIGH"), func(_ *finding.Document, f *finding.Finding) {
			f.FindingType.Vulnerability.ExploitCodeMaturity = ptr(0.1)
		}),
			78, []finding.Factor{f("severity", "HIGH", 70), f("epss", "0.1", 8)}},
		{"epss 0.01", with(sca("HIGH"), func(_ *finding.Document, f *finding.Finding) {
			f.FindingType.Vulnerability.ExploitCodeMaturity = ptr(0.01)
		}),
			73, []finding.Factor{f("severity", "HIGH", 70), f("epss", "0.01", 3)}},
		{"epss below the bands", with(sca("HIGH"), func(_ *finding.Document, f *finding.Finding) {
			f.FindingType.Vulnerability.ExploitCodeMaturity = ptr(0.0099)
		}),
			70, []finding.Factor{f("severity", "HIGH", 70)}},
		// secrets.
		{"active secret", with(secret("CRITICAL"), func(_ *finding.Document, f *finding.Finding) { f.Validity = "active" }),
			100, []finding.Factor{f("severity", "CRITICAL", 90), f("secret-validity", "active", 20)}}, // 110, clamped
		{"inactive secret", with(secret("HIGH"), func(_ *finding.Document, f *finding.Finding) { f.Validity = "inactive" }),
			40, []finding.Factor{f("severity", "HIGH", 70), f("secret-validity", "inactive", -30)}},
		{"unknown validity", with(secret("HIGH"), func(_ *finding.Document, f *finding.Finding) { f.Validity = "unknown" }),
			70, []finding.Factor{f("severity", "HIGH", 70)}},
		{"publicly leaked", with(secret("HIGH"), func(_ *finding.Document, f *finding.Finding) { f.PubliclyLeaked = ptr(true) }),
			80, []finding.Factor{f("severity", "HIGH", 70), f("publicly-leaked", "true", 10)}},
		{"not publicly leaked", with(secret("HIGH"), func(_ *finding.Document, f *finding.Finding) { f.PubliclyLeaked = ptr(false) }),
			70, []finding.Factor{f("severity", "HIGH", 70)}},
		{"multi-repo", with(secret("HIGH"), func(_ *finding.Document, f *finding.Finding) { f.MultiRepo = ptr(true) }),
			75, []finding.Factor{f("severity", "HIGH", 70), f("secret-reach", "multi-repo", 5)}},
		{"push protection bypassed", with(secret("HIGH"), func(_ *finding.Document, f *finding.Finding) {
			f.PushProtectionBypass = &finding.PushProtectionBypass{By: "octocat"}
		}), 75, []finding.Factor{f("severity", "HIGH", 70), f("secret-reach", "push-protection-bypassed", 5)}},
		// exposure.
		{"public", with(sast("HIGH"), func(d *finding.Document, _ *finding.Finding) {
			d.AssetDetail.RepositoryAssetClass.Visibility = "public"
		}),
			80, []finding.Factor{f("severity", "HIGH", 70), f("exposure", "public", 10)}},
		{"internal", with(sast("HIGH"), func(d *finding.Document, _ *finding.Finding) {
			d.AssetDetail.RepositoryAssetClass.Visibility = "internal"
		}),
			70, []finding.Factor{f("severity", "HIGH", 70)}},
		{"archived", with(sast("HIGH"), func(d *finding.Document, _ *finding.Finding) { d.AssetDetail.RepositoryAssetClass.Archived = true }),
			50, []finding.Factor{f("severity", "HIGH", 70), f("exposure", "archived", -20)}},
		// criticality.
		{"criticality critical", with(sast("HIGH"), func(d *finding.Document, _ *finding.Finding) {
			d.AssetDetail.RepositoryAssetClass.Criticality = "critical"
		}),
			85, []finding.Factor{f("severity", "HIGH", 70), f("criticality", "critical", 15)}},
		{"criticality high", with(sast("HIGH"), func(d *finding.Document, _ *finding.Finding) { d.AssetDetail.RepositoryAssetClass.Criticality = "high" }),
			78, []finding.Factor{f("severity", "HIGH", 70), f("criticality", "high", 8)}},
		{"criticality medium", with(sast("HIGH"), func(d *finding.Document, _ *finding.Finding) {
			d.AssetDetail.RepositoryAssetClass.Criticality = "medium"
		}),
			70, []finding.Factor{f("severity", "HIGH", 70)}},
		{"criticality low", with(sast("HIGH"), func(d *finding.Document, _ *finding.Finding) { d.AssetDetail.RepositoryAssetClass.Criticality = "low" }),
			60, []finding.Factor{f("severity", "HIGH", 70), f("criticality", "low", -10)}},
		{"criticality in capitals", with(sast("HIGH"), func(d *finding.Document, _ *finding.Finding) {
			d.AssetDetail.RepositoryAssetClass.Criticality = "Critical"
		}),
			85, []finding.Factor{f("severity", "HIGH", 70), f("criticality", "critical", 15)}},
		{"criticality unknown", with(sast("HIGH"), func(d *finding.Document, _ *finding.Finding) {
			d.AssetDetail.RepositoryAssetClass.Criticality = "tier-1"
		}),
			70, []finding.Factor{f("severity", "HIGH", 70)}},
		// corroborated.
		{"corroborated", with(sast("HIGH"), func(_ *finding.Document, f *finding.Finding) { f.Corroborated = true }),
			75, []finding.Factor{f("severity", "HIGH", 70), f("corroborated", "true", 5)}},
		// dependency.
		{"development", with(sca("HIGH"), func(_ *finding.Document, f *finding.Finding) { f.Product.DependencyScope = "development" }),
			55, []finding.Factor{f("severity", "HIGH", 70), f("dependency", "development", -15)}},
		{"runtime transitive", with(sca("HIGH"), func(_ *finding.Document, f *finding.Finding) {
			f.Product.DependencyScope, f.Product.DependencyRelationship = "runtime", "transitive"
		}), 70, []finding.Factor{f("severity", "HIGH", 70)}},
		// code context.
		{"test code", with(sast("HIGH"), func(_ *finding.Document, f *finding.Finding) { f.Classifications = []string{"test"} }),
			55, []finding.Factor{f("severity", "HIGH", 70), f("code-context", "test", -15)}},
		{"generated library", with(sast("HIGH"), func(_ *finding.Document, f *finding.Finding) { f.Classifications = []string{"generated", "library"} }),
			55, []finding.Factor{f("severity", "HIGH", 70), f("code-context", "generated, library", -15)}},
		{"test and source", with(sast("HIGH"), func(_ *finding.Document, f *finding.Finding) { f.Classifications = []string{"test", "source"} }),
			70, []finding.Factor{f("severity", "HIGH", 70)}},
		{"no classification", with(sast("HIGH"), func(_ *finding.Document, f *finding.Finding) { f.Classifications = []string{} }),
			70, []finding.Factor{f("severity", "HIGH", 70)}},
		// status.
		{"fixed scores 0, factors kept", with(sast("HIGH"), func(d *finding.Document, f *finding.Finding) {
			f.FindingStatus = finding.StatusFixed
			d.AssetDetail.RepositoryAssetClass.Visibility = "public"
		}), 0, []finding.Factor{f("severity", "HIGH", 70), f("exposure", "public", 10), f("status", "FIXED", 0)}},
		{"dismissed", with(sast("LOW"), func(_ *finding.Document, f *finding.Finding) { f.FindingStatus = finding.StatusDismissed }),
			0, []finding.Factor{f("severity", "LOW", 20), f("status", "DISMISSED", 0)}},
		{"removed", with(sast("LOW"), func(_ *finding.Document, f *finding.Finding) { f.FindingStatus = finding.StatusRemoved }),
			0, []finding.Factor{f("severity", "LOW", 20), f("status", "REMOVED", 0)}},

		// Combinations (docs/mapping.md works these through).
		{"critical SQL injection in an archived prototype", with(sast("CRITICAL"), func(d *finding.Document, f *finding.Finding) {
			d.AssetDetail.RepositoryAssetClass.Archived = true
			d.AssetDetail.RepositoryAssetClass.Criticality = "low"
		}), 60, []finding.Factor{f("severity", "CRITICAL", 90), f("exposure", "archived", -20), f("criticality", "low", -10)}},
		{"high SQL injection in the public payments service, seen by two tools", with(sast("HIGH"), func(d *finding.Document, f *finding.Finding) {
			d.AssetDetail.RepositoryAssetClass.Visibility = "public"
			d.AssetDetail.RepositoryAssetClass.Criticality = "critical"
			f.Corroborated = true
		}), 100, []finding.Factor{f("severity", "HIGH", 70), f("exposure", "public", 10), f("criticality", "critical", 15), f("corroborated", "true", 5)}},
		{"revoked test key", with(secret("HIGH"), func(_ *finding.Document, f *finding.Finding) {
			f.Validity = "inactive"
			f.PubliclyLeaked = ptr(true)
		}), 50, []finding.Factor{f("severity", "HIGH", 70), f("secret-validity", "inactive", -30), f("publicly-leaked", "true", 10)}},
		{"live leaked production secret, clamped", with(secret("CRITICAL"), func(d *finding.Document, f *finding.Finding) {
			f.Validity = "active"
			f.PubliclyLeaked = ptr(true)
			f.MultiRepo = ptr(true)
			d.AssetDetail.RepositoryAssetClass.Criticality = "high"
		}), 100, []finding.Factor{f("severity", "CRITICAL", 90), f("secret-validity", "active", 20), f("publicly-leaked", "true", 10),
			f("criticality", "high", 8), f("secret-reach", "multi-repo", 5)}},
		{"dev-only transitive dependency with a high EPSS", with(sca("HIGH"), func(_ *finding.Document, f *finding.Finding) {
			f.FindingType.Vulnerability.CVSS = &finding.CVSS{CVSS3Base: ptr(7.5)}
			f.FindingType.Vulnerability.ExploitCodeMaturity = ptr(0.62)
			f.Product.DependencyScope, f.Product.DependencyRelationship = "development", "transitive"
		}), 75, []finding.Factor{f("severity", "cvss3 7.5", 75), f("epss", "0.62", 15), f("dependency", "development", -15)}},
		{"info in test code of an archived low-criticality repository, clamped to 0", with(sast("INFO"), func(d *finding.Document, f *finding.Finding) {
			d.AssetDetail.RepositoryAssetClass.Archived = true
			d.AssetDetail.RepositoryAssetClass.Criticality = "low"
			f.Classifications = []string{"test"}
		}), 0, []finding.Factor{f("severity", "INFO", 5), f("exposure", "archived", -20), f("criticality", "low", -10), f("code-context", "test", -15)}},
		// The worked examples of docs/mapping.md not above.
		{"high SQL injection in the public payments service", with(sast("HIGH"), func(d *finding.Document, _ *finding.Finding) {
			d.AssetDetail.RepositoryAssetClass.Visibility = "public"
			d.AssetDetail.RepositoryAssetClass.Criticality = "critical"
		}), 95, []finding.Factor{f("severity", "HIGH", 70), f("exposure", "public", 10), f("criticality", "critical", 15)}},
		{"the imported SQL injection in the payments service, corroborated", with(sast("HIGH"), func(d *finding.Document, f *finding.Finding) {
			d.AssetDetail.RepositoryAssetClass.Visibility = "public"
			d.AssetDetail.RepositoryAssetClass.Criticality = "critical"
			f.SecuritySeverityScore, f.Corroborated = ptr(8.1), true
		}), 100, []finding.Factor{f("severity", "security-severity 8.1", 81), f("exposure", "public", 10), f("criticality", "critical", 15), f("corroborated", "true", 5)}},
		{"live production secret, publicly leaked", with(secret("CRITICAL"), func(_ *finding.Document, f *finding.Finding) {
			f.Validity, f.PubliclyLeaked = "active", ptr(true)
		}), 100, []finding.Factor{f("severity", "CRITICAL", 90), f("secret-validity", "active", 20), f("publicly-leaked", "true", 10)}},
		{"the same CVE in a runtime dependency", with(sca("HIGH"), func(_ *finding.Document, f *finding.Finding) {
			f.FindingType.Vulnerability.CVSS = &finding.CVSS{CVSS3Base: ptr(7.5)}
			f.FindingType.Vulnerability.ExploitCodeMaturity = ptr(0.62)
			f.Product.DependencyScope, f.Product.DependencyRelationship = "runtime", "transitive"
		}), 90, []finding.Factor{f("severity", "cvss3 7.5", 75), f("epss", "0.62", 15)}},
		{"high in test code of a public repository", with(sast("HIGH"), func(d *finding.Document, f *finding.Finding) {
			d.AssetDetail.RepositoryAssetClass.Visibility = "public"
			f.Classifications = []string{"test"}
		}), 65, []finding.Factor{f("severity", "HIGH", 70), f("exposure", "public", 10), f("code-context", "test", -15)}},
		{"an imported SARIF result", with(sast("HIGH"), func(d *finding.Document, f *finding.Finding) {
			d.AssetDetail.RepositoryAssetClass.Visibility = "public"
			f.SecuritySeverityScore = ptr(8.1)
		}), 91, []finding.Factor{f("severity", "security-severity 8.1", 81), f("exposure", "public", 10)}},
		{"an imported SARIF result, corroborated", with(sast("HIGH"), func(d *finding.Document, f *finding.Finding) {
			d.AssetDetail.RepositoryAssetClass.Visibility = "public"
			f.SecuritySeverityScore, f.Corroborated = ptr(8.1), true
		}), 96, []finding.Factor{f("severity", "security-severity 8.1", 81), f("exposure", "public", 10), f("corroborated", "true", 5)}},
		{"public and archived", with(sast("MEDIUM"), func(d *finding.Document, _ *finding.Finding) {
			d.AssetDetail.RepositoryAssetClass.Visibility = "public"
			d.AssetDetail.RepositoryAssetClass.Archived = true
		}), 35, []finding.Factor{f("severity", "MEDIUM", 45), f("exposure", "public", 10), f("exposure", "archived", -20)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := pt.Score(c.doc)
			if got.Score != c.score || !reflect.DeepEqual(got.Factors, c.want) {
				t.Errorf("score %d %v, want %d %v", got.Score, got.Factors, c.score, c.want)
			}
		})
	}
}

// TestApply: Apply sets the finding's priority; a document without a
// finding is left alone.
func TestApply(t *testing.T) {
	pt := defaults(t)
	d := sast("HIGH")
	pt.Apply(d)
	if p := d.Findings[0].Priority; p == nil || p.Score != 70 {
		t.Fatalf("priority %+v", p)
	}
	empty := &finding.Document{}
	pt.Apply(empty)
	if len(empty.Findings) != 0 {
		t.Error("a finding appeared")
	}
}

// randomDoc is a document with random values for every input.
func randomDoc(r *rand.Rand) *finding.Document {
	pick := func(vs ...string) string { return vs[r.IntN(len(vs))] }
	maybe := func() bool { return r.IntN(2) == 0 }
	d := doc(pick(finding.TypeSAST, finding.TypeSCA, finding.TypeSecret), pick("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO", "", "odd"))
	f := &d.Findings[0]
	f.FindingStatus = pick(finding.StatusActive, finding.StatusActive, finding.StatusFixed, finding.StatusDismissed, finding.StatusRemoved)
	rc := &d.AssetDetail.RepositoryAssetClass
	rc.Visibility = pick("public", "private", "internal", "")
	rc.Archived = maybe()
	rc.Criticality = pick("critical", "high", "medium", "low", "", "gold")
	score := func() *float64 {
		if maybe() {
			return nil
		}
		return ptr(r.Float64() * 11) // sometimes out of range
	}
	f.SecuritySeverityScore = score()
	f.FindingType = &finding.FindingType{Vulnerability: &finding.Vulnerability{CVSS: &finding.CVSS{CVSS3Base: score(), CVSS4Base: score()}}}
	if maybe() {
		f.FindingType.Vulnerability.ExploitCodeMaturity = ptr(r.Float64())
	}
	f.Validity = pick("active", "inactive", "unknown", "")
	f.PubliclyLeaked, f.MultiRepo = ptr(maybe()), ptr(maybe())
	if maybe() {
		f.PushProtectionBypass = &finding.PushProtectionBypass{By: "x"}
	}
	f.Corroborated = maybe()
	f.Product = &finding.Product{DependencyScope: pick("runtime", "development", ""), DependencyRelationship: pick("direct", "transitive", "inconclusive", "")}
	for range r.IntN(3) {
		f.Classifications = append(f.Classifications, pick("source", "generated", "test", "library", "documentation"))
	}
	return d
}

// TestScoreProperties: over random documents and random valid tables, an
// ACTIVE finding's factors add up to its score before clamping, every
// score is within 0..100, severity comes first, and a finding that is not
// ACTIVE scores 0 with the factors it would have had and a last status
// factor.
func TestScoreProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(22, 18))
	tables := []*priority.Table{defaults(t)}
	for range 20 {
		tables = append(tables, randomTable(t, r))
	}
	for i := range 20000 {
		pt := tables[i%len(tables)]
		d := randomDoc(r)
		p := pt.Score(d)
		if p.Score < 0 || p.Score > 100 {
			t.Fatalf("doc %d: score %d", i, p.Score)
		}
		if len(p.Factors) == 0 || p.Factors[0].Name != priority.FactorSeverity {
			t.Fatalf("doc %d: factors %v", i, p.Factors)
		}
		sum := 0
		for _, x := range p.Factors {
			sum += x.Points
		}
		if d.Findings[0].FindingStatus == finding.StatusActive {
			if want := min(max(sum, 0), 100); p.Score != want {
				t.Fatalf("doc %d: score %d, factors add up to %d", i, p.Score, sum)
			}
		} else {
			last := p.Factors[len(p.Factors)-1]
			if p.Score != 0 || last != f("status", d.Findings[0].FindingStatus, 0) {
				t.Fatalf("doc %d: %s scores %d, factors %v", i, d.Findings[0].FindingStatus, p.Score, p.Factors)
			}
			d.Findings[0].FindingStatus = finding.StatusActive
			if active := pt.Score(d); !reflect.DeepEqual(active.Factors, p.Factors[:len(p.Factors)-1]) {
				t.Fatalf("doc %d: factors %v, ACTIVE %v", i, p.Factors, active.Factors)
			}
		}
		if again := pt.Score(d); !reflect.DeepEqual(again, pt.Score(d)) {
			t.Fatalf("doc %d: not deterministic", i)
		}
	}
}

// randomTable is a valid table with random weights.
func randomTable(t *testing.T, r *rand.Rand) *priority.Table {
	t.Helper()
	w := func() int { return r.IntN(201) - 100 }
	b := func() int { return r.IntN(101) }
	js := fmt.Sprintf(`{"severity": {"CRITICAL": %d, "HIGH": %d, "MEDIUM": %d, "LOW": %d, "INFO": %d},
		"numericScoreMultiplier": %d,
		"epss": [{"atLeast": 0.9, "points": %d}, {"atLeast": 0.2, "points": %d}],
		"secretValidity": {"active": %d, "inactive": %d, "unknown": %d},
		"publiclyLeaked": %d,
		"exposure": {"public": %d, "private": %d, "internal": %d, "archived": %d},
		"criticality": {"critical": %d, "gold": %d},
		"corroborated": %d,
		"dependency": {"development": %d, "runtime": %d, "direct": %d, "transitive": %d, "inconclusive": %d},
		"codeContext": {"classifications": ["test", "generated"], "points": %d},
		"secretReach": {"multiRepo": %d, "pushProtectionBypassed": %d}}`,
		b(), b(), b(), b(), b(), r.IntN(11), w(), w(), w(), w(), w(), w(), w(), w(), w(), w(), w(), w(), w(), w(), w(), w(), w(), w(), w(), w(), w())
	pt, err := priority.Parse([]byte(js))
	if err != nil {
		t.Fatalf("random table: %v\n%s", err, js)
	}
	return pt
}

// TestParse: the table is refused with the reason for every kind of
// mistake.
func TestParse(t *testing.T) {
	good := string(transform.DefaultPriorityJSON())
	if _, err := priority.Parse([]byte(good)); err != nil {
		t.Fatalf("default: %v", err)
	}
	bad := []struct {
		name, from, to, reason string
	}{
		{"not json", good, "{", "unexpected EOF"},
		{"unknown field", `"corroborated": 5`, `"corroborated": 5, "bonus": 3`, `unknown field "bonus"`},
		{"missing severity word", `"INFO": 5`, `"NOTE": 5`, "no base for INFO"},
		{"extra severity word", `"INFO": 5`, `"INFO": 5, "NOTE": 1`, "keys other than"},
		{"negative base", `"LOW": 20`, `"LOW": -20`, "severity.LOW: -20 is not within 0..100"},
		{"multiplier", `"numericScoreMultiplier": 10`, `"numericScoreMultiplier": 11`, "numericScoreMultiplier"},
		{"epss order", `{"atLeast": 0.1, "points": 8}`, `{"atLeast": 0.6, "points": 8}`, "epss[1].atLeast: 0.6 does not come below"},
		{"epss range", `{"atLeast": 0.5, "points": 15}`, `{"atLeast": 1.5, "points": 15}`, "epss[0].atLeast: 1.5 is not within (0, 1]"},
		{"epss points", `"points": 15`, `"points": 150`, "epss[0].points: 150"},
		{"validity word", `"inactive": -30`, `"revoked": -30`, `secretValidity: unknown key "revoked"`},
		{"exposure word", `"public": 10`, `"open": 10`, `exposure: unknown key "open"`},
		{"criticality case", `"critical": 15`, `"Critical": 15`, `criticality: key "Critical" is not a lower-case value`},
		{"dependency word", `"development": -15`, `"dev": -15`, `dependency: unknown key "dev"`},
		{"points range", `"corroborated": 5`, `"corroborated": 500`, "corroborated: 500 is not within ±100"},
		{"classification", `"documentation"]`, `"docs"]`, `codeContext.classifications[3]: unknown classification "docs"`},
		{"trailing data", good, good + "{}", "data after the table"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			js := good
			if c.from == good {
				js = c.to
			} else {
				if !strings.Contains(good, c.from) {
					t.Fatalf("default lacks %s", c.from)
				}
				js = strings.Replace(good, c.from, c.to, 1)
			}
			_, err := priority.Parse([]byte(js))
			if err == nil || !strings.Contains(err.Error(), c.reason) {
				t.Errorf("error %v, want one saying %q", err, c.reason)
			}
		})
	}
}

// TestCarry: the corroboration of the stored document stays with the same
// correlation key and goes with another one.
func TestCarry(t *testing.T) {
	stored := with(sast("HIGH"), func(_ *finding.Document, f *finding.Finding) { f.CorrelationKey, f.Corroborated = "k1", true })
	next := with(sast("HIGH"), func(_ *finding.Document, f *finding.Finding) { f.CorrelationKey = "k1" })
	priority.Carry(next, stored)
	if !next.Findings[0].Corroborated {
		t.Error("same key: corroboration not carried")
	}
	moved := with(sast("HIGH"), func(_ *finding.Document, f *finding.Finding) { f.CorrelationKey, f.Corroborated = "k2", true })
	priority.Carry(moved, stored)
	if moved.Findings[0].Corroborated {
		t.Error("another key: corroboration carried")
	}
	priority.Carry(next, nil)
	if next.Findings[0].Corroborated {
		t.Error("nothing stored: corroborated")
	}
}
