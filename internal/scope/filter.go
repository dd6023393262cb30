package scope

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// Filter is the validated scope configuration. Build it with
// Settings.Filter; the zero value and nil keep everything.
type Filter struct {
	include, exclude []string        // lower-case owner/name globs
	types            map[string]bool // nil: all
	minSeverity      int
	excludeArchived  bool
	excludeForks     bool
	props            []condition
	ownerProp        string
	businessProp     string
	critProp         string
	fp               string
}

// Verdict is a scope decision.
type Verdict int

// Verdicts. Unknown is given only when INCLUDE_PROPERTIES is set and the
// repository's custom properties are not known (the repository object
// did not carry them): such a finding is not stored as new, and a stored
// one is not removed for it.
const (
	In Verdict = iota
	Out
	Unknown
)

// String is the verdict as a word for logs and reports.
func (v Verdict) String() string {
	switch v {
	case In:
		return "in"
	case Out:
		return "out"
	}
	return "unknown"
}

// Repository holds the facts of a repository the scope depends on.
type Repository struct {
	// ID is repository.id (0 when unknown).
	ID int64
	// FullName is owner/name.
	FullName string
	Archived bool
	Fork     bool
	// Topics are the repository's topics.
	Topics []string
	// Properties are the custom property values GitHub gave; a property
	// without a value is absent.
	Properties map[string]finding.PropertyValue
	// PropertiesKnown is false when the source carried no custom
	// properties at all (not even an empty object).
	PropertiesKnown bool
}

// All reports whether f keeps every finding (no filter is set).
func (f *Filter) All() bool {
	return f == nil || (len(f.include) == 0 && len(f.exclude) == 0 && f.types == nil && f.minSeverity == 0 &&
		!f.excludeArchived && !f.excludeForks && len(f.props) == 0)
}

// NeedsProperties reports whether the decision depends on custom properties.
func (f *Filter) NeedsProperties() bool { return f != nil && len(f.props) > 0 }

// ExcludesForks reports whether EXCLUDE_FORKS is set: the decision then
// needs to know whether a repository is a fork.
func (f *Filter) ExcludesForks() bool { return f != nil && f.excludeForks }

// Name reports whether a repository is in scope by its owner/name alone
// (INCLUDE_REPOS, EXCLUDE_REPOS). Names compare case-insensitively, as
// GitHub's do.
func (f *Filter) Name(fullName string) bool {
	if f == nil || (len(f.include) == 0 && len(f.exclude) == 0) {
		return true
	}
	n := strings.ToLower(fullName)
	if len(f.include) > 0 && !matchAny(f.include, n) {
		return false
	}
	return !matchAny(f.exclude, n)
}

func matchAny(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// Repository decides whether a repository is in scope: its name, archived
// and fork flags, and its custom properties.
func (f *Filter) Repository(r Repository) Verdict {
	if f == nil {
		return In
	}
	if !f.Name(r.FullName) || (f.excludeArchived && r.Archived) || (f.excludeForks && r.Fork) {
		return Out
	}
	if len(f.props) == 0 {
		return In
	}
	if !r.PropertiesKnown {
		return Unknown
	}
	for _, c := range f.props {
		if !slices.Contains(r.Properties[c.name].Values, c.value) {
			return Out
		}
	}
	return In
}

// Type reports whether a dataset (sast, sca, secret) is in scope.
func (f *Filter) Type(dataset string) bool {
	return f == nil || f.types == nil || f.types[dataset]
}

// Types returns the datasets in scope, in the order sast, sca, secret.
func (f *Filter) Types() []string {
	var out []string
	for _, ds := range []string{finding.SAST, finding.SCA, finding.Secret} {
		if f.Type(ds) {
			out = append(out, ds)
		}
	}
	return out
}

// Severity reports whether a severity is at least MIN_SEVERITY. An unknown
// severity counts as INFO.
func (f *Filter) Severity(severity string) bool {
	if f == nil || f.minSeverity == 0 {
		return true
	}
	return max(severityRank(severity), 0) >= f.minSeverity
}

// Finding decides whether a finding document is in scope: its type and
// severity, and its repository r.
func (f *Filter) Finding(d *finding.Document, r Repository) Verdict {
	if f == nil {
		return In
	}
	ds := finding.Dataset(d.FindingTypeName)
	if ds == "" {
		ds, _, _, _ = finding.ParseKey(d.FindingKey)
	}
	if !f.Type(ds) {
		return Out
	}
	if fd := d.Finding(); fd != nil && !f.Severity(fd.Severity) {
		return Out
	}
	return f.Repository(r)
}

// RepositoryOfDocument is what a stored document tells of its repository:
// its name, archived flag and custom properties (known when the document
// has any). Whether it is a fork is not in the document.
func RepositoryOfDocument(d *finding.Document) Repository {
	id, _ := strconv.ParseInt(d.VendorAssetID, 10, 64)
	r := Repository{
		ID:         id,
		FullName:   d.AssetDetail.FullName,
		Archived:   d.AssetDetail.RepositoryAssetClass.Archived,
		Properties: d.AssetDetail.CustomProperties,
	}
	r.PropertiesKnown = r.Properties != nil
	for _, t := range d.AssetDetail.Tags {
		if topic, ok := strings.CutPrefix(t, topicPrefix); ok {
			r.Topics = append(r.Topics, topic)
		}
	}
	return r
}

// Fingerprint identifies the scope configuration, ownership and
// criticality names included: "" for the defaults (keep everything, owner,
// business_unit and criticality), so that a reconciler's page records made without filters
// stay valid. A change of any setting changes it, and the reconciler then
// lists and compares everything again.
func (f *Filter) Fingerprint() string {
	if f == nil {
		return ""
	}
	return f.fp
}

func (f *Filter) fingerprint() string {
	if f.All() && f.ownerProp == DefaultOwnerProperty && f.businessProp == DefaultBusinessEntityProperty && f.critProp == DefaultCriticalityProperty {
		return ""
	}
	var b strings.Builder
	sortedJoin := func(label string, vs []string) {
		vs = slices.Clone(vs)
		slices.Sort(vs)
		b.WriteString(label + "=" + strconv.Quote(strings.Join(vs, "\x00")) + ";")
	}
	sortedJoin("include", f.include)
	sortedJoin("exclude", f.exclude)
	var types []string
	for t := range f.types {
		types = append(types, t)
	}
	sortedJoin("types", types)
	b.WriteString("min=" + strconv.Itoa(f.minSeverity) + ";")
	b.WriteString("archived=" + strconv.FormatBool(f.excludeArchived) + ";forks=" + strconv.FormatBool(f.excludeForks) + ";")
	var props []string
	for _, c := range f.props {
		props = append(props, c.name+"="+c.value)
	}
	sortedJoin("props", props)
	b.WriteString("owner=" + strconv.Quote(f.ownerProp) + ";business=" + strconv.Quote(f.businessProp))
	if f.critProp != DefaultCriticalityProperty {
		// Only when set: the fingerprints of other settings stay as they were.
		b.WriteString(";criticality=" + strconv.Quote(f.critProp))
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8])
}
