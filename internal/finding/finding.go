// Package finding owns the finding document — one JSON document per
// finding, an asset holding a findings array with this one finding — its
// key, its status and severity vocabularies, and its content hash.
// docs/contract.md describes the document field by field.
package finding

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

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
	SchemaVersion     int         `json:"schemaVersion"`
	FindingKey        string      `json:"findingKey"`
	FindingTypeName   string      `json:"findingTypeName"`
	VendorName        string      `json:"vendorName"`
	VendorProductName string      `json:"vendorProductName"`
	Source            string      `json:"source"`
	Origin            string      `json:"origin"`
	ObservedAt        string      `json:"observedAt"`
	ExternalAssetID   string      `json:"externalAssetId"`
	VendorAssetID     string      `json:"vendorAssetId"`
	AssetDetail       AssetDetail `json:"assetDetail"`
	Findings          []Finding   `json:"findings"`
}

// AssetDetail describes the repository asset.
type AssetDetail struct {
	Name                 string               `json:"name,omitempty"`
	FullName             string               `json:"fullName,omitempty"`
	AssetClass           string               `json:"assetClass,omitempty"`
	AssetSubClass        string               `json:"assetSubClass,omitempty"`
	SourceCreatedAt      string               `json:"sourceCreatedAt,omitempty"`
	SourceUpdatedAt      string               `json:"sourceUpdatedAt,omitempty"`
	RepositoryAssetClass RepositoryAssetClass `json:"repositoryAssetClass"`
	TypedAttributes      map[string]string    `json:"typedAttributes,omitempty"`
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
	Owner          string `json:"owner,omitempty"`
	BusinessEntity string `json:"businessEntity,omitempty"`
}

// RepositoryAssetClass holds the repository's own attributes.
type RepositoryAssetClass struct {
	RepoURL       string `json:"repoUrl,omitempty"`
	Visibility    string `json:"visibility,omitempty"`
	Owner         string `json:"owner,omitempty"`
	DefaultBranch string `json:"defaultBranch,omitempty"`
	Archived      bool   `json:"archived"`
}

// Finding is the one finding of a document.
type Finding struct {
	ExternalFindingID      string        `json:"externalFindingId"`
	Name                   string        `json:"name,omitempty"`
	Description            string        `json:"description,omitempty"`
	FindingURL             string        `json:"findingURL,omitempty"`
	FindingDetectionURL    string        `json:"findingDetectionURL,omitempty"`
	FindingStatus          string        `json:"findingStatus"`
	SourceState            string        `json:"sourceState,omitempty"`
	Severity               string        `json:"severity"`
	FirstFoundOn           *string       `json:"firstFoundOn"`
	LastFoundOn            *string       `json:"lastFoundOn"`
	LastFixedOn            *string       `json:"lastFixedOn"`
	DetectionMethod        string        `json:"detectionMethod,omitempty"`
	RuleID                 string        `json:"ruleId,omitempty"`
	Location               *Location     `json:"location,omitempty"`
	SolutionRecommendation string        `json:"solutionRecommendation,omitempty"`
	References             []string      `json:"references,omitempty"`
	FindingType            *FindingType  `json:"findingType,omitempty"`
	Product                *Product      `json:"product,omitempty"`
	Remediations           []Remediation `json:"remediations,omitempty"`
	Mitigation             *Mitigation   `json:"mitigation,omitempty"`
	// CorrelationKey joins the same weakness reported by several tools:
	// see CorrelationKey. Empty without a path, a start line and a CWE.
	CorrelationKey string `json:"correlationKey,omitempty"`
	// Confidence is HIGH, MEDIUM or LOW where the source gives one.
	Confidence string `json:"confidence,omitempty"`
	// RemovedReason says why a finding is REMOVED: absent,
	// repository-deleted, repository-removed or out-of-scope.
	RemovedReason string `json:"removedReason,omitempty"`
}

// Location is where a code scanning finding (or a secret) was found.
type Location struct {
	Path      string `json:"path,omitempty"`
	StartLine int    `json:"startLine,omitempty"`
	EndLine   int    `json:"endLine,omitempty"`
	Ref       string `json:"ref,omitempty"`
	CommitSHA string `json:"commitSha,omitempty"`
}

// FindingType classifies the finding.
type FindingType struct {
	Vulnerability *Vulnerability `json:"vulnerability,omitempty"`
}

// Vulnerability holds the weakness and advisory identifiers and scores.
type Vulnerability struct {
	CWEIDs              []string `json:"cweIds"`
	OWASPTop10IDs       []string `json:"owaspTop10Ids"`
	CVEID               string   `json:"cveId,omitempty"`
	GHSAID              string   `json:"ghsaId,omitempty"`
	CVSS                *CVSS    `json:"cvss,omitempty"`
	ExploitCodeMaturity *float64 `json:"exploitCodeMaturity,omitempty"`
}

