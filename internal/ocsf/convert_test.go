package ocsf_test

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ocsf"
)

func revTime() time.Time { return time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC) }

func sastDoc(t *testing.T) finding.Document {
	return readDoc(t, filepath.Join("testdata", "documents", "sast-removed.json"))
}

func TestActivity(t *testing.T) {
	for _, tc := range []struct {
		status string
		rev    ocsf.Revision
		want   int
	}{
		{finding.StatusActive, ocsf.Revision{First: true}, ocsf.ActivityCreate},
		{finding.StatusFixed, ocsf.Revision{First: true}, ocsf.ActivityCreate}, // first seen already fixed
		{finding.StatusActive, ocsf.Revision{PreviousStatus: finding.StatusActive}, ocsf.ActivityUpdate},
		{finding.StatusActive, ocsf.Revision{PreviousStatus: finding.StatusFixed}, ocsf.ActivityUpdate}, // reopened
		{finding.StatusActive, ocsf.Revision{}, ocsf.ActivityUpdate},
		{finding.StatusFixed, ocsf.Revision{PreviousStatus: finding.StatusActive}, ocsf.ActivityClose},
		{finding.StatusDismissed, ocsf.Revision{PreviousStatus: finding.StatusActive}, ocsf.ActivityClose},
		{finding.StatusRemoved, ocsf.Revision{PreviousStatus: finding.StatusActive}, ocsf.ActivityClose},
		{finding.StatusRemoved, ocsf.Revision{}, ocsf.ActivityClose},                                     // previous unknown
		{finding.StatusRemoved, ocsf.Revision{PreviousStatus: "SOMETHING"}, ocsf.ActivityClose},          // previous not a known status
		{finding.StatusRemoved, ocsf.Revision{PreviousStatus: finding.StatusFixed}, ocsf.ActivityUpdate}, // closed → closed
		{finding.StatusDismissed, ocsf.Revision{PreviousStatus: finding.StatusDismissed}, ocsf.ActivityUpdate},
	} {
		doc := sastDoc(t)
		doc.Findings[0].FindingStatus = tc.status
		tc.rev.Time = revTime()
		ev, err := ocsf.Convert(doc, tc.rev)
		if err != nil {
			t.Fatalf("%s %+v: %v", tc.status, tc.rev, err)
		}
		if ev.ActivityID != tc.want || ev.TypeUID != 2002*100+tc.want {
			t.Errorf("%s after %+v: activity %d type_uid %d, want %d", tc.status, tc.rev, ev.ActivityID, ev.TypeUID, tc.want)
		}
	}
}

func TestStatusAndSeverityIDs(t *testing.T) {
	statuses := map[string]int{finding.StatusActive: 1, finding.StatusDismissed: 3, finding.StatusFixed: 4, finding.StatusRemoved: 5}
	severities := map[string]int{finding.SeverityInfo: 1, finding.SeverityLow: 2, finding.SeverityMedium: 3, finding.SeverityHigh: 4, finding.SeverityCritical: 5}
	for st, want := range statuses {
		doc := sastDoc(t)
		doc.Findings[0].FindingStatus = st
		ev, err := ocsf.Convert(doc, ocsf.Revision{Time: revTime()})
		if err != nil || ev.StatusID != want {
			t.Errorf("%s: status_id %d (%v), want %d", st, ev.StatusID, err, want)
		}
	}
	for sev, want := range severities {
		doc := sastDoc(t)
		doc.Findings[0].Severity = sev
		ev, err := ocsf.Convert(doc, ocsf.Revision{Time: revTime()})
		if err != nil || ev.SeverityID != want {
			t.Errorf("%s: severity_id %d (%v), want %d", sev, ev.SeverityID, err, want)
		}
	}
}

func TestConvertErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		change func(*finding.Document)
		time   time.Time
		want   string
	}{
		"no finding":     {func(d *finding.Document) { d.Findings = nil }, revTime(), "no finding"},
		"no key":         {func(d *finding.Document) { d.FindingKey = "" }, revTime(), "no findingKey"},
		"no time":        {func(*finding.Document) {}, time.Time{}, "no revision time"},
		"unknown type":   {func(d *finding.Document) { d.FindingTypeName = "APPLICATION_DAST" }, revTime(), `unknown findingTypeName "APPLICATION_DAST"`},
		"unknown status": {func(d *finding.Document) { d.Findings[0].FindingStatus = "OPEN" }, revTime(), `unknown findingStatus "OPEN"`},
		"no severity":    {func(d *finding.Document) { d.Findings[0].Severity = "" }, revTime(), `unknown severity ""`},
		"no product": {func(d *finding.Document) { d.VendorName, d.VendorProductName = "", "" }, revTime(),
			"no vendorProductName or vendorName"},
		"no identifier at all": {func(d *finding.Document) {
			d.Findings[0].FindingType = nil
			d.Findings[0].RuleID = ""
			d.Findings[0].ExternalFindingID = ""
		}, revTime(), "no CVE, advisory, CWE, rule id or finding id"},
	} {
		doc := sastDoc(t)
		tc.change(&doc)
		_, err := ocsf.Convert(doc, ocsf.Revision{Time: tc.time})
		if !errors.Is(err, ocsf.ErrUnconvertible) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrUnconvertible with %q", name, err, tc.want)
		}
	}
}

// TestVulnerabilityIdentity: exactly one of cve, advisory and cwe, chosen
// in the documented order, the rest kept as related identifiers.
func TestVulnerabilityIdentity(t *testing.T) {
	sca := func() finding.Document {
		return readDoc(t, filepath.Join(transformGolden, "dependabot_alert", "created.payload.json"))
	}
	v := func(doc finding.Document) ocsf.Vulnerability {
		t.Helper()
		ev, err := ocsf.Convert(doc, ocsf.Revision{Time: revTime()})
		if err != nil {
			t.Fatal(err)
		}
		if len(ev.Vulnerabilities) != 1 {
			t.Fatalf("%d vulnerabilities", len(ev.Vulnerabilities))
		}
		return ev.Vulnerabilities[0]
	}

	got := v(sca())
	if got.CVE == nil || got.CVE.UID != "CVE-2022-25883" || got.Advisory != nil || got.CWE != nil ||
		!slices.Equal(got.RelatedVulnerabilities, []string{"GHSA-c2qf-rxjj-qqgw"}) {
		t.Errorf("SCA with a CVE: %+v", got)
	}
	doc := sca()
	doc.Findings[0].FindingType.Vulnerability.CVEID = ""
	if got := v(doc); got.Advisory == nil || got.Advisory.UID != "GHSA-c2qf-rxjj-qqgw" || got.CVE != nil || got.CWE != nil {
		t.Errorf("SCA with only a GHSA: %+v", got)
	}
	doc.Findings[0].FindingType.Vulnerability.GHSAID = ""
	if got := v(doc); got.CWE == nil || got.CWE.UID != "CWE-1333" || got.Advisory != nil {
		t.Errorf("SCA with only a CWE: %+v", got)
	}

	doc = sastDoc(t)
	doc.Findings[0].FindingType.Vulnerability.CWEIDs = []string{"CWE-943", "cwe-089", "CWE-79", "CWE-89", "not-a-cwe"}
	got = v(doc)
	if got.CWE == nil || got.CWE.UID != "CWE-79" || got.Advisory != nil || got.CVE != nil ||
		!slices.Equal(got.RelatedVulnerabilities, []string{"CWE-89", "CWE-943", "not-a-cwe"}) {
		t.Errorf("SAST: lowest CWE, others related once each: %+v", got)
	}
	doc.Findings[0].FindingType = nil
	if got := v(doc); got.Advisory == nil || got.Advisory.UID != "js/sql-injection" || got.CWE != nil {
		t.Errorf("SAST without a CWE: %+v", got)
	}
	doc.Findings[0].RuleID = ""
	if got := v(doc); got.Advisory == nil || got.Advisory.UID != "42" {
		t.Errorf("SAST without a CWE or a rule: %+v", got)
	}
}

