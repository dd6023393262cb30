package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/ghas-relay/ghas-relay/internal/decisions"
	"github.com/ghas-relay/ghas-relay/internal/ghclient"
)

// Write-back: what applying a decision to one of GitHub's alerts needs of
// GitHub — the alert's repository and installation, the pace of
// content-changing requests, the state to set and whether the alert has
// it already.

// AlertWriter updates and reads GitHub's alerts as the App and finds the
// installation of a repository; *ghclient.App is one. A processor without
// one (WRITE_BACK off) fails every decision on a GitHub alert.
type AlertWriter interface {
	RepositoryLister
	UpdateAlert(ctx context.Context, installationID int64, kind ghclient.Kind, owner, repo string, number int64, u ghclient.AlertUpdate) (json.RawMessage, error)
	GetAlert(ctx context.Context, installationID int64, kind ghclient.Kind, owner, repo string, number int64) (json.RawMessage, error)
}

// DefaultWriteInterval is the least time between two alert updates of one
// processor: GitHub asks integrations to keep content-changing requests
// under about 80 a minute and to wait a second between them.
const DefaultWriteInterval = time.Second

// pacer spaces the alert updates of a processor: a caller of wait passes
// at least interval after the previous one passed, measured when each
// actually goes (a slot booked ahead would let a late-woken caller and the
// next one go closer together).
type pacer struct {
	interval time.Duration
	once     sync.Once
	gate     chan struct{} // held while a caller waits for its turn
	last     time.Time     // when the previous caller passed; under gate
}

// wait returns when the caller may send (at once with no interval), or
// with ctx's error.
func (p *pacer) wait(ctx context.Context) error {
	if p == nil || p.interval <= 0 {
		return nil
	}
	p.once.Do(func() { p.gate = make(chan struct{}, 1) })
	select {
	case p.gate <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.gate }()
	if d := time.Until(p.last.Add(p.interval)); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	p.last = time.Now()
	return nil
}

// repoLocation is where the App reaches a repository: its installation,
// its current owner and name, and its REST object (the repository of a
// REST read).
type repoLocation struct {
	installation int64
	owner, name  string
	raw          json.RawMessage
}

// repoLocator finds repositories by id among the installations' listings,
// kept until a repository is missing from them (then listed again, at
// most once a minute).
type repoLocator struct {
	mu     sync.Mutex
	byID   map[int64]repoLocation
	listed time.Time
}

// relistEvery bounds how often the listings are read again for a
// repository they lack.
const relistEvery = time.Minute

func (l *repoLocator) find(ctx context.Context, lister RepositoryLister, id int64) (repoLocation, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if loc, ok := l.byID[id]; ok {
		return loc, true, nil
	}
	if !l.listed.IsZero() && time.Since(l.listed) < relistEvery {
		return repoLocation{}, false, nil
	}
	insts, err := lister.Installations(ctx)
	if err != nil {
		return repoLocation{}, false, fmt.Errorf("list installations: %w", err)
	}
	byID := map[int64]repoLocation{}
	for _, in := range insts {
		if in.Suspended {
			continue
		}
		repos, err := lister.Repositories(ctx, in.ID)
		if err != nil {
			return repoLocation{}, false, fmt.Errorf("list repositories of installation %d: %w", in.ID, err)
		}
		for _, r := range repos {
			byID[r.ID] = repoLocation{installation: in.ID, owner: r.Owner.Login, name: r.Name, raw: r.Raw}
		}
	}
	l.byID, l.listed = byID, time.Now()
	loc, ok := byID[id]
	return loc, ok, nil
}

// kindOf is the REST kind of a decision kind.
func kindOf(k decisions.Kind) ghclient.Kind {
	switch k {
	case decisions.CodeScanning:
		return ghclient.CodeScanning
	case decisions.Dependabot:
		return ghclient.Dependabot
	case decisions.SecretScanning:
		return ghclient.SecretScanning
	}
	return ""
}

// eventOfKind is the webhook event of a REST kind: a REST read is applied
// as the reconciler's events of that event are.
func eventOfKind(k ghclient.Kind) string {
	switch k {
	case ghclient.CodeScanning:
		return "code_scanning_alert"
	case ghclient.Dependabot:
		return "dependabot_alert"
	}
	return "secret_scanning_alert"
}

// wantedUpdate is the update a decision asks of an alert of kind k.
func wantedUpdate(k decisions.Kind, d decisions.Decision) (ghclient.AlertUpdate, error) {
	if d.Decision == decisions.Reopen {
		return ghclient.AlertUpdate{State: ghclient.StateOpen}, nil
	}
	word, ok := decisions.GitHubReason(k, d.Reason)
	if !ok {
		return ghclient.AlertUpdate{}, fmt.Errorf("%q is not a reason %s takes (%v)", d.Reason, k, decisions.Reasons(k))
	}
	state := ghclient.StateDismissed
	if k == decisions.SecretScanning {
		state = ghclient.StateResolved
	}
	return ghclient.AlertUpdate{State: state, Reason: word, Comment: d.Comment}, nil
}

// hasUpdate reports whether a REST alert already is as u would make it:
// its state, and a closing state's reason.
func hasUpdate(alert json.RawMessage, u ghclient.AlertUpdate) bool {
	var a struct {
		State           string `json:"state"`
		DismissedReason string `json:"dismissed_reason"`
		Resolution      string `json:"resolution"`
	}
	if json.Unmarshal(alert, &a) != nil || a.State != u.State {
		return false
	}
	return u.State == ghclient.StateOpen || a.DismissedReason == u.Reason || a.Resolution == u.Reason
}

// stateOf is a REST alert's state.
func stateOf(alert json.RawMessage) string {
	var a struct {
		State string `json:"state"`
	}
	_ = json.Unmarshal(alert, &a)
	return a.State
}

// refusal is GitHub's final answer to an update (any 4xx but a rate
// limit: 403 without the write permission, 404, 422 a request the schema
// refuses), with GitHub's message; nil for errors that may heal.
func refusal(err error) error {
	if errors.Is(err, ghclient.ErrRateLimited) {
		return nil
	}
	var er *github.ErrorResponse
	if !errors.As(err, &er) || er.Response == nil || er.Response.StatusCode < 400 || er.Response.StatusCode >= 500 {
		return nil
	}
	msg := er.Message
	if msg == "" {
		msg = er.Response.Status
	}
	return fmt.Errorf("GitHub answered %d: %s", er.Response.StatusCode, msg)
}