// CVSS is a CVSS v3 vector and base score.
type CVSS struct {
	Vector    string   `json:"vector,omitempty"`
	CVSS3Base *float64 `json:"cvss3Base,omitempty"`
}

// Product is the vulnerable package of a Dependabot finding.
type Product struct {
	Vendor       string `json:"vendor,omitempty"`
	Name         string `json:"name,omitempty"`
	Version      string `json:"version,omitempty"`
	ManifestPath string `json:"manifestPath,omitempty"`
}

// Remediation names who remediated (or dismissed) the finding.
type Remediation struct {
	RemediationBy string `json:"remediationBy,omitempty"`
}

// Mitigation is why a finding was dismissed.
type Mitigation struct {
	MitigationStrategy string `json:"mitigationStrategy,omitempty"`
	Comment            string `json:"comment,omitempty"`
}

// Key is the finding key <dataset>.<repository_id>.<alert number>.
func Key(dataset string, repositoryID int64, number int64) string {
	return dataset + "." + strconv.FormatInt(repositoryID, 10) + "." + strconv.FormatInt(number, 10)
}

// ParseKey splits a finding key.
func ParseKey(key string) (dataset string, repositoryID, number int64, err error) {
	parts := strings.Split(key, ".")
	if len(parts) != 3 {
		return "", 0, 0, fmt.Errorf("finding key %q: want <type>.<repository_id>.<number>", key)
	}
	if repositoryID, err = strconv.ParseInt(parts[1], 10, 64); err != nil {
		return "", 0, 0, fmt.Errorf("finding key %q: repository id: %w", key, err)
	}
	if number, err = strconv.ParseInt(parts[2], 10, 64); err != nil {
		return "", 0, 0, fmt.Errorf("finding key %q: number: %w", key, err)
	}
	return parts[0], repositoryID, number, nil
}

// Dataset returns the dataset of a finding type name, or "".
func Dataset(typeName string) string {
	switch typeName {
	case TypeSAST:
		return SAST
	case TypeSCA:
		return SCA
	case TypeSecret:
		return Secret
	}
	return ""
}

// Finding returns the document's one finding, or nil.
func (d *Document) Finding() *Finding {
	if len(d.Findings) == 0 {
		return nil
	}
	return &d.Findings[0]
}

// ContentHash is a hex SHA-256 of the document without observedAt and
// origin: two documents with the same hash say the same about the finding,
// so the second is not published again: a finding message is published
// only when the content changed.
func (d Document) ContentHash() string {
	d.ObservedAt = ""
	d.Origin = ""
	b, err := json.Marshal(d)
	if err != nil {
		// A Document always marshals: it holds only strings, numbers,
		// bools, slices and maps of strings.
		panic(fmt.Sprintf("finding: marshal: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// Decode decodes a stored document.
func Decode(b []byte) (Document, error) {
	var d Document
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		return Document{}, fmt.Errorf("decode finding: %w", err)
	}
	return d, nil
}

// blankVolatile is how the two fields the content hash leaves out encode
// when empty; they are adjacent in Document.
const blankVolatile = `"origin":"","observedAt":""`

// Encode returns the document's JSON and its content hash with one
// encoding: the hash input is the document with origin and observedAt
// empty, and those two are then spliced in.
func (d Document) Encode() (data []byte, hash string, err error) {
	origin, observed := d.Origin, d.ObservedAt
	d.Origin, d.ObservedAt = "", ""
	b, err := json.Marshal(d)
	if err != nil {
		return nil, "", fmt.Errorf("encode finding %s: %w", d.FindingKey, err)
	}
	sum := sha256.Sum256(b)
	hash = hex.EncodeToString(sum[:16])
	i := bytes.Index(b, []byte(blankVolatile))
	if i < 0 {
		// Cannot happen with this struct; stay correct if it ever changes.
		d.Origin, d.ObservedAt = origin, observed
		b, err = json.Marshal(d)
		return b, hash, err
	}
	o, _ := json.Marshal(origin) // strings always marshal
	t, _ := json.Marshal(observed)
	out := make([]byte, 0, len(b)+len(o)+len(t))
	out = append(out, b[:i]...)
	out = append(out, `"origin":`...)
	out = append(out, o...)
	out = append(out, `,"observedAt":`...)
	out = append(out, t...)
	out = append(out, b[i+len(blankVolatile):]...)
	return out, hash, nil
}