func TestAffectedPackageFix(t *testing.T) {
	doc := readDoc(t, filepath.Join(transformGolden, "dependabot_alert", "created.payload.json"))
	for rec, want := range map[string]string{
		"Upgrade semver to 7.5.2":       "7.5.2",
		"":                              "",
		"Upgrade other-pkg to 1.0.0":    "",
		"Upgrade semver to 7.5.2 or 8":  "",
		"Pin semver to a safe version.": "",
	} {
		doc.Findings[0].SolutionRecommendation = rec
		ev, err := ocsf.Convert(doc, ocsf.Revision{Time: revTime()})
		if err != nil {
			t.Fatal(err)
		}
		v := ev.Vulnerabilities[0]
		p := v.AffectedPackages[0]
		if p.FixedInVersion != want || v.IsFixAvailable == nil || *v.IsFixAvailable != (want != "") {
			t.Errorf("%q: fixed_in_version %q, is_fix_available %v; want %q", rec, p.FixedInVersion, v.IsFixAvailable, want)
		}
		if (v.Remediation != nil) != (rec != "") {
			t.Errorf("%q: remediation %+v", rec, v.Remediation)
		}
	}
}

func TestSecretIsDataSecurityFinding(t *testing.T) {
	doc := readDoc(t, filepath.Join("testdata", "documents", "secret-fixed.json"))
	ev, err := ocsf.Convert(doc, ocsf.Revision{Time: revTime(), First: true})
	if err != nil {
		t.Fatal(err)
	}
	if ev.ClassUID != ocsf.ClassDataSecurityFinding || ev.TypeUID != 200601 || ev.Vulnerabilities != nil ||
		ev.DataSecurity == nil || ev.DataSecurity.DetectionSystemID != 11 || ev.File == nil || ev.File.Name != "deploy.yml" {
		t.Errorf("secret event: %+v", ev)
	}
	if ev.Time != revTime().UnixMilli() {
		t.Errorf("time %d, want %d", ev.Time, revTime().UnixMilli())
	}
}

