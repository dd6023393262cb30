// Package finding owns the finding document — one JSON document per
// finding, an asset holding a findings array with this one finding — its
// key, its status and severity vocabularies, and its content hash.
// docs/contract.md describes the document field by field.
package finding

import ()

// SchemaVersion is the version of the document this package writes.
const SchemaVersion = 1

// Dataset names: the first token of a finding key and of a finding subject.
const (
	SAST   = "sast"
	SCA    = "sca"
	Secret = "secret"
)

// Finding type names (findingTypeName).
const (
	TypeSAST   = "APPLICATION_SAST"
	TypeSCA    = "APPLICATION_SCA"
	TypeSecret = "APPLICATION_SECRET"
)

// Finding statuses (findingStatus).
const (
	StatusActive    = "ACTIVE"
	StatusFixed     = "FIXED"
	StatusDismissed = "DISMISSED"
	StatusRemoved   = "REMOVED"
)

// Reasons a finding is REMOVED (removedReason).
const (
	RemovedAbsent            = "absent"
	RemovedRepositoryDeleted = "repository-deleted"
	RemovedRepositoryRemoved = "repository-removed"
	RemovedOutOfScope        = "out-of-scope"
)

// Confidences (confidence).
const (
	ConfidenceHigh   = "HIGH"
	ConfidenceMedium = "MEDIUM"
	ConfidenceLow    = "LOW"
)

// Severities.
const (
	SeverityCritical = "CRITICAL"
	SeverityHigh     = "HIGH"
	SeverityMedium   = "MEDIUM"
	SeverityLow      = "LOW"
	SeverityInfo     = "INFO"
)

// Document is one finding on one repository asset.
type Document struct {
	// SchemaVersion is the document version, SchemaVersion (1). Fields
	// added later are optional and do not change it.
	SchemaVersion int `json:"schemaVersion"`
	// FindingKey is <dataset>.<repository_id>.<alert number> (see Key),
	// stable for the life of the alert whatever route brought it; an
	// imported finding's is <dataset>.<repository_id>.<tool slug>.<id>
	// (see ImportKey).
	FindingKey string `json:"findingKey"`
	// FindingTypeName is TypeSAST, TypeSCA or TypeSecret, from the dataset.
	FindingTypeName string `json:"findingTypeName"`
	// VendorName is who made the detecting product: "GitHub" for
	// GitHub's alerts (a map constant); for an import, the tool's vendor.
	VendorName string `json:"vendorName"`
	// VendorProductName is "GitHub Code Security" (sast, sca) or "GitHub
	// Secret Protection" (secret), a map constant; for an import, the
	// tool's product.
	VendorProductName string `json:"vendorProductName"`
	// Source is the platform's source name: "GitHub Advanced Security -
	// Code Security" or "GitHub Advanced Security - Secret Protection".
	Source string `json:"source"`
	// Origin is the route of the event that produced this revision:
	// webhook, reconcile, redelivery or import. It is not part of the
	// content (ContentHash leaves it out).
	Origin string `json:"origin"`
	// ObservedAt is when the processor built this revision (RFC 3339,
	// UTC). It is not part of the content.
	ObservedAt string `json:"observedAt"`
	// ExternalAssetID is the repository URL (repository html_url).
	ExternalAssetID string `json:"externalAssetId"`
	// VendorAssetID is the repository id in decimal (repository id).
	VendorAssetID string `json:"vendorAssetId"`
	// AssetDetail describes the repository asset.
	AssetDetail AssetDetail `json:"assetDetail"`
	// Findings holds exactly one finding (see Finding).
	Findings []Finding `json:"findings"`
}

