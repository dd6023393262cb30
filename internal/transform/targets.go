package transform

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// A setter writes one mapped value into a document. A nil value means
// absent and never reaches a setter. A value of a type the target cannot
// hold is an error: the payload is not what GitHub documents.
type setter func(d *finding.Document, v any) error

// typedAttributesPrefix opens the one free-form target: any key under it
// is a string attribute of the asset.
const typedAttributesPrefix = "assetDetail.typedAttributes."

// targetPaths lists every target path a map row may name, in document
// order (typedAttributes keys are free).
func targetPaths() []string {
	return []string{
		"vendorName", "vendorProductName", "source", "externalAssetId", "vendorAssetId",
		"assetDetail.name", "assetDetail.fullName", "assetDetail.assetClass", "assetDetail.assetSubClass",
		"assetDetail.sourceCreatedAt", "assetDetail.sourceUpdatedAt",
		"assetDetail.repositoryAssetClass.repoUrl", "assetDetail.repositoryAssetClass.visibility",
		"assetDetail.repositoryAssetClass.owner", "assetDetail.repositoryAssetClass.defaultBranch",
		"assetDetail.repositoryAssetClass.archived",
		typedAttributesPrefix + "<key>",
		"findings[0].externalFindingId", "findings[0].name", "findings[0].description",
		"findings[0].findingURL", "findings[0].findingDetectionURL", "findings[0].findingStatus",
		"findings[0].sourceState", "findings[0].severity",
		"findings[0].firstFoundOn", "findings[0].lastFoundOn", "findings[0].lastFixedOn",
		"findings[0].detectionMethod", "findings[0].ruleId",
		"findings[0].location.path", "findings[0].location.startLine", "findings[0].location.endLine",
		"findings[0].location.ref", "findings[0].location.commitSha",
		"findings[0].location.startColumn", "findings[0].location.endColumn",
		"findings[0].solutionRecommendation", "findings[0].references",
		"findings[0].findingType.vulnerability.cweIds", "findings[0].findingType.vulnerability.owaspTop10Ids",
		"findings[0].findingType.vulnerability.cveId", "findings[0].findingType.vulnerability.ghsaId",
		"findings[0].findingType.vulnerability.cvss.vector", "findings[0].findingType.vulnerability.cvss.cvss3Base",
		"findings[0].findingType.vulnerability.cvss.cvss4Base", "findings[0].findingType.vulnerability.cvss.cvss4Vector",
		"findings[0].findingType.vulnerability.exploitCodeMaturity",
		"findings[0].findingType.vulnerability.epssPercentile",
		"findings[0].findingType.vulnerability.advisoryWithdrawnAt",
		"findings[0].findingType.vulnerability.identifiers",
		"findings[0].product.vendor", "findings[0].product.name", "findings[0].product.version",
		"findings[0].product.manifestPath",
		"findings[0].product.dependencyScope", "findings[0].product.dependencyRelationship",
		"findings[0].remediations[0].remediationBy",
		"findings[0].mitigation.mitigationStrategy", "findings[0].mitigation.comment",
		"findings[0].classifications", "findings[0].message",
		"findings[0].analysis.toolVersion", "findings[0].analysis.category", "findings[0].analysis.analysisKey",
		"findings[0].validity", "findings[0].publiclyLeaked", "findings[0].multiRepo",
		"findings[0].pushProtectionBypass.by", "findings[0].pushProtectionBypass.at",
		"findings[0].assignees",
	}
}

// isFindingTarget reports whether a target lies in the finding rather
// than the asset part of the document.
func isFindingTarget(path string) bool { return strings.HasPrefix(path, "findings[") }

func firstFinding(d *finding.Document) *finding.Finding {
	if len(d.Findings) == 0 {
		d.Findings = []finding.Finding{{}}
	}
	return &d.Findings[0]
}

func loc(d *finding.Document) *finding.Location {
	f := firstFinding(d)
	if f.Location == nil {
		f.Location = &finding.Location{}
	}
	return f.Location
}

func vuln(d *finding.Document) *finding.Vulnerability {
	f := firstFinding(d)
	if f.FindingType == nil {
		f.FindingType = &finding.FindingType{}
	}
	if f.FindingType.Vulnerability == nil {
		f.FindingType.Vulnerability = &finding.Vulnerability{}
	}
	return f.FindingType.Vulnerability
}

func cvss(d *finding.Document) *finding.CVSS {
	v := vuln(d)
	if v.CVSS == nil {
		v.CVSS = &finding.CVSS{}
	}
	return v.CVSS
}

