package ghclient_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/ghas-relay/ghas-relay/internal/ghclient"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
)

// updateWorld is one repository with an open alert of every kind.
func updateWorld(t *testing.T) (*ghtest.Server, *ghclient.App, ghtest.Installation, ghtest.Repository) {
	t.Helper()
	srv := fake(t, ghtest.Options{})
	in := srv.AddInstallation("octo-org", "Organization")
	repo := srv.AddRepository(in.ID, "api", true)
	for _, k := range ghtest.Kinds() {
		srv.PutAlert(repo.ID, k, ghtest.Alert{Number: 1, State: "open"})
	}
	return srv, client(t, srv, nil), in, repo
}

// TestUpdateAlertEveryReason: every reason of every kind reaches GitHub in
// its API's words; the answer is the alert as it now is, the comment
// included; a reopen sends neither reason nor comment.
func TestUpdateAlertEveryReason(t *testing.T) {
	srv, app, in, repo := updateWorld(t)
	for kind, reasons := range map[ghclient.Kind][]string{
		ghclient.CodeScanning:   {"false positive", "won't fix", "used in tests"},
		ghclient.Dependabot:     {"fix_started", "inaccurate", "no_bandwidth", "not_used", "tolerable_risk"},
		ghclient.SecretScanning: {"false_positive", "wont_fix", "revoked", "used_in_tests"},
	} {
		closed, field, commentField := ghclient.StateDismissed, "dismissed_reason", "dismissed_comment"
		if kind == ghclient.SecretScanning {
			closed, field, commentField = ghclient.StateResolved, "resolution", "resolution_comment"
		}
		for _, reason := range reasons {
			raw, err := app.UpdateAlert(ctx(t), in.ID, kind, repo.Owner, repo.Name, 1, ghclient.AlertUpdate{State: closed, Reason: reason, Comment: "why: " + reason})
			if err != nil {
				t.Fatalf("%s %q: %v", kind, reason, err)
			}
			var got map[string]any
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			if got["state"] != closed || got[field] != reason || got[commentField] != "why: "+reason {
				t.Errorf("%s %q: answer state %v %s %v %s %v", kind, reason, got["state"], field, got[field], commentField, got[commentField])
			}
			if _, leaked := got["secret"]; leaked {
				t.Errorf("%s: the answer kept the secret", kind)
			}
			if _, err := app.UpdateAlert(ctx(t), in.ID, kind, repo.Owner, repo.Name, 1, ghclient.AlertUpdate{State: ghclient.StateOpen, Reason: reason, Comment: "ignored"}); err != nil {
				t.Fatalf("%s reopen: %v", kind, err)
			}
		}
	}
	ups := srv.Updates()
	if len(ups) != 24 {
		t.Fatalf("%d updates, want 24", len(ups))
	}
	for _, u := range ups {
		if u.State == "open" && (u.Reason != "" || u.Comment != "") {
			t.Errorf("a reopen carried %q %q", u.Reason, u.Comment)
		}
	}
}