// AssetDetail describes the repository asset.
type AssetDetail struct {
	// Name is the repository name (name).
	Name string `json:"name,omitempty"`
	// FullName is owner/name (full_name).
	FullName string `json:"fullName,omitempty"`
	// AssetClass is "Application" (a map constant).
	AssetClass string `json:"assetClass,omitempty"`
	// AssetSubClass is "Code Repository" (a map constant).
	AssetSubClass string `json:"assetSubClass,omitempty"`
	// SourceCreatedAt is when the repository was created (created_at,
	// RFC 3339; Unix times of older payloads are converted).
	SourceCreatedAt string `json:"sourceCreatedAt,omitempty"`
	// SourceUpdatedAt is the repository's last update (updated_at, RFC
	// 3339).
	SourceUpdatedAt string `json:"sourceUpdatedAt,omitempty"`
	// RepositoryAssetClass holds the repository's own attributes; always
	// present.
	RepositoryAssetClass RepositoryAssetClass `json:"repositoryAssetClass"`
	// TypedAttributes are githubSecretGitUrl (git_url) and
	// githubSecretSshUrl (ssh_url).
	TypedAttributes map[string]string `json:"typedAttributes,omitempty"`
	// Ownership is the asset's owner and business entity, from the custom
	// properties named by OWNER_PROPERTY and BUSINESS_ENTITY_PROPERTY.
	Ownership *Ownership `json:"ownership,omitempty"`
	// Tags are sorted, de-duplicated: "topic:<topic>" per repository topic
	// and "<property>:<value>" per custom property value.
	Tags []string `json:"tags,omitempty"`
	// CustomProperties are the repository's custom property values as
	// GitHub gives them: one string, or a list for a multi-select property.
	CustomProperties map[string]PropertyValue `json:"customProperties,omitempty"`
	// Sources are the source names that reported findings on this
	// repository (GitHub's and every import tool's), sorted.
	Sources []string `json:"sources,omitempty"`
}

// Ownership names who owns an asset.
type Ownership struct {
	// Owner is the value of the custom property named by OWNER_PROPERTY.
	Owner string `json:"owner,omitempty"`
	// BusinessEntity is the value of the custom property named by
	// BUSINESS_ENTITY_PROPERTY.
	BusinessEntity string `json:"businessEntity,omitempty"`
}

// RepositoryAssetClass holds the repository's own attributes.
type RepositoryAssetClass struct {
	// RepoURL is the repository URL (html_url).
	RepoURL string `json:"repoUrl,omitempty"`
	// Visibility is public, private or internal (visibility, else from
	// the private flag of older payloads).
	Visibility string `json:"visibility,omitempty"`
	// Owner is the login of the user or organisation owning the
	// repository (owner.login).
	Owner string `json:"owner,omitempty"`
	// DefaultBranch is the repository's default branch (default_branch).
	DefaultBranch string `json:"defaultBranch,omitempty"`
	// Archived reports whether the repository is archived (archived);
	// always present.
	Archived bool `json:"archived"`
	// Criticality is the value of the custom property named by
	// CRITICALITY_PROPERTY, lower-cased (a multi-select property's values
	// joined by ", "); a priority input.
	Criticality string `json:"criticality,omitempty"`
}

