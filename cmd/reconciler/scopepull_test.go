package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/config/configtest"
	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/logging/loggingtest"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/processor"
	"github.com/ghas-relay/ghas-relay/internal/reconcile"
	"github.com/ghas-relay/ghas-relay/internal/scope"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
	"github.com/ghas-relay/ghas-relay/internal/transform/transformtest"
)

// pullWorld is a JetStream and a fake GitHub that full pulls run against.
type pullWorld struct {
	t     *testing.T
	ctx   context.Context
	ns    *streamtest.Server
	js    jetstream.JetStream
	gh    *ghtest.Server
	state jetstream.KeyValue
	kv    jetstream.KeyValue
}

func newPullWorld(t *testing.T, ctx context.Context) *pullWorld {
	ns := streamtest.Run(t)
	_, js := ns.Connect()
	findings, _ := js.KeyValue(ctx, stream.FindingsBucket)
	state, _ := js.KeyValue(ctx, stream.StateBucket)
	return &pullWorld{t: t, ctx: ctx, ns: ns, js: js, gh: ghtest.New(t, ghtest.Options{PrivateKey: appKey(t)}), state: state, kv: findings}
}

// pull runs an in-process processor and `reconciler -once` (full) with
// the same settings; it returns run's error, the stored documents and the
// run's report.
func (w *pullWorld) pull(settings map[string]string) (error, map[string]finding.Document, *reconcile.Report) {
	t := w.t
	t.Helper()
	st := scope.Settings{IncludeRepos: settings["INCLUDE_REPOS"], ExcludeRepos: settings["EXCLUDE_REPOS"], IncludeTypes: settings["INCLUDE_TYPES"],
		ExcludeArchived: settings["EXCLUDE_ARCHIVED"], ExcludeForks: settings["EXCLUDE_FORKS"], OwnerProperty: "owner", BusinessEntityProperty: "business_unit"}
	flt, err := st.Filter()
	if err != nil {
		t.Fatal(err)
	}
	proc := processor.New(slog.New(slog.NewTextHandler(io.Discard, nil)), w.js, w.js, w.kv, transformtest.Defaults(), nil,
		processor.NewMetrics(metrics.NewRegistry()), processor.Config{RetryDelay: 20 * time.Millisecond, Scope: flt})
	pctx, pcancel := context.WithCancel(w.ctx)
	pdone := make(chan struct{})
	go func() { defer close(pdone); _ = proc.Run(pctx) }()
	defer func() { pcancel(); <-pdone }()
	e := map[string]string{
		"NATS_URL": w.ns.URL(), "ADMIN_ADDR": "127.0.0.1:0", "GITHUB_APP_ID": "1",
		"GITHUB_APP_PRIVATE_KEY": string(w.gh.PrivateKeyPEM()), "GITHUB_API_URL": w.gh.URL(), "RECONCILE_MODE": "full",
	}
	for k, v := range settings {
		e[k] = v
	}
	var stderr loggingtest.Buffer
	runErr := run(w.ctx, []string{"reconciler", "-once"}, configtest.Getenv(e), io.Discard, &stderr)
	deadline := time.Now().Add(30 * time.Second)
	for ok := false; !ok; ok, _ = stream.Drained(w.ctx, w.js, processor.ConsumerName) {
		if time.Now().After(deadline) {
			t.Fatal("processor did not drain")
		}
		time.Sleep(20 * time.Millisecond)
	}
	docs := map[string]finding.Document{}
	if keys, err := w.kv.ListKeys(w.ctx); err == nil {
		for k := range keys.Keys() {
			e, err := w.kv.Get(w.ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			d, _ := finding.Decode(e.Value())
			docs[k] = d
		}
	}
	rep, err := reconcile.LatestReport(w.ctx, w.state, reconcile.ModeFull)
	if err != nil {
		t.Fatal(err)
	}
	return runErr, docs, rep
}

// TestArchivedRepositoryDependabot: GitHub refuses the Dependabot alerts
// of an archived repository (403). A full pull, by organisation or by
// repository, records it like a feature that is off — no failure, -once
// succeeds — and keeps the repository's stored Dependabot findings, unless
// EXCLUDE_ARCHIVED is true: then they are REMOVED (out-of-scope).
func TestArchivedRepositoryDependabot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	w := newPullWorld(t, ctx)
	in := w.gh.AddInstallation("octo-org", "Organization")
	live := w.gh.AddRepository(in.ID, "live", true)
	old := w.gh.AddRepository(in.ID, "old", true)
	for _, r := range []ghtest.Repository{live, old} {
		w.gh.AddAlerts(r.ID, ghtest.Dependabot, 2)
		w.gh.AddAlerts(r.ID, ghtest.CodeScanning, 1)
	}
	if err, _, rep := w.pull(nil); err != nil || len(rep.Failures) != 0 {
		t.Fatalf("first pull: %v %+v", err, rep.Failures)
	}
	w.gh.SetRepositoryFacts(old.ID, ghtest.RepositoryFacts{Archived: true})
	oldSCA := []string{finding.Key(finding.SCA, old.ID, 1), finding.Key(finding.SCA, old.ID, 2)}
	for _, strategy := range []string{reconcile.StrategyAuto, reconcile.StrategyPerRepo} {
		err, docs, rep := w.pull(map[string]string{"RECONCILE_STRATEGY": strategy})
		if err != nil || len(rep.Failures) != 0 {
			t.Fatalf("%s: run %v, failures %+v; want success", strategy, err, rep.Failures)
		}
		for _, k := range oldSCA {
			if d, ok := docs[k]; !ok || d.Finding().FindingStatus != finding.StatusActive {
				t.Errorf("%s: %s of the archived repository: stored %v %+v, want kept ACTIVE", strategy, k, ok, d.Finding())
			}
		}
		if !slices.ContainsFunc(rep.FeaturesOff, func(s string) bool { return strings.Contains(s, "octo-org/old") && strings.Contains(s, "archived") }) {
			t.Errorf("%s: features off %q, want the archived repository's Dependabot alerts", strategy, rep.FeaturesOff)
		}
	}
	if w.gh.Stats().ByEndpoint["GET /repos/{owner}/{repo}/dependabot/alerts"] == 0 {
		t.Error("the archived repository's Dependabot alerts were never asked for")
	}

	err, docs, rep := w.pull(map[string]string{"EXCLUDE_ARCHIVED": "true"})
	if err != nil || len(rep.Failures) != 0 {
		t.Fatalf("EXCLUDE_ARCHIVED: run %v, failures %+v", err, rep.Failures)
	}
	for _, k := range append(oldSCA, finding.Key(finding.SAST, old.ID, 1)) {
		d := docs[k]
		if f := d.Finding(); f == nil || f.FindingStatus != finding.StatusRemoved || f.RemovedReason != finding.RemovedOutOfScope {
			t.Errorf("EXCLUDE_ARCHIVED: %s is %+v, want REMOVED out-of-scope", k, f)
		}
	}
	d := docs[finding.Key(finding.SCA, live.ID, 1)]
	if f := d.Finding(); f == nil || f.FindingStatus != finding.StatusActive {
		t.Errorf("EXCLUDE_ARCHIVED: the live repository's finding is %+v", f)
	}
}

