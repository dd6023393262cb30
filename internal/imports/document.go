package imports

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/transform"
)

// Scope is what one import is a scan of, and the facts every finding of
// it shares.
type Scope struct {
	Tool         string
	Organization string
	Category     string
	Ref          string
	Commit       string
	// ScannedAt is the scan's time (RFC 3339, UTC).
	ScannedAt string
}

// Document builds the finding document of one imported result on the
// repository asset (a document holding only the asset part). The
// lifecycle dates (firstFoundOn, lastFoundOn, lastFixedOn) are the scan
// time; Lifecycle merges them with the stored finding. Pure: the maps and
// now are arguments.
func Document(im *transform.ImportMap, asset *finding.Document, repositoryID int64, sc Scope, r Result, now time.Time) finding.Document {
	v := im.Vendor(sc.Tool, sc.Organization)
	d := finding.Document{
		SchemaVersion:     finding.SchemaVersion,
		FindingKey:        finding.ImportKey(finding.SAST, repositoryID, sc.Tool, r.ID),
		FindingTypeName:   finding.TypeSAST,
		VendorName:        v.VendorName,
		VendorProductName: v.VendorProductName,
		Source:            v.Source,
		Origin:            stream.OriginImport,
		ObservedAt:        now.UTC().Format(time.RFC3339),
		ExternalAssetID:   asset.ExternalAssetID,
		VendorAssetID:     asset.VendorAssetID,
		AssetDetail:       asset.AssetDetail,
	}
	status := FindingStatus(im, r)
	sev := severity(im, r)
	cwes := r.CWEs
	if cwes == nil {
		cwes = []string{}
	}
	f := finding.Finding{
		ExternalFindingID:      r.ID,
		Name:                   r.Name,
		Description:            r.Description,
		FindingURL:             r.URL,
		FindingStatus:          status,
		SourceState:            sourceState(r),
		Severity:               sev,
		DetectionMethod:        sc.Tool,
		RuleID:                 r.RuleID,
		SolutionRecommendation: r.Recommendation,
		References:             r.References,
		FindingType:            &finding.FindingType{Vulnerability: &finding.Vulnerability{CWEIDs: cwes, OWASPTop10IDs: []string{}}},
		Confidence:             im.Confidence(r.Confidence),
		ImportScope:            &finding.ImportScope{Tool: sc.Tool, Category: sc.Category, Ref: sc.Ref},
		SecuritySeverityScore:  securitySeverityScore(r.SecuritySeverity),
	}
	if r.Path != "" || r.StartLine > 0 {
		// A line is kept whatever the path (a location by index, or none).
		ref := sc.Ref
		if ref == "" {
			ref = "refs/heads/" + asset.AssetDetail.RepositoryAssetClass.DefaultBranch
		}
		f.Location = &finding.Location{Path: r.Path, StartLine: r.StartLine, EndLine: r.EndLine, Ref: ref, CommitSHA: sc.Commit}
	}
	if r.Path != "" {
		f.FindingDetectionURL = detectionURL(asset, sc, r)
		f.CorrelationKey = finding.CorrelationKey(asset.VendorAssetID, r.Path, r.StartLine, r.CWEs)
	}
	if status == finding.StatusDismissed {
		reason := r.CloseReason
		if reason == "" && r.Suppressed {
			reason = "suppressed"
		}
		if reason != "" || r.Note != "" {
			f.Mitigation = &finding.Mitigation{MitigationStrategy: reason, Comment: r.Note}
		}
	}
	t := sc.ScannedAt
	f.FirstFoundOn, f.LastFoundOn = &t, &t
	if status == finding.StatusFixed {
		f.LastFixedOn = &t
	}
	d.Findings = []finding.Finding{f}
	return d
}

// FindingStatus is a result's status: an accepted SARIF suppression is
// DISMISSED, baselineState absent FIXED; a CSV status word by the table
// (a Codex "closed" by its close reason); else ACTIVE.
func FindingStatus(im *transform.ImportMap, r Result) string {
	switch {
	case r.Suppressed:
		return finding.StatusDismissed
	case r.Absent:
		return finding.StatusFixed
	}
	s := im.Status(r.Status)
	if r.CloseReason != "" && s != finding.StatusActive {
		if c := im.Status(r.CloseReason); c != "" {
			s = c
		}
	}
	if s == "" {
		return finding.StatusActive
	}
	return s
}

func severity(im *transform.ImportMap, r Result) string {
	for _, s := range []string{im.ScoreSeverity(r.SecuritySeverity), im.Level(r.Level), im.Severity(r.Severity)} {
		if s != "" {
			return s
		}
	}
	return im.DefaultSeverity
}

// securitySeverityScore is SARIF's security-severity as a number of the
// 0..10 scale (a priority input), nil when it is absent or off the scale.
func securitySeverityScore(s string) *float64 {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || !(f >= 0 && f <= 10) {
		return nil
	}
	return &f
}

