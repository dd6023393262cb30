package ghclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/google/go-github/v62/github"
)

// Alert states an update may set.
const (
	StateOpen      = "open"
	StateDismissed = "dismissed" // code scanning, Dependabot
	StateResolved  = "resolved"  // secret scanning
)

// AlertUpdate is a change of one alert's state: State open, or dismissed
// (code scanning, Dependabot) / resolved (secret scanning) with Reason in
// the words of the kind's API (code scanning "false positive", "won't
// fix", "used in tests"; Dependabot fix_started, inaccurate, no_bandwidth,
// not_used, tolerable_risk; secret scanning false_positive, wont_fix,
// revoked, used_in_tests) and an optional Comment.
type AlertUpdate struct {
	State   string
	Reason  string
	Comment string
}

// secretScanningUpdate is go-github's SecretScanningAlertUpdateOptions
// with the resolution comment GitHub takes, which go-github v62 lacks.
type secretScanningUpdate struct {
	github.SecretScanningAlertUpdateOptions
	ResolutionComment *string `json:"resolution_comment,omitempty"`
}

// body is the request body of u for kind, in go-github's types.
func (u AlertUpdate) body(kind Kind) (any, error) {
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	closing := u.State != StateOpen
	reason, comment := opt(u.Reason), opt(u.Comment)
	if !closing {
		// Reopening takes neither: GitHub refuses a reason with state open.
		reason, comment = nil, nil
	}
	switch kind {
	case CodeScanning:
		if closing && u.State != StateDismissed {
			break
		}
		return &github.CodeScanningAlertState{State: u.State, DismissedReason: reason, DismissedComment: comment}, nil
	case Dependabot:
		if closing && u.State != StateDismissed {
			break
		}
		return &github.DependabotAlertState{State: u.State, DismissedReason: reason, DismissedComment: comment}, nil
	case SecretScanning:
		if closing && u.State != StateResolved {
			break
		}
		return &secretScanningUpdate{SecretScanningAlertUpdateOptions: github.SecretScanningAlertUpdateOptions{State: u.State, Resolution: reason},
			ResolutionComment: comment}, nil
	default:
		return nil, fmt.Errorf("unknown alert kind %q", kind)
	}
	return nil, fmt.Errorf("%s alerts cannot be set to %q", kind, u.State)
}

// UpdateAlert sets the state of one alert of a repository as installation
// installationID (PATCH /repos/{owner}/{repo}/{kind}/alerts/{number}, the
// request go-github's CodeScanning, Dependabot and SecretScanning
// UpdateAlert send) and returns GitHub's answer, the alert as it now is,
// as raw JSON (secret values removed): go-github's typed answer would drop
// fields the transform reads, as for GetAlert.
//
// Setting a state is idempotent, so the request is retried like a read:
// 5xx answers and network errors within Config.MaxAttempts and
// Config.MaxRetryElapsed, rate limits (Retry-After, secondary limits)
// within Config.MaxRateLimitWait. 403, 404 and 422 fail at once; their
// error carries GitHub's message (go-github's *github.ErrorResponse).
func (a *App) UpdateAlert(ctx context.Context, installationID int64, kind Kind, owner, repo string, number int64, u AlertUpdate) (json.RawMessage, error) {
	body, err := u.body(kind)
	if err != nil {
		return nil, fmt.Errorf("update %s alert %s/%s#%d: %w", kind, owner, repo, number, err)
	}
	c := a.installation(installationID)
	req, err := c.gh.NewRequest(http.MethodPatch, relPath(nil, "repos", owner, repo, string(kind), "alerts", strconv.FormatInt(number, 10)), body)
	if err != nil {
		return nil, fmt.Errorf("update %s alert %s/%s#%d: %w", kind, owner, repo, number, err)
	}
	var answer json.RawMessage
	if _, err := a.do(withRetriedWrite(ctx), c, req, &answer); err != nil {
		return nil, fmt.Errorf("update %s alert %s/%s#%d: %w", kind, owner, repo, number, classify(err))
	}
	if kind == SecretScanning {
		answer = dropSecret(answer)
	}
	return answer, nil
}

// retriedWrite marks a context whose requests with a body may be sent
// again: writes that set a state, which a second send leaves as the first
// did.
type retriedWrite struct{}

func withRetriedWrite(ctx context.Context) context.Context {
	return context.WithValue(ctx, retriedWrite{}, true)
}

func isRetriedWrite(ctx context.Context) bool {
	v, _ := ctx.Value(retriedWrite{}).(bool)
	return v
}