// TestThirdVersionFields: the document's third-version fields reach the
// places OCSF 1.6.0 has for them, and the events still validate.
func TestThirdVersionFields(t *testing.T) {
	s := loadSchema(t)
	f64 := func(f float64) *float64 { return &f }
	doc := readDoc(t, filepath.Join("..", "transform", "testdata", "golden", "dependabot_alert", "rest", "dependabot-get-alert.json"))
	v := doc.Findings[0].FindingType.Vulnerability

	// CVSS v4 alone (no v3 score), a vector without a version prefix.
	v.CVSS = &finding.CVSS{CVSS4Base: f64(9.3), CVSS4Vector: "AV:N/AC:L"}
	// A percentile without the probability: no epss (its score is required).
	v.ExploitCodeMaturity, v.EPSSPercentile = nil, f64(0.5)
	v.Identifiers = []string{v.GHSAID, v.CVEID, "PYSEC-2021-1"}
	ev, err := ocsf.Convert(doc, ocsf.Revision{Time: revTime()})
	if err != nil {
		t.Fatal(err)
	}
	cve := ev.Vulnerabilities[0].CVE
	if len(cve.CVSS) != 1 || cve.CVSS[0] != (ocsf.CVSS{BaseScore: 9.3, Version: "4.0", VectorString: "AV:N/AC:L"}) {
		t.Errorf("cvss %+v", cve.CVSS)
	}
	if cve.EPSS != nil {
		t.Errorf("epss without a score: %+v", cve.EPSS)
	}
	if got := ev.Vulnerabilities[0].RelatedVulnerabilities; !slices.Equal(got, []string{v.GHSAID, "PYSEC-2021-1"}) {
		t.Errorf("related_vulnerabilities %q", got)
	}
	if ev.Unmapped == nil || ev.Unmapped.DependencyScope != "runtime" || ev.Unmapped.DependencyRelationship != "direct" {
		t.Errorf("unmapped %+v", ev.Unmapped)
	}
	b, err := ocsf.Encode(doc, ocsf.Revision{Time: revTime()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(b); err != nil {
		t.Errorf("does not validate: %v", err)
	}

	// Only a GHSA: the advisory, its other identifiers related.
	v.CVEID, v.Identifiers = "", []string{v.GHSAID, "CVE-2021-20191"}
	ev, err = ocsf.Convert(doc, ocsf.Revision{Time: revTime()})
	if err != nil {
		t.Fatal(err)
	}
	if a := ev.Vulnerabilities[0].Advisory; a == nil || a.UID != v.GHSAID || !slices.Equal(ev.Vulnerabilities[0].RelatedVulnerabilities, []string{"CVE-2021-20191"}) {
		t.Errorf("advisory %+v related %q", a, ev.Vulnerabilities[0].RelatedVulnerabilities)
	}

	// Code scanning: columns on the affected code, the tool's version on
	// its product, nothing unmapped but the priority.
	doc = readDoc(t, filepath.Join("..", "transform", "testdata", "golden", "code_scanning_alert", "rest", "code-scanning-get-alert.json"))
	ev, err = ocsf.Convert(doc, ocsf.Revision{Time: revTime()})
	if err != nil {
		t.Fatal(err)
	}
	ac := ev.Vulnerabilities[0].AffectedCode[0]
	if ac.StartColumn != 7 || ac.EndColumn != 18 || ev.FindingInfo.Product.Version != "2.4.0" ||
		ev.Unmapped == nil || *ev.Unmapped != (ocsf.Unmapped{Priority: doc.Findings[0].Priority}) {
		t.Errorf("affected code %+v, product %+v, unmapped %+v", ac, ev.FindingInfo.Product, ev.Unmapped)
	}
}

// TestUnmappedPriority: every event carries the finding's priority in
// unmapped.priority, score and factors as in the document; a document
// without one gives an event without it.
func TestUnmappedPriority(t *testing.T) {
	for _, c := range goldenCases() {
		doc := readDoc(t, c.doc)
		c.rev.Time = revisionTime(t, doc)
		ev, err := ocsf.Convert(doc, c.rev)
		if err != nil {
			t.Fatal(err)
		}
		want := doc.Findings[0].Priority
		if want == nil {
			t.Fatalf("%s: the golden document has no priority", c.name)
		}
		if ev.Unmapped == nil || !reflect.DeepEqual(ev.Unmapped.Priority, want) {
			t.Errorf("%s: unmapped %+v, want priority %+v", c.name, ev.Unmapped, want)
		}
		b, err := ocsf.Encode(doc, c.rev)
		if err != nil {
			t.Fatal(err)
		}
		var raw struct {
			Unmapped struct {
				Priority struct {
					Score   *int `json:"score"`
					Factors []struct {
						Name, Value string
						Points      *int
					} `json:"factors"`
				} `json:"priority"`
			} `json:"unmapped"`
		}
		if err := json.Unmarshal(b, &raw); err != nil || raw.Unmapped.Priority.Score == nil || *raw.Unmapped.Priority.Score != want.Score ||
			len(raw.Unmapped.Priority.Factors) != len(want.Factors) {
			t.Errorf("%s: encoded unmapped.priority %s", c.name, b)
		}
	}
	doc := readDoc(t, goldenCases()[0].doc)
	doc.Findings[0].Priority = nil
	ev, err := ocsf.Convert(doc, ocsf.Revision{First: true, Time: revTime()})
	if err != nil || ev.Unmapped != nil {
		t.Errorf("no priority: unmapped %+v, %v", ev.Unmapped, err)
	}
}