func product(d *finding.Document) *finding.Product {
	f := firstFinding(d)
	if f.Product == nil {
		f.Product = &finding.Product{}
	}
	return f.Product
}

func mitigation(d *finding.Document) *finding.Mitigation {
	f := firstFinding(d)
	if f.Mitigation == nil {
		f.Mitigation = &finding.Mitigation{}
	}
	return f.Mitigation
}

func analysis(d *finding.Document) *finding.Analysis {
	f := firstFinding(d)
	if f.Analysis == nil {
		f.Analysis = &finding.Analysis{}
	}
	return f.Analysis
}

func bypass(d *finding.Document) *finding.PushProtectionBypass {
	f := firstFinding(d)
	if f.PushProtectionBypass == nil {
		f.PushProtectionBypass = &finding.PushProtectionBypass{}
	}
	return f.PushProtectionBypass
}

func str(field func(*finding.Document) *string) setter {
	return func(d *finding.Document, v any) error {
		s, err := asString(v)
		if err != nil || s == "" {
			return err
		}
		*field(d) = s
		return nil
	}
}

func optStr(field func(*finding.Document) **string) setter {
	return func(d *finding.Document, v any) error {
		s, err := asString(v)
		if err != nil || s == "" {
			return err
		}
		*field(d) = &s
		return nil
	}
}

func integer(field func(*finding.Document) *int) setter {
	return func(d *finding.Document, v any) error {
		i, ok := intOf(v)
		if !ok {
			return fmt.Errorf("want an integer, got %s", kind(v))
		}
		*field(d) = int(i)
		return nil
	}
}

