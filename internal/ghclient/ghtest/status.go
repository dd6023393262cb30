package ghtest

import "github.com/ghas-relay/ghas-relay/internal/finding"

// FindingStatus is the findingStatus the pipeline must give this alert:
// open → ACTIVE, fixed → FIXED, a secret resolved as revoked → FIXED,
// anything else (dismissed, auto_dismissed, other resolutions) → DISMISSED.
func (a Alert) FindingStatus() string {
	switch a.State {
	case "open":
		return finding.StatusActive
	case "fixed":
		return finding.StatusFixed
	case "resolved":
		if a.Resolution == "revoked" {
			return finding.StatusFixed
		}
	}
	return finding.StatusDismissed
}
