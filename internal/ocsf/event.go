package ocsf

import "github.com/ghas-relay/ghas-relay/internal/finding"

// The types below are the subset of OCSF 1.6.0 that ghas-relay writes.
// JSON names are the schema's attribute names; optional attributes are
// omitted when empty, so an event carries only what the document knew.

// Event is one OCSF finding event: a Vulnerability Finding (class 2002) or
// a Data Security Finding (class 2006).
type Event struct {
	ActivityID   int    `json:"activity_id"`
	ActivityName string `json:"activity_name"`
	CategoryUID  int    `json:"category_uid"`
	CategoryName string `json:"category_name"`
	ClassUID     int    `json:"class_uid"`
	ClassName    string `json:"class_name"`
	TypeUID      int    `json:"type_uid"`
	TypeName     string `json:"type_name"`
	SeverityID   int    `json:"severity_id"`
	Severity     string `json:"severity"`
	StatusID     int    `json:"status_id"`
	Status       string `json:"status"`
	// StatusDetail says why a finding is closed: its removedReason, or the
	// dismissal reason.
	StatusDetail string `json:"status_detail,omitempty"`
	// Time is the revision's time in epoch milliseconds.
	Time    int64  `json:"time"`
	Message string `json:"message,omitempty"`
	// Comment is the comment given when the finding was dismissed.
	Comment      string     `json:"comment,omitempty"`
	ConfidenceID int        `json:"confidence_id,omitempty"`
	Confidence   string     `json:"confidence,omitempty"`
	Metadata     Metadata   `json:"metadata"`
	FindingInfo  Info       `json:"finding_info"`
	Resources    []Resource `json:"resources,omitempty"`
	// Vulnerabilities is set for class 2002 only.
	Vulnerabilities []Vulnerability `json:"vulnerabilities,omitempty"`
	// DataSecurity and File are set for class 2006 only.
	DataSecurity *DataSecurity `json:"data_security,omitempty"`
	File         *File         `json:"file,omitempty"`
	// Unmapped holds document fields the schema has no place for.
	Unmapped *Unmapped `json:"unmapped,omitempty"`
}

// Unmapped is the event's unmapped object: document fields OCSF has no
// attribute for.
type Unmapped struct {
	// DependencyScope and DependencyRelationship are a vulnerable
	// dependency's (affected_package has no place for them).
	DependencyScope        string `json:"dependencyScope,omitempty"`
	DependencyRelationship string `json:"dependencyRelationship,omitempty"`
	// Priority is the finding's priority, score and factors, as in the
	// document (a platform's own risk_score would be its judgement, not
	// ours).
	Priority *finding.Priority `json:"priority,omitempty"`
}

// Metadata is the event's metadata object.
type Metadata struct {
	Product Product `json:"product"`
	// Version is the OCSF schema version, always SchemaVersion.
	Version string `json:"version"`
	// CorrelationUID is the finding's correlationKey: the same weakness
	// reported by several tools has the same one.
	CorrelationUID string `json:"correlation_uid,omitempty"`
}

// Product names a product (metadata.product, finding_info.product).
type Product struct {
	Name       string `json:"name"`
	VendorName string `json:"vendor_name,omitempty"`
	// Version is the detecting tool's version (finding_info.product).
	Version string `json:"version,omitempty"`
}

// Info is the finding_info object.
type Info struct {
	UID           string    `json:"uid"`
	Title         string    `json:"title,omitempty"`
	Desc          string    `json:"desc,omitempty"`
	Types         []string  `json:"types,omitempty"`
	SrcURL        string    `json:"src_url,omitempty"`
	FirstSeenTime int64     `json:"first_seen_time,omitempty"`
	LastSeenTime  int64     `json:"last_seen_time,omitempty"`
	DataSources   []string  `json:"data_sources,omitempty"`
	Analytic      *Analytic `json:"analytic,omitempty"`
	Product       *Product  `json:"product,omitempty"`
}

// Analytic is the rule that produced a finding (finding_info.analytic).
type Analytic struct {
	UID    string `json:"uid"`
	Name   string `json:"name"`
	TypeID int    `json:"type_id"`
	Type   string `json:"type"`
}

// Resource is the affected repository (a resource_details object).
type Resource struct {
	UID    string   `json:"uid,omitempty"`
	UIDAlt string   `json:"uid_alt,omitempty"`
	Name   string   `json:"name,omitempty"`
	Type   string   `json:"type"`
	Owner  *User    `json:"owner,omitempty"`
	Labels []string `json:"labels,omitempty"`
}

