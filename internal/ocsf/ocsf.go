// Package ocsf owns the OCSF 1.6.0 form of a finding: Convert turns one
// revision of a finding document into one OCSF event — a Vulnerability
// Finding (class_uid 2002) for code scanning, imported and dependency
// findings, a Data Security Finding (2006) for secrets. The conversion is
// pure: no I/O, no clock; the revision's facts (first revision or not, the
// previous status, the time) come in a Revision.
package ocsf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// SchemaVersion is the OCSF version of every event (metadata.version).
const SchemaVersion = "1.6.0"

// Category and classes.
const (
	CategoryFindings          = 2
	ClassVulnerabilityFinding = 2002
	ClassDataSecurityFinding  = 2006
)

// Activities (activity_id).
const (
	ActivityCreate = 1
	ActivityUpdate = 2
	ActivityClose  = 3
)

// Finding statuses (status_id).
const (
	StatusNew        = 1
	StatusSuppressed = 3
	StatusResolved   = 4
	StatusArchived   = 5
)

// DetectionSystemDeveloperSecurity is data_security.detection_system_id
// for a secret found in source code.
const DetectionSystemDeveloperSecurity = 11

// ResourceType is resources[].type of the repository.
const ResourceType = "Code Repository"

// Revision is what Convert needs to know about a revision beyond its
// document.
type Revision struct {
	// First is true for the finding's first revision.
	First bool
	// PreviousStatus is the findingStatus of the previous revision, or ""
	// when unknown.
	PreviousStatus string
	// Time is when the revision was observed.
	Time time.Time
}

// ErrUnconvertible is wrapped by every error of Convert: the document
// cannot become an OCSF event, however often it is tried.
var ErrUnconvertible = errors.New("finding cannot be converted to OCSF")

type status struct {
	id      int
	caption string
	closed  bool
}

func statusOf(s string) (status, bool) {
	switch s {
	case finding.StatusActive:
		return status{StatusNew, "New", false}, true
	case finding.StatusDismissed:
		return status{StatusSuppressed, "Suppressed", true}, true
	case finding.StatusFixed:
		return status{StatusResolved, "Resolved", true}, true
	case finding.StatusRemoved:
		return status{StatusArchived, "Archived", true}, true
	}
	return status{}, false
}

func severityOf(s string) (int, string, bool) {
	switch s {
	case finding.SeverityInfo:
		return 1, "Informational", true
	case finding.SeverityLow:
		return 2, "Low", true
	case finding.SeverityMedium:
		return 3, "Medium", true
	case finding.SeverityHigh:
		return 4, "High", true
	case finding.SeverityCritical:
		return 5, "Critical", true
	}
	return 0, "", false
}

func confidenceOf(s string) (int, string) {
	switch s {
	case finding.ConfidenceLow:
		return 1, "Low"
	case finding.ConfidenceMedium:
		return 2, "Medium"
	case finding.ConfidenceHigh:
		return 3, "High"
	}
	return 0, ""
}

// activity is the revision's activity: Create for a first revision, Close
// when the finding enters a closed status (FIXED, DISMISSED, REMOVED) from
// an open or unknown one, Update otherwise.
func activity(st status, rev Revision) (int, string) {
	switch {
	case rev.First:
		return ActivityCreate, "Create"
	case st.closed:
		if prev, ok := statusOf(rev.PreviousStatus); !ok || !prev.closed {
			return ActivityClose, "Close"
		}
	}
	return ActivityUpdate, "Update"
}

func fail(doc *finding.Document, format string, args ...any) error {
	return fmt.Errorf("convert %q to ocsf: %s: %w", doc.FindingKey, fmt.Sprintf(format, args...), ErrUnconvertible)
}