// Finding is the one finding of a document.
type Finding struct {
	// ExternalFindingID is the alert number as a string (number); for an
	// imported finding, its id (see ImportID).
	ExternalFindingID string `json:"externalFindingId"`
	// Name is the short title: the rule's description (sast), the
	// advisory summary (sca), the secret type's display name (secret).
	Name string `json:"name,omitempty"`
	// Description is the long text: the rule's full description (sast),
	// the advisory description (sca).
	Description string `json:"description,omitempty"`
	// FindingURL is the alert on GitHub (the alert's html_url).
	FindingURL string `json:"findingURL,omitempty"`
	// FindingDetectionURL is the code (or manifest) on the default
	// branch: <repository url>/blob/<default branch>/<path>#L<start>-L<end>.
	FindingDetectionURL string `json:"findingDetectionURL,omitempty"`
	// FindingStatus is StatusActive, StatusFixed, StatusDismissed or
	// StatusRemoved, from GitHub's state or resolution (else the webhook
	// action); REMOVED is set by the processor, never by a map.
	FindingStatus string `json:"findingStatus"`
	// SourceState is GitHub's own state: open, fixed, dismissed or
	// auto_dismissed; secret scanning open or resolved.
	SourceState string `json:"sourceState,omitempty"`
	// Severity is SeverityCritical, SeverityHigh, SeverityMedium,
	// SeverityLow or SeverityInfo: sast from the rule's security severity
	// (else its level), sca from the vulnerability's (else the advisory's)
	// severity, secret CRITICAL when the secret is active, else HIGH.
	Severity string `json:"severity"`
	// FirstFoundOn is when GitHub created the alert (created_at); null
	// when unknown, never omitted.
	FirstFoundOn *string `json:"firstFoundOn"`
	// LastFoundOn is the time of the latest change GitHub recorded:
	// updated_at, else the latest of the alert's own timestamps (fixed_at,
	// dismissed_at, auto_dismissed_at, resolved_at, created_at; for a
	// webhook also the time of its action), the receive time only for a
	// webhook that carries none of them — never a pull's clock, so an
	// unchanged alert read again gives an unchanged document. It orders
	// the events of one finding. Null when unknown, never omitted.
	LastFoundOn *string `json:"lastFoundOn"`
	// LastFixedOn is when the alert was fixed (fixed_at; secret scanning
	// resolved_at); null when not fixed, never omitted.
	LastFixedOn *string `json:"lastFixedOn"`
	// DetectionMethod is the tool: tool.name (sast, e.g. "CodeQL"),
	// "Dependabot" (sca), "Secret scanning" (secret), the tool's name
	// (imports).
	DetectionMethod string `json:"detectionMethod,omitempty"`
	// RuleID is the rule: rule.id (sast), the GHSA id (sca), the secret
	// type (secret).
	RuleID string `json:"ruleId,omitempty"`
	// Location is where the finding is in the repository.
	Location *Location `json:"location,omitempty"`
	// SolutionRecommendation is how to fix it: the rule's help (sast),
	// "Upgrade <package> to <first patched version>" (sca).
	SolutionRecommendation string `json:"solutionRecommendation,omitempty"`
	// References are links: the rule's help URI (sast), the advisory's
	// reference URLs (sca).
	References []string `json:"references,omitempty"`
	// FindingType holds the weakness and advisory (sast, sca).
	FindingType *FindingType `json:"findingType,omitempty"`
	// Product is the vulnerable package (sca).
	Product *Product `json:"product,omitempty"`
	// Remediations name who dismissed or resolved the alert.
	Remediations []Remediation `json:"remediations,omitempty"`
	// Mitigation is GitHub's dismissal or resolution reason and comment.
	Mitigation *Mitigation `json:"mitigation,omitempty"`
	// CorrelationKey joins the same weakness reported by several tools:
	// see CorrelationKey. Empty without a path, a start line and a CWE.
	CorrelationKey string `json:"correlationKey,omitempty"`
	// Confidence is HIGH, MEDIUM or LOW where the source gives one.
	Confidence string `json:"confidence,omitempty"`
	// RemovedReason says why a finding is REMOVED: absent,
	// repository-deleted, repository-removed or out-of-scope.
	RemovedReason string `json:"removedReason,omitempty"`
	// ImportScope is, on an imported finding, the scope of the import
	// that last listed it (see ImportScope); absent on GitHub's findings.
	ImportScope *ImportScope `json:"importScope,omitempty"`

	// The fields below came with the third version of the document; each
	// is omitted when GitHub does not give it.

	// Classifications are how code scanning classified the file of the
	// most recent instance: source, generated, test, library,
	// documentation (sast).
	Classifications []string `json:"classifications,omitempty"`
	// Message is the most recent instance's own message text (sast).
	Message string `json:"message,omitempty"`
	// Analysis names the analysis that found the alert (sast).
	Analysis *Analysis `json:"analysis,omitempty"`
	// Validity is GitHub's check of the secret: active, inactive or
	// unknown (secret).
	Validity string `json:"validity,omitempty"`
	// PubliclyLeaked reports whether the secret was also found in public
	// (secret); kept when false.
	PubliclyLeaked *bool `json:"publiclyLeaked,omitempty"`
	// MultiRepo reports whether the secret was found in several
	// repositories (secret); kept when false.
	MultiRepo *bool `json:"multiRepo,omitempty"`
	// PushProtectionBypass says who pushed the secret past push
	// protection and when; only when it was bypassed (secret).
	PushProtectionBypass *PushProtectionBypass `json:"pushProtectionBypass,omitempty"`
	// Assignees are the logins the alert is assigned to (assignees[];
	// secret scanning's assigned_to).
	Assignees []string `json:"assignees,omitempty"`

	// The fields below carry the priority and its inputs that no map
	// gives.

	// SecuritySeverityScore is the rule's numeric security-severity, 0 to
	// 10 (sast; imported SARIF: the rule's properties.security-severity).
	// GitHub's code scanning alerts give only the level (severity).
	SecuritySeverityScore *float64 `json:"securitySeverityScore,omitempty"`
	// Corroborated reports that an ACTIVE finding of another source on the
	// same repository has the same correlationKey; omitted when not.
	Corroborated bool `json:"corroborated,omitempty"`
	// Priority is the finding's score and the factors that make it up,
	// computed by the processor from the document (package priority).
	Priority *Priority `json:"priority,omitempty"`
	// Triage is the last decision taken on the finding through the
	// relay's decisions API (see Triage); omitted when none was.
	Triage *Triage `json:"triage,omitempty"`
}