func float(field func(*finding.Document) **float64) setter {
	return func(d *finding.Document, v any) error {
		n, ok := v.(json.Number)
		if !ok {
			return fmt.Errorf("want a number, got %s", kind(v))
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil {
			return fmt.Errorf("number %s: %w", n, err)
		}
		*field(d) = &f
		return nil
	}
}

func boolean(field func(*finding.Document) *bool) setter {
	return func(d *finding.Document, v any) error {
		b, ok := v.(bool)
		if !ok {
			return fmt.Errorf("want a boolean, got %s", kind(v))
		}
		*field(d) = b
		return nil
	}
}

// optBool writes a boolean that is kept when false.
func optBool(field func(*finding.Document) **bool) setter {
	return func(d *finding.Document, v any) error {
		b, ok := v.(bool)
		if !ok {
			return fmt.Errorf("want a boolean, got %s", kind(v))
		}
		*field(d) = &b
		return nil
	}
}

func strs(field func(*finding.Document) *[]string) setter {
	return func(d *finding.Document, v any) error {
		var out []string
		switch v := v.(type) {
		case []any:
			out = make([]string, 0, len(v))
			for _, e := range v {
				if e == nil {
					continue
				}
				s, err := asString(e)
				if err != nil {
					return err
				}
				if s != "" {
					out = append(out, s)
				}
			}
		default:
			s, err := asString(v)
			if err != nil {
				return err
			}
			if s != "" {
				out = []string{s}
			}
		}
		*field(d) = out
		return nil
	}
}

// asString renders a scalar as a string: numbers keep their JSON text.
func asString(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case json.Number:
		return string(v), nil
	case bool:
		return strconv.FormatBool(v), nil
	}
	return "", fmt.Errorf("want a string, got %s", kind(v))
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// lookupTarget returns the setter of a target path.
func lookupTarget(path string) (setter, bool) {
	if key, ok := strings.CutPrefix(path, typedAttributesPrefix); ok {
		if key == "" || strings.ContainsAny(key, ".[]") {
			return nil, false
		}
		return func(d *finding.Document, v any) error {
			s, err := asString(v)
			if err != nil || s == "" {
				return err
			}
			if d.AssetDetail.TypedAttributes == nil {
				d.AssetDetail.TypedAttributes = map[string]string{}
			}
			d.AssetDetail.TypedAttributes[key] = s
			return nil
		}, true
	}
	switch path {
	case "vendorName":
		return str(func(d *finding.Document) *string { return &d.VendorName }), true
	case "vendorProductName":
		return str(func(d *finding.Document) *string { return &d.VendorProductName }), true
	case "source":
		return str(func(d *finding.Document) *string { return &d.Source }), true
	case "externalAssetId":
		return str(func(d *finding.Document) *string { return &d.ExternalAssetID }), true
	case "vendorAssetId":
		return str(func(d *finding.Document) *string { return &d.VendorAssetID }), true
	case "assetDetail.name":
		return str(func(d *finding.Document) *string { return &d.AssetDetail.Name }), true
	case "assetDetail.fullName":
		return str(func(d *finding.Document) *string { return &d.AssetDetail.FullName }), true
	case "assetDetail.assetClass":
		return str(func(d *finding.Document) *string { return &d.AssetDetail.AssetClass }), true
	case "assetDetail.assetSubClass":
		return str(func(d *finding.Document) *string { return &d.AssetDetail.AssetSubClass }), true
	case "assetDetail.sourceCreatedAt":
		return str(func(d *finding.Document) *string { return &d.AssetDetail.SourceCreatedAt }), true
	case "assetDetail.sourceUpdatedAt":
		return str(func(d *finding.Document) *string { return &d.AssetDetail.SourceUpdatedAt }), true
	case "assetDetail.repositoryAssetClass.repoUrl":
		return str(func(d *finding.Document) *string { return &d.AssetDetail.RepositoryAssetClass.RepoURL }), true
	case "assetDetail.repositoryAssetClass.visibility":
		return str(func(d *finding.Document) *string { return &d.AssetDetail.RepositoryAssetClass.Visibility }), true
	case "assetDetail.repositoryAssetClass.owner":
		return str(func(d *finding.Document) *string { return &d.AssetDetail.RepositoryAssetClass.Owner }), true
	case "assetDetail.repositoryAssetClass.defaultBranch":
		return str(func(d *finding.Document) *string { return &d.AssetDetail.RepositoryAssetClass.DefaultBranch }), true
	case "assetDetail.repositoryAssetClass.archived":
		return boolean(func(d *finding.Document) *bool { return &d.AssetDetail.RepositoryAssetClass.Archived }), true
	case "findings[0].externalFindingId":
		return str(func(d *finding.Document) *string { return &firstFinding(d).ExternalFindingID }), true
	case "findings[0].name":
		return str(func(d *finding.Document) *string { return &firstFinding(d).Name }), true
	case "findings[0].description":
		return str(func(d *finding.Document) *string { return &firstFinding(d).Description }), true
	case "findings[0].findingURL":
		return str(func(d *finding.Document) *string { return &firstFinding(d).FindingURL }), true
	case "findings[0].findingDetectionURL":
		return str(func(d *finding.Document) *string { return &firstFinding(d).FindingDetectionURL }), true
	case "findings[0].findingStatus":
		return str(func(d *finding.Document) *string { return &firstFinding(d).FindingStatus }), true
	case "findings[0].sourceState":
		return str(func(d *finding.Document) *string { return &firstFinding(d).SourceState }), true
	case "findings[0].severity":
		return str(func(d *finding.Document) *string { return &firstFinding(d).Severity }), true
	case "findings[0].firstFoundOn":
		return optStr(func(d *finding.Document) **string { return &firstFinding(d).FirstFoundOn }), true
	case "findings[0].lastFoundOn":
		return optStr(func(d *finding.Document) **string { return &firstFinding(d).LastFoundOn }), true
	case "findings[0].lastFixedOn":
		return optStr(func(d *finding.Document) **string { return &firstFinding(d).LastFixedOn }), true
	case "findings[0].detectionMethod":
		return str(func(d *finding.Document) *string { return &firstFinding(d).DetectionMethod }), true
	case "findings[0].ruleId":
		return str(func(d *finding.Document) *string { return &firstFinding(d).RuleID }), true
	case "findings[0].location.path":
		return str(func(d *finding.Document) *string { return &loc(d).Path }), true
	case "findings[0].location.startLine":
		return integer(func(d *finding.Document) *int { return &loc(d).StartLine }), true
	case "findings[0].location.endLine":
		return integer(func(d *finding.Document) *int { return &loc(d).EndLine }), true
	case "findings[0].location.ref":
		return str(func(d *finding.Document) *string { return &loc(d).Ref }), true
	case "findings[0].location.commitSha":
		return str(func(d *finding.Document) *string { return &loc(d).CommitSHA }), true
	case "findings[0].location.startColumn":
		return integer(func(d *finding.Document) *int { return &loc(d).StartColumn }), true
	case "findings[0].location.endColumn":
		return integer(func(d *finding.Document) *int { return &loc(d).EndColumn }), true
	case "findings[0].solutionRecommendation":
		return str(func(d *finding.Document) *string { return &firstFinding(d).SolutionRecommendation }), true
	case "findings[0].references":
		return strs(func(d *finding.Document) *[]string { return &firstFinding(d).References }), true
	case "findings[0].findingType.vulnerability.cweIds":
		return strs(func(d *finding.Document) *[]string { return &vuln(d).CWEIDs }), true
	case "findings[0].findingType.vulnerability.owaspTop10Ids":
		return strs(func(d *finding.Document) *[]string { return &vuln(d).OWASPTop10IDs }), true
	case "findings[0].findingType.vulnerability.cveId":
		return str(func(d *finding.Document) *string { return &vuln(d).CVEID }), true
	case "findings[0].findingType.vulnerability.ghsaId":
		return str(func(d *finding.Document) *string { return &vuln(d).GHSAID }), true
	case "findings[0].findingType.vulnerability.cvss.vector":
		return str(func(d *finding.Document) *string { return &cvss(d).Vector }), true
	case "findings[0].findingType.vulnerability.cvss.cvss3Base":
		return float(func(d *finding.Document) **float64 { return &cvss(d).CVSS3Base }), true
	case "findings[0].findingType.vulnerability.cvss.cvss4Base":
		return float(func(d *finding.Document) **float64 { return &cvss(d).CVSS4Base }), true
	case "findings[0].findingType.vulnerability.cvss.cvss4Vector":
		return str(func(d *finding.Document) *string { return &cvss(d).CVSS4Vector }), true
	case "findings[0].findingType.vulnerability.exploitCodeMaturity":
		return float(func(d *finding.Document) **float64 { return &vuln(d).ExploitCodeMaturity }), true
	case "findings[0].findingType.vulnerability.epssPercentile":
		return float(func(d *finding.Document) **float64 { return &vuln(d).EPSSPercentile }), true
	case "findings[0].findingType.vulnerability.advisoryWithdrawnAt":
		return str(func(d *finding.Document) *string { return &vuln(d).AdvisoryWithdrawnAt }), true
	case "findings[0].findingType.vulnerability.identifiers":
		return strs(func(d *finding.Document) *[]string { return &vuln(d).Identifiers }), true
	case "findings[0].product.vendor":
		return str(func(d *finding.Document) *string { return &product(d).Vendor }), true
	case "findings[0].product.name":
		return str(func(d *finding.Document) *string { return &product(d).Name }), true
	case "findings[0].product.version":
		return str(func(d *finding.Document) *string { return &product(d).Version }), true
	case "findings[0].product.manifestPath":
		return str(func(d *finding.Document) *string { return &product(d).ManifestPath }), true
	case "findings[0].product.dependencyScope":
		return str(func(d *finding.Document) *string { return &product(d).DependencyScope }), true
	case "findings[0].product.dependencyRelationship":
		return str(func(d *finding.Document) *string { return &product(d).DependencyRelationship }), true
	case "findings[0].remediations[0].remediationBy":
		return func(d *finding.Document, v any) error {
			s, err := asString(v)
			if err != nil || s == "" {
				return err
			}
			firstFinding(d).Remediations = []finding.Remediation{{RemediationBy: s}}
			return nil
		}, true
	case "findings[0].mitigation.mitigationStrategy":
		return str(func(d *finding.Document) *string { return &mitigation(d).MitigationStrategy }), true
	case "findings[0].mitigation.comment":
		return str(func(d *finding.Document) *string { return &mitigation(d).Comment }), true
	case "findings[0].classifications":
		return strs(func(d *finding.Document) *[]string { return &firstFinding(d).Classifications }), true
	case "findings[0].message":
		return str(func(d *finding.Document) *string { return &firstFinding(d).Message }), true
	case "findings[0].analysis.toolVersion":
		return str(func(d *finding.Document) *string { return &analysis(d).ToolVersion }), true
	case "findings[0].analysis.category":
		return str(func(d *finding.Document) *string { return &analysis(d).Category }), true
	case "findings[0].analysis.analysisKey":
		return str(func(d *finding.Document) *string { return &analysis(d).AnalysisKey }), true
	case "findings[0].validity":
		return str(func(d *finding.Document) *string { return &firstFinding(d).Validity }), true
	case "findings[0].publiclyLeaked":
		return optBool(func(d *finding.Document) **bool { return &firstFinding(d).PubliclyLeaked }), true
	case "findings[0].multiRepo":
		return optBool(func(d *finding.Document) **bool { return &firstFinding(d).MultiRepo }), true
	case "findings[0].pushProtectionBypass.by":
		return str(func(d *finding.Document) *string { return &bypass(d).By }), true
	case "findings[0].pushProtectionBypass.at":
		return str(func(d *finding.Document) *string { return &bypass(d).At }), true
	case "findings[0].assignees":
		return strs(func(d *finding.Document) *[]string { return &firstFinding(d).Assignees }), true
	}
	return nil, false
}