// Convert returns the OCSF event of one revision of a finding. An error
// (wrapping ErrUnconvertible) means the document breaks its own contract:
// no finding, no key, an unknown type, status or severity, no product name,
// or no revision time.
func Convert(doc finding.Document, rev Revision) (Event, error) {
	f := doc.Finding()
	switch {
	case f == nil:
		return Event{}, fail(&doc, "no finding")
	case doc.FindingKey == "":
		return Event{}, fail(&doc, "no findingKey")
	case rev.Time.IsZero():
		return Event{}, fail(&doc, "no revision time")
	}
	st, ok := statusOf(f.FindingStatus)
	if !ok {
		return Event{}, fail(&doc, "unknown findingStatus %q", f.FindingStatus)
	}
	sevID, sevCaption, ok := severityOf(f.Severity)
	if !ok {
		return Event{}, fail(&doc, "unknown severity %q", f.Severity)
	}
	product := Product{Name: doc.VendorProductName, VendorName: doc.VendorName}
	if product.Name == "" {
		product.Name = doc.VendorName
	}
	if product.Name == "" {
		return Event{}, fail(&doc, "no vendorProductName or vendorName")
	}

	ev := Event{
		CategoryUID:  CategoryFindings,
		CategoryName: "Findings",
		SeverityID:   sevID,
		Severity:     sevCaption,
		StatusID:     st.id,
		Status:       st.caption,
		Time:         rev.Time.UnixMilli(),
		Message:      f.Name,
		Metadata:     Metadata{Product: product, Version: SchemaVersion, CorrelationUID: f.CorrelationKey},
		FindingInfo:  info(&doc, f),
		Resources:    resources(&doc),
	}
	ev.ActivityID, ev.ActivityName = activity(st, rev)
	ev.ConfidenceID, ev.Confidence = confidenceOf(f.Confidence)
	// Why a finding is closed: its removedReason, else the dismissal (or
	// resolution) reason and comment.
	switch {
	case f.FindingStatus == finding.StatusRemoved:
		ev.StatusDetail = f.RemovedReason
	case st.closed && f.Mitigation != nil:
		ev.StatusDetail = f.Mitigation.MitigationStrategy
		ev.Comment = f.Mitigation.Comment
	}
	// A decision taken through the relay that the status follows (a
	// dismissal of a DISMISSED finding, a reopen of an ACTIVE one) gives
	// its comment, and a dismissal its reason where none is known.
	if tr := f.Triage; tr != nil && (tr.Decision == finding.DecisionDismiss && f.FindingStatus == finding.StatusDismissed ||
		tr.Decision == finding.DecisionReopen && f.FindingStatus == finding.StatusActive) {
		if tr.Comment != "" {
			ev.Comment = tr.Comment
		}
		if ev.StatusDetail == "" && tr.Decision == finding.DecisionDismiss {
			ev.StatusDetail = tr.Reason
		}
	}

	switch doc.FindingTypeName {
	case finding.TypeSAST, finding.TypeSCA:
		ev.ClassUID, ev.ClassName = ClassVulnerabilityFinding, "Vulnerability Finding"
		v, err := vulnerability(&doc, f)
		if err != nil {
			return Event{}, err
		}
		ev.Vulnerabilities = []Vulnerability{v}
		if p := f.Product; p != nil && (p.DependencyScope != "" || p.DependencyRelationship != "") {
			ev.Unmapped = &Unmapped{DependencyScope: p.DependencyScope, DependencyRelationship: p.DependencyRelationship}
		}
	case finding.TypeSecret:
		ev.ClassUID, ev.ClassName = ClassDataSecurityFinding, "Data Security Finding"
		ev.DataSecurity = &DataSecurity{
			DetectionSystemID: DetectionSystemDeveloperSecurity,
			DetectionSystem:   "Developer Security",
			DetectionPattern:  f.RuleID,
			// A leaked credential is security data (category 6 Security).
			CategoryID: 6,
			Category:   "Security",
		}
		if f.Location != nil {
			ev.File = file(f.Location.Path)
		}
	default:
		return Event{}, fail(&doc, "unknown findingTypeName %q", doc.FindingTypeName)
	}
	if f.Priority != nil {
		if ev.Unmapped == nil {
			ev.Unmapped = &Unmapped{}
		}
		ev.Unmapped.Priority = f.Priority
	}
	ev.TypeUID = ev.ClassUID*100 + ev.ActivityID
	ev.TypeName = ev.ClassName + ": " + ev.ActivityName
	return ev, nil
}

// Encode converts one revision of a finding and returns the event's JSON,
// with <, > and & written as they are (finding text is full of them).
func Encode(doc finding.Document, rev Revision) ([]byte, error) {
	ev, err := Convert(doc, rev)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(2048)
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ev); err != nil {
		return nil, fmt.Errorf("encode %q as ocsf: %w", doc.FindingKey, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func info(doc *finding.Document, f *finding.Finding) Info {
	in := Info{
		UID:           doc.FindingKey,
		Title:         f.Name,
		Desc:          f.Description,
		SrcURL:        f.FindingURL,
		FirstSeenTime: epochMilli(f.FirstFoundOn),
		LastSeenTime:  epochMilli(f.LastFoundOn),
	}
	if doc.FindingTypeName != "" {
		in.Types = []string{doc.FindingTypeName}
	}
	if doc.Source != "" {
		in.DataSources = []string{doc.Source}
	}
	if f.RuleID != "" {
		in.Analytic = &Analytic{UID: f.RuleID, Name: f.RuleID, TypeID: 1, Type: "Rule"}
	}
	if f.DetectionMethod != "" {
		in.Product = &Product{Name: f.DetectionMethod}
		if f.Analysis != nil {
			in.Product.Version = f.Analysis.ToolVersion
		}
	}
	return in
}

// resources is the repository as the one affected resource; none when the
// document names neither its URL nor its full name.
func resources(doc *finding.Document) []Resource {
	ad := &doc.AssetDetail
	r := Resource{UID: doc.ExternalAssetID, UIDAlt: doc.VendorAssetID, Name: ad.FullName, Type: ResourceType, Labels: ad.Tags}
	if r.UID == "" && r.Name == "" {
		return nil
	}
	// A user needs a name; a business entity without an owner is still in
	// the labels (as its custom property tag).
	if o := ad.Ownership; o != nil && o.Owner != "" {
		r.Owner = &User{Name: o.Owner}
		if o.BusinessEntity != "" {
			r.Owner.Org = &Organization{Name: o.BusinessEntity}
		}
	}
	return []Resource{r}
}

// file is a file object for a repository path; nil for an empty path.
func file(p string) *File {
	name := path.Base(strings.TrimRight(p, "/"))
	if p == "" || name == "." || name == "/" {
		return nil
	}
	return &File{Name: name, Path: p, TypeID: 1, Type: "Regular File"}
}

// epochMilli is an RFC 3339 time in epoch milliseconds; 0 (omitted) when
// absent or unparsable — an optional attribute is better left out than
// the whole event lost.
func epochMilli(s *string) int64 {
	if s == nil || *s == "" {
		return 0
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		return 0
	}
	return t.UnixMilli()
}