// Priority is which exposures matter most: a score from 0 to 100 and the
// factors that explain it.
type Priority struct {
	// Score is the sum of the factors' points clamped to 0..100; 0 for a
	// finding that is not ACTIVE.
	Score int `json:"score"`
	// Factors are the table rows that apply, in the table's order.
	Factors []Factor `json:"factors"`
}

// Factor is one row of the priority table applied to a finding.
type Factor struct {
	// Name is the row: severity, epss, secret-validity, publicly-leaked,
	// exposure, criticality, corroborated, dependency, code-context,
	// secret-reach or status.
	Name string `json:"name"`
	// Value is the input the row matched, e.g. "HIGH", "cvss3 9.8",
	// "public".
	Value string `json:"value"`
	// Points is what the row adds (negative: subtracts).
	Points int `json:"points"`
}

// Analysis names the code scanning analysis of a finding.
type Analysis struct {
	// ToolVersion is the version of the tool (tool.version).
	ToolVersion string `json:"toolVersion,omitempty"`
	// Category is the analysis category of the most recent instance.
	Category string `json:"category,omitempty"`
	// AnalysisKey identifies the analysis (workflow file and job) of the
	// most recent instance.
	AnalysisKey string `json:"analysisKey,omitempty"`
}

// PushProtectionBypass is a bypass of secret scanning's push protection.
type PushProtectionBypass struct {
	// By is the login of who bypassed it (push_protection_bypassed_by).
	By string `json:"by,omitempty"`
	// At is when (push_protection_bypassed_at, RFC 3339).
	At string `json:"at,omitempty"`
}

// ImportScope is the scope of an import — tool, category and ref, as the
// import named them — which a complete scan of the same scope speaks for.
type ImportScope struct {
	// Tool is the import's tool (detectionMethod).
	Tool string `json:"tool"`
	// Category is the import's category ("" when it named none).
	Category string `json:"category,omitempty"`
	// Ref is the import's ref ("" when it named none: the default branch
	// at the time of the scan).
	Ref string `json:"ref,omitempty"`
}

// Same reports whether s is the scope (tool, category, ref): the tools
// compare by their slug, as the keys of imported findings do.
func (s *ImportScope) Same(tool, category, ref string) bool {
	return s != nil && ToolSlug(s.Tool) == ToolSlug(tool) && s.Category == category && s.Ref == ref
}

// Location is where a code scanning finding (or a secret) was found.
type Location struct {
	// Path is the file, relative to the repository root.
	Path string `json:"path,omitempty"`
	// StartLine is the first line of the finding (1-based).
	StartLine int `json:"startLine,omitempty"`
	// EndLine is the last line of the finding.
	EndLine int `json:"endLine,omitempty"`
	// Ref is the Git ref the finding was seen on (refs/heads/main).
	Ref string `json:"ref,omitempty"`
	// CommitSHA is the commit the finding was seen in.
	CommitSHA string `json:"commitSha,omitempty"`
	// StartColumn is the first column of the finding (1-based; sast).
	StartColumn int `json:"startColumn,omitempty"`
	// EndColumn is the column after the finding's last character (sast).
	EndColumn int `json:"endColumn,omitempty"`
}