func sourceState(r Result) string {
	switch {
	case r.Status != "" && r.CloseReason != "":
		return r.Status + ": " + r.CloseReason
	case r.Status != "":
		return r.Status
	case r.Suppressed:
		return "suppressed"
	case r.Absent:
		return "absent"
	}
	return ""
}

// detectionURL is <repository URL>/blob/<commit, else ref, else default
// branch>/<path>#L<start>-L<end>; "" for an absolute path.
func detectionURL(asset *finding.Document, sc Scope, r Result) string {
	base := asset.AssetDetail.RepositoryAssetClass.RepoURL
	if base == "" {
		base = asset.ExternalAssetID
	}
	rev := sc.Commit
	if rev == "" {
		rev = strings.TrimPrefix(strings.TrimPrefix(sc.Ref, "refs/heads/"), "refs/tags/")
	}
	if rev == "" {
		rev = asset.AssetDetail.RepositoryAssetClass.DefaultBranch
	}
	if base == "" || rev == "" || isAbsPath(r.Path) {
		return "" // an absolute path is no file of the repository
	}
	u := fmt.Sprintf("%s/blob/%s/%s", strings.TrimSuffix(base, "/"), rev, r.Path)
	if r.StartLine > 0 {
		u += "#L" + strconv.Itoa(r.StartLine)
		if r.EndLine > r.StartLine {
			u += "-L" + strconv.Itoa(r.EndLine)
		}
	}
	return u
}

// Lifecycle merges a freshly built document with the stored one:
// firstFoundOn is the earliest scan that listed it, lastFoundOn this one.
// It returns nil when the stored finding was already spoken for by a later
// scan: one that listed it (lastFoundOn), or one that no longer listed it
// and fixed it (lastFixedOn of a FIXED finding). The scope's record says
// so too, but two imports of a scope applied at once both read it before
// either wrote it; each finding's own times decide under its
// compare-and-set.
func Lifecycle(next, stored *finding.Document) *finding.Document {
	if stored == nil || stored.Finding() == nil {
		return next
	}
	sf, nf := stored.Finding(), next.Finding()
	if sf.LastFoundOn != nil && nf.LastFoundOn != nil && CompareScanTimes(*sf.LastFoundOn, *nf.LastFoundOn) > 0 {
		return nil
	}
	if sf.FindingStatus == finding.StatusFixed && sf.LastFixedOn != nil && nf.LastFoundOn != nil && CompareScanTimes(*sf.LastFixedOn, *nf.LastFoundOn) > 0 {
		return nil
	}
	if sf.FirstFoundOn != nil && (nf.FirstFoundOn == nil || CompareScanTimes(*sf.FirstFoundOn, *nf.FirstFoundOn) < 0) {
		t := *sf.FirstFoundOn
		nf.FirstFoundOn = &t
	}
	if nf.FindingStatus == finding.StatusFixed && sf.FindingStatus == finding.StatusFixed && sf.LastFixedOn != nil {
		t := *sf.LastFixedOn
		nf.LastFixedOn = &t
	}
	// The asset stays as the repository events left it when newer.
	if stored.AssetDetail.SourceUpdatedAt > next.AssetDetail.SourceUpdatedAt {
		sources := next.AssetDetail.Sources
		next.AssetDetail = stored.AssetDetail
		next.AssetDetail.Sources = sources
		next.ExternalAssetID, next.VendorAssetID = stored.ExternalAssetID, stored.VendorAssetID
	}
	return next
}

// Fixed returns stored marked FIXED as of a complete scan at scannedAt
// that no longer lists it, or nil to leave it: it is FIXED or REMOVED
// already, or a later scan spoke for it (Settled tells these apart).
// Absent means FIXED whatever the status: a DISMISSED finding the scan no
// longer lists is FIXED too, the rest of its document (its triage, its
// mitigation) kept, so that the triage applies again if a later scan
// lists it. A scan with the same time that listed it was received before
// this one (imports apply in the order received), and this later one
// wins, as Lifecycle lets a later scan of the same time list it again.
func Fixed(stored *finding.Document, scannedAt string, now time.Time) *finding.Document {
	if stored == nil || stored.Finding() == nil || Settled(stored) {
		return nil
	}
	sf := stored.Finding()
	if sf.LastFoundOn != nil && CompareScanTimes(*sf.LastFoundOn, scannedAt) > 0 {
		return nil
	}
	d := *stored
	d.Findings = append([]finding.Finding(nil), stored.Findings...)
	f := &d.Findings[0]
	f.FindingStatus = finding.StatusFixed
	f.SourceState = "absent"
	t := scannedAt
	f.LastFixedOn = &t
	d.Origin = stream.OriginImport
	d.ObservedAt = now.UTC().Format(time.RFC3339)
	return &d
}

// Settled: stored is a finding no complete scan changes by leaving it out
// (FIXED or REMOVED already).
func Settled(stored *finding.Document) bool {
	f := stored.Finding()
	return f != nil && (f.FindingStatus == finding.StatusFixed || f.FindingStatus == finding.StatusRemoved)
}