// User is a resource's owner.
type User struct {
	Name string        `json:"name"`
	Org  *Organization `json:"org,omitempty"`
}

// Organization is the owner's business entity.
type Organization struct {
	Name string `json:"name"`
}

// Vulnerability is one vulnerability object. Exactly one of CVE, Advisory
// and CWE is set.
type Vulnerability struct {
	Title                  string            `json:"title,omitempty"`
	Desc                   string            `json:"desc,omitempty"`
	Severity               string            `json:"severity,omitempty"`
	VendorName             string            `json:"vendor_name,omitempty"`
	FirstSeenTime          int64             `json:"first_seen_time,omitempty"`
	LastSeenTime           int64             `json:"last_seen_time,omitempty"`
	CVE                    *CVE              `json:"cve,omitempty"`
	Advisory               *Advisory         `json:"advisory,omitempty"`
	CWE                    *CWE              `json:"cwe,omitempty"`
	RelatedVulnerabilities []string          `json:"related_vulnerabilities,omitempty"`
	References             []string          `json:"references,omitempty"`
	AffectedCode           []AffectedCode    `json:"affected_code,omitempty"`
	AffectedPackages       []AffectedPackage `json:"affected_packages,omitempty"`
	Remediation            *Remediation      `json:"remediation,omitempty"`
	IsFixAvailable         *bool             `json:"is_fix_available,omitempty"`
}

// CVE is a cve object.
type CVE struct {
	UID         string `json:"uid"`
	Title       string `json:"title,omitempty"`
	CVSS        []CVSS `json:"cvss,omitempty"`
	EPSS        *EPSS  `json:"epss,omitempty"`
	RelatedCWEs []CWE  `json:"related_cwes,omitempty"`
}

// CVSS is a cvss object.
type CVSS struct {
	BaseScore    float64 `json:"base_score"`
	Version      string  `json:"version"`
	VectorString string  `json:"vector_string,omitempty"`
}

// EPSS is an epss object; the schema types its score as a string and its
// percentile as a number.
type EPSS struct {
	Score      string   `json:"score"`
	Percentile *float64 `json:"percentile,omitempty"`
}

// CWE is a cwe object.
type CWE struct {
	UID    string `json:"uid"`
	SrcURL string `json:"src_url,omitempty"`
}

// Advisory is an advisory object: a GitHub security advisory, or the rule
// of a code scanning finding without a CWE.
type Advisory struct {
	UID         string `json:"uid"`
	Title       string `json:"title,omitempty"`
	SrcURL      string `json:"src_url,omitempty"`
	RelatedCWEs []CWE  `json:"related_cwes,omitempty"`
}

// AffectedCode is where a code weakness is.
type AffectedCode struct {
	File        File  `json:"file"`
	StartLine   int   `json:"start_line,omitempty"`
	EndLine     int   `json:"end_line,omitempty"`
	StartColumn int   `json:"start_column,omitempty"`
	EndColumn   int   `json:"end_column,omitempty"`
	Rule        *Rule `json:"rule,omitempty"`
}

// File is a file object; TypeID 1 is a regular file.
type File struct {
	Name   string `json:"name"`
	Path   string `json:"path,omitempty"`
	TypeID int    `json:"type_id"`
	Type   string `json:"type,omitempty"`
}

// Rule is the rule that flagged a code block.
type Rule struct {
	UID  string `json:"uid"`
	Name string `json:"name"`
}

// AffectedPackage is the vulnerable package of a dependency finding.
type AffectedPackage struct {
	Name           string `json:"name"`
	Version        string `json:"version"`
	PackageManager string `json:"package_manager,omitempty"`
	FixedInVersion string `json:"fixed_in_version,omitempty"`
	Path           string `json:"path,omitempty"`
}

// Remediation is the recommended fix.
type Remediation struct {
	Desc string `json:"desc"`
}

// DataSecurity is the data_security object of a secret finding.
type DataSecurity struct {
	DetectionSystemID int    `json:"detection_system_id"`
	DetectionSystem   string `json:"detection_system"`
	DetectionPattern  string `json:"detection_pattern,omitempty"`
	CategoryID        int    `json:"category_id"`
	Category          string `json:"category"`
}