// TestUpdateAlertRefusals: GitHub's 422 (a reason the kind does not take,
// a missing reason, a comment over 280 characters), 403 (no write
// permission) and 404 fail at once with GitHub's message, never retried.
func TestUpdateAlertRefusals(t *testing.T) {
	srv, app, in, repo := updateWorld(t)
	for name, tc := range map[string]struct {
		kind   ghclient.Kind
		u      ghclient.AlertUpdate
		number int64
		status int
		msg    string
	}{
		"reason of another kind": {ghclient.CodeScanning, ghclient.AlertUpdate{State: "dismissed", Reason: "tolerable_risk"}, 1, 422, "dismissed_reason enum"},
		"no reason":              {ghclient.Dependabot, ghclient.AlertUpdate{State: "dismissed"}, 1, 422, "is required when state is dismissed"},
		"long comment":           {ghclient.SecretScanning, ghclient.AlertUpdate{State: "resolved", Reason: "revoked", Comment: strings.Repeat("é", 281)}, 1, 422, "too long"},
		"unknown alert":          {ghclient.Dependabot, ghclient.AlertUpdate{State: "dismissed", Reason: "inaccurate"}, 99, 404, "No alert found"},
	} {
		srv.ResetStats()
		_, err := app.UpdateAlert(ctx(t), in.ID, tc.kind, repo.Owner, repo.Name, tc.number, tc.u)
		var er *github.ErrorResponse
		if !errors.As(err, &er) || er.Response.StatusCode != tc.status || !strings.Contains(er.Message, tc.msg) {
			t.Errorf("%s: %v, want %d with %q", name, err, tc.status, tc.msg)
		}
		n := 0
		for ep, c := range srv.Stats().ByEndpoint {
			if strings.HasPrefix(ep, "PATCH ") {
				n += c
			}
		}
		if n != 1 {
			t.Errorf("%s: %d requests, want 1 (no retry)", name, n)
		}
	}
	srv.RefuseWrites(ghtest.Dependabot, true)
	_, err := app.UpdateAlert(ctx(t), in.ID, ghclient.Dependabot, repo.Owner, repo.Name, 1, ghclient.AlertUpdate{State: "dismissed", Reason: "inaccurate"})
	if !errors.Is(err, ghclient.ErrForbidden) || ghclient.StatusCode(err) != http.StatusForbidden || !strings.Contains(err.Error(), "Resource not accessible by integration") {
		t.Errorf("without the write permission: %v", err)
	}
	if got := srv.Alerts(repo.ID, ghtest.Dependabot)[0].State; got != "open" {
		t.Errorf("a refused update changed the alert to %s", got)
	}
}

// TestUpdateAlertRetries: a burst of 5xx and a dropped connection are
// retried with the body sent again, a secondary limit is waited out for
// its Retry-After; the alert ends updated.
func TestUpdateAlertRetries(t *testing.T) {
	srv, app, in, repo := updateWorld(t)
	path := "/code-scanning/alerts/1"
	srv.Inject(ghtest.Fault{Method: http.MethodPatch, Path: path, Times: 3, Status: http.StatusBadGateway, Message: "Bad Gateway"})
	srv.Inject(ghtest.Fault{Method: http.MethodPatch, Path: path, Times: 1, Drop: true})
	if _, err := app.UpdateAlert(ctx(t), in.ID, ghclient.CodeScanning, repo.Owner, repo.Name, 1, ghclient.AlertUpdate{State: "dismissed", Reason: "won't fix", Comment: "c"}); err != nil {
		t.Fatalf("after a 5xx burst: %v", err)
	}
	if n := srv.Stats().ByEndpoint["PATCH /repos/{owner}/{repo}/code-scanning/alerts/{id}"]; n != 5 {
		t.Errorf("%d PATCH requests, want 5 (four failures, then the update)", n)
	}
	if ups := srv.Updates(); len(ups) != 1 || ups[0].Reason != "won't fix" || ups[0].Comment != "c" {
		t.Errorf("updates %+v", ups)
	}
	srv.ClearFaults()
	f := ghtest.SecondaryLimit(path, time.Second, 1)
	f.Method = http.MethodPatch
	srv.Inject(f)
	start := time.Now()
	if _, err := app.UpdateAlert(ctx(t), in.ID, ghclient.CodeScanning, repo.Owner, repo.Name, 1, ghclient.AlertUpdate{State: "open"}); err != nil {
		t.Fatalf("after a secondary limit: %v", err)
	}
	if el := time.Since(start); el < time.Second {
		t.Errorf("Retry-After 1s not waited (%s)", el)
	}
	if got := srv.Alerts(repo.ID, ghtest.CodeScanning)[0].State; got != "open" {
		t.Errorf("alert %s, want open", got)
	}

	// 5xx for longer than the attempts allowed: gives up.
	srv.Inject(ghtest.ServerError(path, 0, 0))
	_, err := app.UpdateAlert(ctx(t), in.ID, ghclient.CodeScanning, repo.Owner, repo.Name, 1, ghclient.AlertUpdate{State: "dismissed", Reason: "used in tests"})
	if ghclient.StatusCode(err) != http.StatusInternalServerError {
		t.Errorf("a 5xx that lasts: %v", err)
	}
}
