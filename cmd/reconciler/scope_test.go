package main

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

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

// Filters and ownership through the real reconciler: a full pull with
// filters stores only what is in scope, with owner and tags; widening the
// filters brings the rest in at the next full pull; without the custom
// properties permission the run goes on and the report says so.
func TestRunFullPullWithScope(t *testing.T) {
	ns := streamtest.Run(t)
	_, js := ns.Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	findings, _ := js.KeyValue(ctx, stream.FindingsBucket)
	state, _ := js.KeyValue(ctx, stream.StateBucket)

	gh := ghtest.New(t, ghtest.Options{PrivateKey: appKey(t)})
	in := gh.AddInstallation("octo-org", "Organization")
	api := gh.AddRepository(in.ID, "api", true)
	legacy := gh.AddRepository(in.ID, "legacy-web", true)
	old := gh.AddRepository(in.ID, "old", true)
	fork := gh.AddRepository(in.ID, "fork", false)
	gh.SetRepositoryFacts(api.ID, ghtest.RepositoryFacts{Topics: []string{"payments"}, Properties: map[string]any{"owner": "team-a", "business_unit": "Payments", "regions": []string{"eu", "us"}, "tier": nil}})
	gh.SetRepositoryFacts(legacy.ID, ghtest.RepositoryFacts{Properties: map[string]any{"owner": "team-b"}})
	gh.SetRepositoryFacts(old.ID, ghtest.RepositoryFacts{Archived: true})
	gh.SetRepositoryFacts(fork.ID, ghtest.RepositoryFacts{Fork: true})
	for _, r := range []ghtest.Repository{api, legacy, old, fork} {
		for _, k := range ghtest.Kinds() {
			gh.AddAlerts(r.ID, k, 2)
		}
	}

	filters := map[string]string{
		"EXCLUDE_REPOS": "octo-org/legacy-*", "EXCLUDE_ARCHIVED": "true", "EXCLUDE_FORKS": "true", "INCLUDE_TYPES": "sast,sca",
	}
	// runPass runs an in-process processor and `reconciler -once` (full)
	// with the same settings, and returns the stored findings' keys.
	runPass := func(settings map[string]string) (map[string]finding.Document, *reconcile.Report) {
		t.Helper()
		st := scope.Settings{IncludeRepos: settings["INCLUDE_REPOS"], ExcludeRepos: settings["EXCLUDE_REPOS"], IncludeTypes: settings["INCLUDE_TYPES"],
			ExcludeArchived: settings["EXCLUDE_ARCHIVED"], ExcludeForks: settings["EXCLUDE_FORKS"], OwnerProperty: "owner", BusinessEntityProperty: "business_unit"}
		flt, err := st.Filter()
		if err != nil {
			t.Fatal(err)
		}
		proc := processor.New(slog.New(slog.NewTextHandler(io.Discard, nil)), js, js, findings, transformtest.Defaults(), nil,
			processor.NewMetrics(metrics.NewRegistry()), processor.Config{RetryDelay: 20 * time.Millisecond, Scope: flt})
		pctx, pcancel := context.WithCancel(ctx)
		pdone := make(chan struct{})
		go func() { defer close(pdone); _ = proc.Run(pctx) }()
		defer func() { pcancel(); <-pdone }()
		e := map[string]string{
			"NATS_URL": ns.URL(), "ADMIN_ADDR": "127.0.0.1:0", "GITHUB_APP_ID": "1",
			"GITHUB_APP_PRIVATE_KEY": string(gh.PrivateKeyPEM()), "GITHUB_API_URL": gh.URL(), "RECONCILE_MODE": "full",
		}
		for k, v := range settings {
			e[k] = v
		}
		var stderr loggingtest.Buffer
		if err := run(ctx, []string{"reconciler", "-once"}, configtest.Getenv(e), io.Discard, &stderr); err != nil {
			t.Fatalf("run: %v\n%s", err, stderr.String())
		}
		deadline := time.Now().Add(30 * time.Second)
		for ok := false; !ok; ok, _ = stream.Drained(ctx, js, processor.ConsumerName) {
			if time.Now().After(deadline) {
				t.Fatal("processor did not drain")
			}
			time.Sleep(20 * time.Millisecond)
		}
		docs := map[string]finding.Document{}
		if keys, err := findings.ListKeys(ctx); err == nil {
			for k := range keys.Keys() {
				e, err := findings.Get(ctx, k)
				if err != nil {
					t.Fatal(err)
				}
				d, _ := finding.Decode(e.Value())
				docs[k] = d
			}
		}
		rep, err := reconcile.LatestReport(ctx, state, reconcile.ModeFull)
		if err != nil {
			t.Fatal(err)
		}
		return docs, rep
	}

	docs, rep := runPass(filters)
	active := func(docs map[string]finding.Document) []string {
		var out []string
		for k, d := range docs {
			if d.Finding().FindingStatus != finding.StatusRemoved {
				out = append(out, k)
			}
		}
		slices.Sort(out)
		return out
	}
	var want []string
	for _, ds := range []string{finding.SAST, finding.SCA} {
		for n := int64(1); n <= 2; n++ {
			want = append(want, finding.Key(ds, api.ID, n))
		}
	}
	slices.Sort(want)
	if got := active(docs); !slices.Equal(got, want) || len(docs) != len(want) {
		t.Fatalf("with filters: stored %d, active %q; want only %q", len(docs), got, want)
	}
	d := docs[want[0]]
	if d.AssetDetail.Ownership == nil || d.AssetDetail.Ownership.Owner != "team-a" || d.AssetDetail.Ownership.BusinessEntity != "Payments" {
		t.Errorf("ownership %+v", d.AssetDetail.Ownership)
	}
	wantTags := []string{"business_unit:Payments", "owner:team-a", "regions:eu", "regions:us", "topic:payments"}
	if !slices.Equal(d.AssetDetail.Tags, wantTags) {
		t.Errorf("tags %q, want %q", d.AssetDetail.Tags, wantTags)
	}
	if len(rep.Failures) != 0 {
		t.Errorf("failures %+v", rep.Failures)
	}
	// No listing of secret scanning, no per-repository listing at all
	// (the organisation endpoints serve sast and sca).
	stats := gh.Stats()
	for ep, n := range stats.ByEndpoint {
		if strings.Contains(ep, "secret-scanning") || strings.HasPrefix(ep, "GET /repos/") && strings.HasSuffix(ep, "/alerts") {
			t.Errorf("requested %s %d times, out of scope", ep, n)
		}
	}

	// Widening the filters brings the rest in at the next full pull.
	gh.RefusePropertyValues(in.ID, true)
	docs, rep = runPass(map[string]string{})
	// GitHub gives no Dependabot alerts of an archived repository (old).
	if got := len(active(docs)); got != 4*3*2-2 {
		t.Errorf("after widening: %d active findings, want %d", got, 4*3*2-2)
	}
	if len(rep.Failures) != 0 || !slices.ContainsFunc(rep.Skipped, func(s string) bool { return strings.Contains(s, "custom properties") }) {
		t.Errorf("without the permission: failures %+v, skipped %q; want no failure and the missing permission named", rep.Failures, rep.Skipped)
	}
}
