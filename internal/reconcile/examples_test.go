package reconcile

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
)

// forgetPages deletes every remembered page state (ETag, next link), so
// that the next pull reads every page in full instead of getting 304s.
func (e *env) forgetPages() {
	e.t.Helper()
	ctx := context.Background()
	lister, err := e.state.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return
	}
	if err != nil {
		e.t.Fatal(err)
	}
	for k := range lister.Keys() {
		if strings.HasPrefix(k, "etag.") {
			if err := e.state.Delete(ctx, k); err != nil {
				e.t.Fatal(err)
			}
		}
	}
}

// TestDocumentedExamplesFullPull runs GitHub's documented REST examples —
// every alert of the listings and single-alert examples, served as GitHub
// wrote them (many without updated_at) — through full pulls of an
// organisation (organisation listings) and a user (repository listings):
// every alert is stored with its status and dated by its own timestamps;
// a second pull a day later that reads every page again publishes
// nothing; an alert a later complete pull no longer lists becomes REMOVED.
func TestDocumentedExamplesFullPull(t *testing.T) {
	e := newEnv(t, ghtest.Options{}, true)
	var clock atomic.Int64
	clock.Store(time.Date(2026, 11, 21, 2, 0, 0, 0, time.UTC).Unix())
	e.rec = e.reconciler(e.app, Config{Now: func() time.Time { return time.Unix(clock.Load(), 0).UTC() }})

	org := e.gh.AddInstallation("octo-org", "Organization")
	orgRepo := e.gh.AddRepository(org.ID, "hello-world", true)
	user := e.gh.AddInstallation("octocat", "User")
	userRepo := e.gh.AddRepository(user.ID, "Hello-World", false)
	repos := []ghtest.Repository{orgRepo, userRepo}
	for _, r := range repos {
		for _, k := range ghtest.Kinds() {
			e.gh.AddExampleAlerts(r.ID, k)
		}
	}

	rep := e.mustRun(ModeFull)
	want := e.expect(repos)
	if rep.Drift.New != len(want) || len(rep.Failures) != 0 {
		t.Fatalf("first pull: drift %+v, failures %v; want %d new", rep.Drift, rep.Failures, len(want))
	}
	e.check(want)
	first := e.stored()
	pulledAt := time.Unix(clock.Load(), 0).UTC()
	for k, d := range first {
		f := d.Finding()
		at, err := time.Parse(time.RFC3339, deref(f.LastFoundOn))
		if err != nil || !at.Before(pulledAt.Add(-24*time.Hour)) {
			t.Errorf("%s: lastFoundOn %q is not one of the alert's own timestamps (pulled at %s)", k, deref(f.LastFoundOn), pulledAt)
		}
	}

	// A day later, every page read again: GitHub's data is unchanged, so
	// no document is.
	clock.Add(24 * 60 * 60)
	e.forgetPages()
	rep = e.mustRun(ModeFull)
	if rep.Pages == 0 || rep.PagesNotModified != 0 {
		t.Fatalf("second pull: %d of %d pages not modified, want every page read", rep.PagesNotModified, rep.Pages)
	}
	if rep.Published != 0 || rep.Drift != (Drift{}) {
		t.Errorf("unchanged second pull published %d (drift %+v)", rep.Published, rep.Drift)
	}
	for k, d := range e.stored() {
		if was := first[k]; d.ContentHash() != was.ContentHash() {
			t.Errorf("%s changed without a change at GitHub:\n%+v\n%+v", k, d.Findings, was.Findings)
		}
	}

	// One alert of each kind and each repository is gone.
	var removed []string
	for _, r := range repos {
		for _, k := range ghtest.Kinds() {
			a := e.gh.Alerts(r.ID, k)[0]
			e.gh.DeleteAlert(r.ID, k, a.Number)
			removed = append(removed, finding.Key(datasetOfKind(k), r.ID, a.Number))
		}
	}
	clock.Add(24 * 60 * 60)
	rep = e.mustRun(ModeFull)
	if rep.Drift.Removed != len(removed) || rep.Drift.New != 0 || rep.Drift.Changed != 0 {
		t.Errorf("third pull: drift %+v, want %d removed", rep.Drift, len(removed))
	}
	e.check(e.expect(repos, removed...))
	stored := e.stored()
	for _, k := range removed {
		if d := stored[k]; d.Finding().RemovedReason != finding.RemovedAbsent {
			t.Errorf("%s: removedReason %q, want %q", k, d.Finding().RemovedReason, finding.RemovedAbsent)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