// TestFewRepositoriesInScopeListedOneByOne: when the filters leave a few
// repositories of a large organisation, the reconciler lists them one by
// one instead of paging through the whole organisation's alerts, and
// spends fewer requests; with every repository in scope it uses the
// organisation listing.
func TestFewRepositoriesInScopeListedOneByOne(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	w := newPullWorld(t, ctx)
	in := w.gh.AddInstallation("big-org", "Organization")
	const repos = 250
	for i := range repos {
		name := fmt.Sprintf("repo-%03d", i)
		if i < 2 {
			name = fmt.Sprintf("keep-%d", i)
		}
		r := w.gh.AddRepository(in.ID, name, true)
		for _, k := range ghtest.Kinds() {
			w.gh.AddAlerts(r.ID, k, 1)
		}
	}
	orgEndpoints := func(st ghtest.Stats) (org, repo int) {
		for ep, n := range st.ByEndpoint {
			switch {
			case strings.HasPrefix(ep, "GET /orgs/") && strings.HasSuffix(ep, "/alerts"):
				org += n
			case strings.HasPrefix(ep, "GET /repos/") && strings.HasSuffix(ep, "/alerts"):
				repo += n
			}
		}
		return org, repo
	}
	for run := 1; run <= 2; run++ {
		w.gh.ResetStats()
		err, docs, rep := w.pull(map[string]string{"INCLUDE_REPOS": "big-org/keep-*"})
		if err != nil || len(rep.Failures) != 0 {
			t.Fatalf("run %d: %v %+v", run, err, rep.Failures)
		}
		st := w.gh.Stats()
		org, repo := orgEndpoints(st)
		// Two repositories × three kinds, one page each; the
		// organisation listing would take ⌈250/100⌉ = 3 pages per kind.
		if org != 0 || repo != 2*3 {
			t.Errorf("run %d: %d organisation and %d repository listing requests, want 0 and 6", run, org, repo)
		}
		if len(docs) != 2*3 {
			t.Errorf("run %d: %d findings stored, want 6", run, len(docs))
		}
	}
	// Every repository in scope: the organisation listing.
	w.gh.ResetStats()
	if err, _, rep := w.pull(nil); err != nil || len(rep.Failures) != 0 {
		t.Fatalf("unfiltered: %v %+v", err, rep.Failures)
	}
	if org, repo := orgEndpoints(w.gh.Stats()); org != 3*3 || repo != 0 {
		t.Errorf("unfiltered: %d organisation and %d repository listing requests, want 9 and 0", org, repo)
	}
}
