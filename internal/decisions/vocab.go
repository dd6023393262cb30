// Package decisions owns triage decisions taken outside GitHub (the risk
// platform, a script, the console) on the relay's findings: their
// vocabulary (decisions, scopes and each finding type's reason words), the
// validation of POST /decisions, the message stored on GHAS_EVENTS
// (ghas.decision.<type>), the status kept in KV ghas_decisions, and the
// receiver's handler of POST /decisions and GET /decisions/{id}. The
// processor applies them (internal/processor/decisions.go).
package decisions

import (
	"fmt"
	"strings"

	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// Decisions and scopes of a request.
const (
	Dismiss = finding.DecisionDismiss
	Reopen  = finding.DecisionReopen

	// ScopeFinding applies a decision to the named finding only (the
	// default).
	ScopeFinding = "finding"
	// ScopeCorrelated applies it to every finding of the repository with
	// the named finding's correlationKey, each by its own type's rules.
	ScopeCorrelated = "correlated"
)

// Limits of a request.
const (
	// MaxBodyBytes bounds a request body (413 above).
	MaxBodyBytes = 1 << 20
	// MaxBatch bounds the decisions of one request.
	MaxBatch = 1000
	// MaxComment bounds a comment, in characters: GitHub's own limit of a
	// dismissal comment.
	MaxComment = 280
)

// Kind is which rules a finding's decisions follow: the GitHub alert type
// of its key, or an imported finding's.
type Kind string

// Kinds of finding.
const (
	CodeScanning   Kind = "code scanning"
	Dependabot     Kind = "Dependabot"
	SecretScanning Kind = "secret scanning"
	Imported       Kind = "imported"
)

// reasons are each kind's reasons in the words of this API: GitHub's own
// (Dependabot and secret scanning spell them so; code scanning's words are
// the same with spaces, see GitHubReason). An imported finding takes any
// of them.
var reasons = map[Kind][]string{
	CodeScanning:   {"false_positive", "wont_fix", "used_in_tests"},
	Dependabot:     {"fix_started", "inaccurate", "no_bandwidth", "not_used", "tolerable_risk"},
	SecretScanning: {"false_positive", "wont_fix", "revoked", "used_in_tests"},
	Imported: {"false_positive", "wont_fix", "used_in_tests", "fix_started", "inaccurate", "no_bandwidth", "not_used",
		"tolerable_risk", "revoked"},
}

// Reasons lists the reasons a kind takes.
func Reasons(k Kind) []string { return append([]string(nil), reasons[k]...) }

// ValidReason reports whether kind k takes reason.
func ValidReason(k Kind, reason string) bool {
	for _, r := range reasons[k] {
		if r == reason {
			return true
		}
	}
	return false
}

// GitHubReason is reason in the words of kind k's REST API: code
// scanning's dismissed_reason ("false positive", "won't fix", "used in
// tests"), Dependabot's dismissed_reason and secret scanning's resolution
// as they are. ok is false for a reason the kind does not take (and for
// imported findings, which GitHub does not hold).
func GitHubReason(k Kind, reason string) (word string, ok bool) {
	if k == Imported || !ValidReason(k, reason) {
		return "", false
	}
	if k == CodeScanning {
		return map[string]string{"false_positive": "false positive", "wont_fix": "won't fix", "used_in_tests": "used in tests"}[reason], true
	}
	return reason, true
}

// KindOf is the kind of a finding key: <type>.<repository_id>.<number>
// (sast code scanning, sca Dependabot, secret secret scanning), or an
// imported finding's <type>.<repository_id>.<tool>.<id>. It also returns
// the key's dataset and repository id.
func KindOf(key string) (k Kind, dataset string, repositoryID int64, err error) {
	if strings.Count(key, ".") == 3 {
		ds, repo, _, _, err := finding.ParseImportKey(key)
		if err != nil || repo <= 0 || ds != finding.SAST {
			return "", "", 0, fmt.Errorf("%q is not a finding key: want <type>.<repository_id>.<number> or sast.<repository_id>.<tool>.<id>", key)
		}
		return Imported, ds, repo, nil
	}
	ds, repo, number, err := finding.ParseKey(key)
	if err != nil || repo <= 0 || number <= 0 {
		return "", "", 0, fmt.Errorf("%q is not a finding key: want <type>.<repository_id>.<number> or sast.<repository_id>.<tool>.<id>", key)
	}
	switch ds {
	case finding.SAST:
		k = CodeScanning
	case finding.SCA:
		k = Dependabot
	case finding.Secret:
		k = SecretScanning
	default:
		return "", "", 0, fmt.Errorf("%q is not a finding key: its type %q is none of sast, sca, secret", key, ds)
	}
	return k, ds, repo, nil
}