// FindingType classifies the finding.
type FindingType struct {
	// Vulnerability is set for sast and sca findings.
	Vulnerability *Vulnerability `json:"vulnerability,omitempty"`
}

// Vulnerability holds the weakness and advisory identifiers and scores.
type Vulnerability struct {
	// CWEIDs are CWE-<n>: sast from the rule's external/cwe/cwe-NNN tags
	// (all of them, in tag order), sca from the advisory's CWEs. Always a
	// list, possibly empty.
	CWEIDs []string `json:"cweIds"`
	// OWASPTop10IDs are OWASP Top 10 ids; GitHub's alerts carry none, so
	// it is an empty list.
	OWASPTop10IDs []string `json:"owaspTop10Ids"`
	// CVEID is the advisory's CVE id (sca).
	CVEID string `json:"cveId,omitempty"`
	// GHSAID is the advisory's GitHub Security Advisory id (sca).
	GHSAID string `json:"ghsaId,omitempty"`
	// CVSS is the advisory's CVSS v3 (and v4) vector and score (sca).
	CVSS *CVSS `json:"cvss,omitempty"`
	// ExploitCodeMaturity is the EPSS probability, 0 to 1 (sca, the
	// advisory's epss.percentage).
	ExploitCodeMaturity *float64 `json:"exploitCodeMaturity,omitempty"`
	// EPSSPercentile is the EPSS percentile, 0 to 1: how the probability
	// ranks among all CVEs (sca, epss.percentile).
	EPSSPercentile *float64 `json:"epssPercentile,omitempty"`
	// AdvisoryWithdrawnAt is when the advisory was withdrawn (sca,
	// withdrawn_at, RFC 3339).
	AdvisoryWithdrawnAt string `json:"advisoryWithdrawnAt,omitempty"`
	// Identifiers are every identifier of the advisory (GHSA and CVE
	// ids) in GitHub's order (sca).
	Identifiers []string `json:"identifiers,omitempty"`
}

// CVSS is the advisory's CVSS v3 vector and base score, and its CVSS v4
// ones where GitHub has them.
type CVSS struct {
	// Vector is the CVSS v3 vector string.
	Vector string `json:"vector,omitempty"`
	// CVSS3Base is the CVSS v3 base score, 0.1 to 10; left out when GitHub
	// has no score (it sends 0).
	CVSS3Base *float64 `json:"cvss3Base,omitempty"`
	// CVSS4Base is the CVSS v4 base score, 0.1 to 10; left out when GitHub
	// has no score.
	CVSS4Base *float64 `json:"cvss4Base,omitempty"`
	// CVSS4Vector is the CVSS v4 vector string.
	CVSS4Vector string `json:"cvss4Vector,omitempty"`
}

// Product is the vulnerable package of a Dependabot finding.
type Product struct {
	// Vendor is the package ecosystem (npm, pip, maven, …).
	Vendor string `json:"vendor,omitempty"`
	// Name is the package name.
	Name string `json:"name,omitempty"`
	// Version is the vulnerable version range ("< 4.17.21").
	Version string `json:"version,omitempty"`
	// ManifestPath is the manifest that declares the dependency.
	ManifestPath string `json:"manifestPath,omitempty"`
	// DependencyScope is runtime or development (dependency.scope).
	DependencyScope string `json:"dependencyScope,omitempty"`
	// DependencyRelationship is direct, transitive or inconclusive
	// (dependency.relationship).
	DependencyRelationship string `json:"dependencyRelationship,omitempty"`
}

// Remediation names who remediated (or dismissed) the finding.
type Remediation struct {
	// RemediationBy is the GitHub login (dismissed_by, resolved_by).
	RemediationBy string `json:"remediationBy,omitempty"`
}

// Mitigation is why a finding was dismissed.
type Mitigation struct {
	// MitigationStrategy is GitHub's reason (dismissed_reason, or the
	// secret's resolution: false_positive, revoked, …).
	MitigationStrategy string `json:"mitigationStrategy,omitempty"`
	// Comment is the dismissal or resolution comment.
	Comment string `json:"comment,omitempty"`
}
