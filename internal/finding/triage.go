package finding

// Triage decisions (triage.decision) and where one was applied
// (triage.appliedTo).
const (
	DecisionDismiss = "dismiss"
	DecisionReopen  = "reopen"

	AppliedToGitHub = "github"
	AppliedToRelay  = "relay"
)

// Triage is the last decision taken on a finding through POST /decisions:
// what, why, who and when, and where it was applied. GitHub's alerts carry
// it beside GitHub's own dismissal (mitigation); an imported finding's
// status follows it while later scans list the finding.
type Triage struct {
	// Decision is DecisionDismiss or DecisionReopen.
	Decision string `json:"decision"`
	// Reason is the dismissal reason in the words of the decisions API
	// (false_positive, wont_fix, used_in_tests, fix_started, inaccurate,
	// no_bandwidth, not_used, tolerable_risk, revoked); none for a reopen.
	Reason string `json:"reason,omitempty"`
	// Comment is the decision's comment, at most 280 characters.
	Comment string `json:"comment,omitempty"`
	// By is the name of the token that posted the decision (never the
	// token).
	By string `json:"by"`
	// At is when the relay received the decision (RFC 3339, UTC).
	At string `json:"at"`
	// DecisionID is the decision's id (GET /decisions/{id}).
	DecisionID string `json:"decisionId"`
	// AppliedTo is AppliedToGitHub (the alert was updated on GitHub) or
	// AppliedToRelay (an imported finding, changed in the relay only).
	AppliedTo string `json:"appliedTo"`
}
