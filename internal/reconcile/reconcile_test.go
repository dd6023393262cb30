package reconcile

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ghclient"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/processor"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
	"github.com/ghas-relay/ghas-relay/internal/transform"
	"github.com/ghas-relay/ghas-relay/internal/transform/transformtest"
)

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
)

// appKey is one App key for every test: generating RSA keys is slow.
func appKey(t testing.TB) *rsa.PrivateKey {
	keyOnce.Do(func() {
		var err error
		if testKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
	})
	return testKey
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// env is a fake GitHub, an in-process JetStream, a processor consuming
// GHAS_EVENTS and a reconciler.
type env struct {
	t        *testing.T
	gh       *ghtest.Server
	js       jetstream.JetStream
	findings jetstream.KeyValue
	state    jetstream.KeyValue
	app      *ghclient.App
	counter  *RequestCounter
	metrics  *Metrics
	rec      *Reconciler
	withProc bool
	// procMaps are the processor's maps (with a processor).
	procMaps *switchMaps
}

func newEnv(t *testing.T, opts ghtest.Options, withProcessor bool, tune ...func(*ghclient.Config)) *env {
	t.Helper()
	opts.PrivateKey = appKey(t)
	e := &env{t: t, gh: ghtest.New(t, opts)}
	_, e.js = streamtest.Run(t).Connect()
	ctx := context.Background()
	var err error
	if e.findings, err = e.js.KeyValue(ctx, stream.FindingsBucket); err != nil {
		t.Fatal(err)
	}
	if e.state, err = e.js.KeyValue(ctx, stream.StateBucket); err != nil {
		t.Fatal(err)
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(base.CloseIdleConnections)
	e.counter = NewRequestCounter(base)
	e.metrics = NewMetrics(metrics.NewRegistry())
	cfg := ghclient.Config{
		BaseURL: e.gh.URL(), AppID: e.gh.AppID(), PrivateKeyPEM: e.gh.PrivateKeyPEM(),
		Transport: e.counter, Requests: e.metrics.Requests,
		RetryInitial: 10 * time.Millisecond, MaxRetryElapsed: 10 * time.Second, SecondaryMinWait: 50 * time.Millisecond,
	}
	for _, f := range tune {
		f(&cfg)
	}
	e.app, err = ghclient.New(quiet(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.rec = e.reconciler(e.app, Config{})
	e.withProc = withProcessor
	e.procMaps = &switchMaps{}
	e.procMaps.set(transform.Defaults())
	if withProcessor {
		p := processor.New(quiet(), e.js, e.js, e.findings, e.procMaps, nil, processor.NewMetrics(metrics.NewRegistry()), processor.Config{RetryDelay: 20 * time.Millisecond})
		pctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := p.Run(pctx); err != nil {
				t.Errorf("processor: %v", err)
			}
		}()
		t.Cleanup(func() { cancel(); <-done })
	}
	return e
}

func (e *env) reconciler(gh GitHub, cfg Config) *Reconciler {
	return New(quiet(), gh, e.js, e.findings, e.state, transformtest.Defaults(), e.counter, e.metrics, cfg)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// run runs a mode and waits until the processor applied what it published.
func (e *env) run(mode string) (*Report, error) {
	e.t.Helper()
	rep, err := e.rec.Run(ctx(e.t), mode)
	if rep == nil {
		e.t.Fatalf("run %s: no report: %v", mode, err)
	}
	e.drain()
	return rep, err
}

func (e *env) mustRun(mode string) *Report {
	e.t.Helper()
	rep, err := e.run(mode)
	if err != nil {
		e.t.Fatalf("run %s: %v (report %+v)", mode, err, rep)
	}
	return rep
}

// drain waits until the processor acked every event.
func (e *env) drain() {
	e.t.Helper()
	if !e.withProc {
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if ok, _ := stream.Drained(context.Background(), e.js, processor.ConsumerName); ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatal("processor did not drain GHAS_EVENTS within 30s")
}

// stored returns every finding in ghas_findings by key.
func (e *env) stored() map[string]finding.Document {
	e.t.Helper()
	out := map[string]finding.Document{}
	lister, err := e.findings.ListKeys(context.Background())
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return out
	}
	if err != nil {
		e.t.Fatal(err)
	}
	for k := range lister.Keys() {
		en, err := e.findings.Get(context.Background(), k)
		if err != nil {
			e.t.Fatal(err)
		}
		d, err := finding.Decode(en.Value())
		if err != nil {
			e.t.Fatal(err)
		}
		out[k] = d
	}
	return out
}

func datasetOfKind(k ghtest.Kind) string { return transform.DatasetOf(eventOf(ghclient.Kind(k))) }

// expect is the state ghas_findings must reach: the fake's alerts of the
// given repositories with their status, plus removed keys.
func (e *env) expect(repos []ghtest.Repository, removed ...string) map[string]string {
	want := map[string]string{}
	for _, r := range repos {
		for _, k := range ghtest.Kinds() {
			for _, a := range e.gh.Alerts(r.ID, k) {
				want[finding.Key(datasetOfKind(k), r.ID, a.Number)] = a.FindingStatus()
			}
		}
	}
	for _, k := range removed {
		want[k] = finding.StatusRemoved
	}
	return want
}

// check compares ghas_findings with want, key by key.
func (e *env) check(want map[string]string) {
	e.t.Helper()
	got := e.stored()
	for k, st := range want {
		d, ok := got[k]
		switch {
		case !ok:
			e.t.Errorf("%s: not stored, want %s", k, st)
		case d.Finding() == nil || d.Finding().FindingStatus != st:
			e.t.Errorf("%s: status %v, want %s", k, d.Finding(), st)
		}
	}
	for k, d := range got {
		if _, ok := want[k]; !ok {
			e.t.Errorf("%s: stored (%s) but not expected", k, d.Finding().FindingStatus)
		}
	}
}

func TestFullPullDriftRepair(t *testing.T) {
	e := newEnv(t, ghtest.Options{}, true)
	org := e.gh.AddInstallation("octo-org", "Organization")
	var repos []ghtest.Repository
	for i := range 3 {
		r := e.gh.AddRepository(org.ID, fmt.Sprintf("repo-%d", i), true)
		e.gh.AddAlerts(r.ID, ghtest.CodeScanning, 40+i)
		e.gh.AddAlerts(r.ID, ghtest.Dependabot, 30)
		e.gh.AddAlerts(r.ID, ghtest.SecretScanning, 5)
		repos = append(repos, r)
	}
	// Secret scanning's organisation endpoint is refused: listed per repository.
	e.gh.RefuseOrgEndpoint(org.ID, ghtest.SecretScanning)
	user := e.gh.AddInstallation("octocat", "User")
	hello := e.gh.AddRepository(user.ID, "Hello-World", false)
	e.gh.AddAlerts(hello.ID, ghtest.Dependabot, 3)
	e.gh.AddAlerts(hello.ID, ghtest.SecretScanning, 2)
	e.gh.SetFeature(hello.ID, ghtest.CodeScanning, ghtest.FeatureOff)
	repos = append(repos, hello)

	rep := e.mustRun(ModeFull)
	total := len(e.expect(repos))
	if rep.Drift.New != total || rep.Drift.Changed != 0 || rep.Drift.Removed != 0 {
		t.Fatalf("first run drift %+v, want %d new", rep.Drift, total)
	}
	if rep.Installations != 2 || rep.Repositories != 4 || rep.AlertsSeen != total {
		t.Errorf("first run: %d installations, %d repositories, %d alerts seen; want 2, 4, %d", rep.Installations, rep.Repositories, rep.AlertsSeen, total)
	}
	if rep.ListingsFallback != 1 || len(rep.FeaturesOff) != 1 || len(rep.Failures) != 0 {
		t.Errorf("first run: fallback %d, features off %v, failures %v", rep.ListingsFallback, rep.FeaturesOff, rep.Failures)
	}
	e.check(e.expect(repos))

	// What webhooks missed while the relay was down.
	a, b, c := repos[0], repos[1], repos[2]
	later := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	created := e.gh.PutAlert(a.ID, ghtest.CodeScanning, ghtest.Alert{State: "open", UpdatedAt: later})
	fixed := e.gh.Alerts(a.ID, ghtest.Dependabot)[0]
	e.gh.UpdateAlert(a.ID, ghtest.Dependabot, fixed.Number, func(x *ghtest.Alert) { x.State, x.UpdatedAt = "fixed", later })
	dismissed := e.gh.Alerts(b.ID, ghtest.CodeScanning)[0]
	e.gh.UpdateAlert(b.ID, ghtest.CodeScanning, dismissed.Number, func(x *ghtest.Alert) { x.State, x.UpdatedAt = "dismissed", later })
	gone := e.gh.Alerts(b.ID, ghtest.SecretScanning)[0] // listed per repository
	e.gh.DeleteAlert(b.ID, ghtest.SecretScanning, gone.Number)
	goneOrg := e.gh.Alerts(a.ID, ghtest.CodeScanning)[1] // listed by the organisation
	e.gh.DeleteAlert(a.ID, ghtest.CodeScanning, goneOrg.Number)
	removedKeys := []string{
		finding.Key(finding.Secret, b.ID, gone.Number),
		finding.Key(finding.SAST, a.ID, goneOrg.Number),
	}
	for k := range e.expect([]ghtest.Repository{c}) {
		removedKeys = append(removedKeys, k)
	}
	e.gh.RemoveRepository(c.ID) // deleted, or taken out of the installation

	rep = e.mustRun(ModeFull)
	if want := (Drift{New: 1, Changed: 2, Removed: len(removedKeys)}); rep.Drift != want {
		t.Errorf("second run drift %+v, want %+v", rep.Drift, want)
	}
	e.check(e.expect([]ghtest.Repository{a, b, hello}, removedKeys...))
	if d := e.stored()[finding.Key(finding.SAST, a.ID, created.Number)]; d.Origin != stream.OriginReconcile {
		t.Errorf("missed alert origin %q, want reconcile", d.Origin)
	}

	// Unchanged: nothing published, answered by 304s.
	rep = e.mustRun(ModeFull)
	if rep.Published != 0 || rep.Drift != (Drift{}) {
		t.Errorf("unchanged run published %d, drift %+v", rep.Published, rep.Drift)
	}
	if rep.Pages == 0 || rep.PagesNotModified != rep.Pages {
		t.Errorf("unchanged run: %d of %d pages not modified, want all", rep.PagesNotModified, rep.Pages)
	}
	// Spent: the installations list, a token and the repository list per
	// installation, and the feature-off answer (never cached by GitHub).
	if rep.RateLimitSpent > 6 || rep.NotModified < rep.Pages {
		t.Errorf("unchanged run spent %d requests (%d requests, %d 304s)", rep.RateLimitSpent, rep.Requests, rep.NotModified)
	}
	e.check(e.expect([]ghtest.Repository{a, b, hello}, removedKeys...))

	stored, err := LatestReport(ctx(t), e.state, ModeFull)
	if err != nil || stored.Pages != rep.Pages || stored.Requests != rep.Requests {
		t.Errorf("stored report %+v, %v; want the last run's", stored, err)
	}
	if got := e.metrics.Drift.Value("removed"); got != uint64(len(removedKeys)) {
		t.Errorf("ghas_reconciler_drift_total{kind=removed} = %d, want %d", got, len(removedKeys))
	}
}

func TestOrgPullFailingHalfwayRemovesNothing(t *testing.T) {
	e := newEnv(t, ghtest.Options{}, true, func(c *ghclient.Config) { c.MaxRetryElapsed = 300 * time.Millisecond })
	org := e.gh.AddInstallation("big", "Organization")
	r := e.gh.AddRepository(org.ID, "repo", true)
	e.gh.AddAlerts(r.ID, ghtest.CodeScanning, 250)
	e.mustRun(ModeFull)

	// Alerts disappear, but the listing breaks on its second page.
	for _, a := range e.gh.Alerts(r.ID, ghtest.CodeScanning)[:5] {
		e.gh.DeleteAlert(r.ID, ghtest.CodeScanning, a.Number)
	}
	e.gh.Inject(ghtest.ServerError("/orgs/big/code-scanning/alerts", 1, 0))
	rep, err := e.run(ModeFull)
	if !errors.Is(err, ErrRunFailed) || len(rep.Failures) != 1 || rep.Failures[0].Scope != "org big code-scanning" {
		t.Fatalf("err %v, failures %+v; want org big code-scanning failed", err, rep.Failures)
	}
	if rep.Drift.Removed != 0 {
		t.Errorf("removed %d findings after a failed listing", rep.Drift.Removed)
	}
	for k, d := range e.stored() {
		if d.Finding().FindingStatus == finding.StatusRemoved {
			t.Errorf("%s marked REMOVED by an incomplete pull", k)
		}
	}
	// Once GitHub answers again, the complete pull removes them.
	e.gh.ClearFaults()
	rep = e.mustRun(ModeFull)
	if rep.Drift.Removed != 5 {
		t.Errorf("complete pull removed %d, want 5", rep.Drift.Removed)
	}
}

func TestDeltaPullStopsAtWatermark(t *testing.T) {
	e := newEnv(t, ghtest.Options{}, true)
	org := e.gh.AddInstallation("octo-org", "Organization")
	r := e.gh.AddRepository(org.ID, "repo", true)
	e.gh.AddAlerts(r.ID, ghtest.Dependabot, 250)
	e.mustRun(ModeFull) // sets the watermark

	later := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i, a := range e.gh.Alerts(r.ID, ghtest.Dependabot)[10:13] {
		e.gh.UpdateAlert(r.ID, ghtest.Dependabot, a.Number, func(x *ghtest.Alert) {
			x.State, x.UpdatedAt = "fixed", later.Add(time.Duration(i)*time.Minute)
		})
	}
	e.gh.ResetStats()
	rep := e.mustRun(ModeDelta)
	if rep.Drift.Changed != 3 || rep.Drift.New != 0 {
		t.Errorf("delta drift %+v, want 3 changed", rep.Drift)
	}
	if n := e.gh.Stats().ByEndpoint["GET /orgs/{org}/dependabot/alerts"]; n != 1 {
		t.Errorf("delta fetched %d dependabot pages, want 1 (stop at the watermark)", n)
	}
	e.check(e.expect([]ghtest.Repository{r}))

	// Nothing updated since: the first page is a 304 and costs nothing.
	rep = e.mustRun(ModeDelta)
	// (The empty kinds have no watermark and cost one request each.)
	if rep.Published != 0 || rep.PagesNotModified != 1 || rep.RateLimitSpent != 4 {
		t.Errorf("idle delta published %d, %d pages not modified, %d requests spent (want 0, 1, 4: installations, repositories, the empty kinds)", rep.Published, rep.PagesNotModified, rep.RateLimitSpent)
	}
	// A new update after that is found again.
	a := e.gh.Alerts(r.ID, ghtest.Dependabot)[100]
	e.gh.UpdateAlert(r.ID, ghtest.Dependabot, a.Number, func(x *ghtest.Alert) { x.State, x.UpdatedAt = "dismissed", later.Add(time.Hour) })
	rep = e.mustRun(ModeDelta)
	if rep.Drift.Changed != 1 {
		t.Errorf("delta after one update: drift %+v", rep.Drift)
	}
	e.check(e.expect([]ghtest.Repository{r}))
}

// revoking revokes every installation token after the first page it sees.
type revoking struct {
	GitHub
	gh   *ghtest.Server
	once sync.Once
}

func (r *revoking) ListAlerts(ctx context.Context, id int64, req ghclient.ListRequest, visit func(ghclient.Page) (bool, error)) error {
	return r.GitHub.ListAlerts(ctx, id, req, func(p ghclient.Page) (bool, error) {
		r.once.Do(r.gh.RevokeTokens)
		return visit(p)
	})
}

func TestTokenRevokedMidRunIsRefreshed(t *testing.T) {
	e := newEnv(t, ghtest.Options{}, true)
	org := e.gh.AddInstallation("octo-org", "Organization")
	r := e.gh.AddRepository(org.ID, "repo", true)
	e.gh.AddAlerts(r.ID, ghtest.CodeScanning, 250)
	e.rec = e.reconciler(&revoking{GitHub: e.app, gh: e.gh}, Config{Listings: 1})
	rep := e.mustRun(ModeFull)
	if len(rep.Failures) != 0 || rep.Drift.New != 250 {
		t.Fatalf("failures %v, drift %+v", rep.Failures, rep.Drift)
	}
	if n := e.gh.Stats().TokensIssued; n < 2 {
		t.Errorf("tokens issued %d, want a refresh", n)
	}
	e.check(e.expect([]ghtest.Repository{r}))
}

func TestRateLimitExhaustedWaitsForReset(t *testing.T) {
	e := newEnv(t, ghtest.Options{}, true)
	org := e.gh.AddInstallation("octo-org", "Organization")
	r := e.gh.AddRepository(org.ID, "repo", true)
	e.gh.AddAlerts(r.ID, ghtest.SecretScanning, 450)
	e.gh.SetRateLimit(org.ID, 3, 1500*time.Millisecond)
	start := time.Now()
	rep := e.mustRun(ModeFull)
	if el := time.Since(start); el < time.Second {
		t.Errorf("run took %v; it cannot have waited for the reset", el)
	}
	if len(rep.Failures) != 0 || rep.Drift.New != 450 {
		t.Errorf("failures %v, drift %+v", rep.Failures, rep.Drift)
	}
	e.check(e.expect([]ghtest.Repository{r}))
}

func TestSecondaryLimitHonoursRetryAfter(t *testing.T) {
	e := newEnv(t, ghtest.Options{}, true)
	org := e.gh.AddInstallation("octo-org", "Organization")
	r := e.gh.AddRepository(org.ID, "repo", true)
	e.gh.AddAlerts(r.ID, ghtest.Dependabot, 150)
	e.gh.Inject(ghtest.SecondaryLimit("/orgs/octo-org/dependabot/alerts", time.Second, 1))
	start := time.Now()
	rep := e.mustRun(ModeFull)
	if el := time.Since(start); el < time.Second {
		t.Errorf("run took %v, less than Retry-After", el)
	}
	if len(rep.Failures) != 0 || rep.Drift.New != 150 || e.gh.Stats().Faults != 1 {
		t.Errorf("failures %v, drift %+v, faults %d", rep.Failures, rep.Drift, e.gh.Stats().Faults)
	}
	e.check(e.expect([]ghtest.Repository{r}))
}

func TestPerRepoStrategyMatchesOrgStrategy(t *testing.T) {
	e := newEnv(t, ghtest.Options{}, true)
	org := e.gh.AddInstallation("octo-org", "Organization")
	var repos []ghtest.Repository
	for i := range 5 {
		r := e.gh.AddRepository(org.ID, fmt.Sprintf("r%d", i), true)
		e.gh.AddAlerts(r.ID, ghtest.CodeScanning, 3)
		e.gh.AddAlerts(r.ID, ghtest.Dependabot, 2)
		repos = append(repos, r)
	}
	e.rec = e.reconciler(e.app, Config{Strategy: StrategyPerRepo})
	e.gh.ResetStats()
	rep := e.mustRun(ModeFull)
	if rep.ListingsComplete != 15 || e.gh.Stats().ByEndpoint["GET /repos/{owner}/{repo}/code-scanning/alerts"] != 5 {
		t.Errorf("per-repo: %d listings, stats %v", rep.ListingsComplete, e.gh.Stats().ByEndpoint)
	}
	e.check(e.expect(repos))
}

func TestEnvelope(t *testing.T) {
	got := string(envelope(transform.ActionReconcileRemoved, []byte(`{"number":4}`), []byte(`{"id":1}`), 7))
	want := `{"action":"reconcile_removed","alert":{"number":4},"repository":{"id":1},"installation":{"id":7}}`
	if got != want {
		t.Errorf("envelope = %s, want %s", got, want)
	}
	if got := string(envelope("reconcile", []byte(`{}`), []byte(`{}`), 0)); got != `{"action":"reconcile","alert":{},"repository":{}}` {
		t.Errorf("envelope without installation = %s", got)
	}
}

// redeliveries returns the messages on ghas.redelivery.>.
func (e *env) redeliveries() []jetstream.Msg {
	e.t.Helper()
	c, err := e.js.OrderedConsumer(context.Background(), stream.EventsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{stream.RedeliveryPrefix + ">"}})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []jetstream.Msg
	for {
		batch, err := c.FetchNoWait(100)
		if err != nil {
			e.t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			out = append(out, m)
			n++
		}
		if n == 0 {
			return out
		}
	}
}

// FuzzEnvelope: for any JSON alert and repository, the envelope is one
// JSON object carrying them unchanged, and the transform reads its facts.
func FuzzEnvelope(f *testing.F) {
	f.Add([]byte(`{"number":42,"state":"open"}`), []byte(`{"id":1296269,"name":"r","owner":{"login":"o"}}`), int64(7))
	f.Add([]byte(`{"number":1}`), []byte(`{"id":1}`), int64(0))
	f.Add([]byte(`{"number":"x"}`), []byte(`[]`), int64(-1))
	f.Fuzz(func(t *testing.T, alert, repo []byte, inst int64) {
		if !json.Valid(alert) || !json.Valid(repo) {
			return
		}
		body := envelope(transform.ActionReconcile, alert, repo, inst)
		var got struct {
			Action       string          `json:"action"`
			Alert        json.RawMessage `json:"alert"`
			Repository   json.RawMessage `json:"repository"`
			Installation *struct {
				ID int64 `json:"id"`
			} `json:"installation"`
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("envelope is not JSON: %v: %s", err, body)
		}
		if got.Action != transform.ActionReconcile || !bytes.Equal(bytes.TrimSpace(got.Alert), bytes.TrimSpace(alert)) || !bytes.Equal(bytes.TrimSpace(got.Repository), bytes.TrimSpace(repo)) {
			t.Fatalf("envelope %s lost its parts", body)
		}
		if (inst != 0) != (got.Installation != nil) || (got.Installation != nil && got.Installation.ID != inst) {
			t.Fatalf("envelope %s: installation %v, want %d", body, got.Installation, inst)
		}
	})
}

const getCodeScanningAlert = "GET /repos/{owner}/{repo}/code-scanning/alerts/{id}"

// A finding a complete listing no longer holds is marked REMOVED only
// after GitHub answered 404 to a GET of that alert. Alerts the listings
// skip but GitHub still has (hidden from the listings by the fake) stay,
// and are compared like listed alerts: one that changed meanwhile is
// published as changed.
func TestRemovalConfirmedByGet(t *testing.T) {
	e := newEnv(t, ghtest.Options{}, true)
	org := e.gh.AddInstallation("octo-org", "Organization")
	r := e.gh.AddRepository(org.ID, "repo", true)
	e.gh.AddAlerts(r.ID, ghtest.CodeScanning, 150) // organisation listing, 2 pages
	e.gh.AddAlerts(r.ID, ghtest.SecretScanning, 5) // repository listing
	e.gh.RefuseOrgEndpoint(org.ID, ghtest.SecretScanning)
	e.mustRun(ModeFull)

	cs := e.gh.Alerts(r.ID, ghtest.CodeScanning)
	skipped, changed, deleted := cs[10], cs[120], cs[60]
	secret := e.gh.Alerts(r.ID, ghtest.SecretScanning)[1]
	e.gh.HideFromListings(r.ID, ghtest.CodeScanning, skipped.Number, true)
	e.gh.HideFromListings(r.ID, ghtest.CodeScanning, changed.Number, true)
	e.gh.UpdateAlert(r.ID, ghtest.CodeScanning, changed.Number, func(a *ghtest.Alert) {
		a.State, a.UpdatedAt = "dismissed", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	})
	e.gh.HideFromListings(r.ID, ghtest.SecretScanning, secret.Number, true)
	e.gh.DeleteAlert(r.ID, ghtest.CodeScanning, deleted.Number)
	e.gh.ResetStats()

	rep := e.mustRun(ModeFull)
	if want := (Drift{Changed: 1, Removed: 1}); rep.Drift != want {
		t.Errorf("drift %+v, want %+v", rep.Drift, want)
	}
	if rep.RemovalsConfirmed != 1 || rep.RemovalsRefuted != 3 {
		t.Errorf("removals confirmed %d, refuted %d; want 1, 3", rep.RemovalsConfirmed, rep.RemovalsRefuted)
	}
	st := e.gh.Stats().ByEndpoint
	if st[getCodeScanningAlert] != 3 || st["GET /repos/{owner}/{repo}/secret-scanning/alerts/{id}"] != 1 {
		t.Errorf("single-alert GETs %v; want 3 code scanning, 1 secret scanning", st)
	}
	removed := finding.Key(finding.SAST, r.ID, deleted.Number)
	e.check(e.expect([]ghtest.Repository{r}, removed)) // the skipped ones keep their status; the changed one is DISMISSED

	// Next run: the REMOVED finding costs no request; the alerts still
	// hidden are checked again and are unchanged.
	e.gh.ResetStats()
	rep = e.mustRun(ModeFull)
	if rep.Drift != (Drift{}) || rep.Published != 0 || rep.RemovalsRefuted != 3 || rep.RemovalsConfirmed != 0 {
		t.Errorf("rerun: drift %+v, published %d, refuted %d, confirmed %d", rep.Drift, rep.Published, rep.RemovalsRefuted, rep.RemovalsConfirmed)
	}
	if n := e.gh.Stats().ByEndpoint[getCodeScanningAlert]; n != 2 {
		t.Errorf("rerun: %d code scanning GETs, want 2 (the hidden alerts, not the REMOVED one)", n)
	}
	e.check(e.expect([]ghtest.Repository{r}, removed))
}

// shifting deletes an alert of the first page of a listing right after
// the page was read, as a user dismissing alerts during a long pull: the
// next page then starts one alert later, and the listing skips one.
type shifting struct {
	GitHub
	gh     *ghtest.Server
	repo   int64
	number int64
	once   sync.Once
}

func (s *shifting) ListAlerts(ctx context.Context, id int64, req ghclient.ListRequest, visit func(ghclient.Page) (bool, error)) error {
	return s.GitHub.ListAlerts(ctx, id, req, func(p ghclient.Page) (bool, error) {
		more, err := visit(p)
		if req.Kind == ghclient.CodeScanning && p.Number == 1 {
			s.once.Do(func() { s.gh.DeleteAlert(s.repo, ghtest.CodeScanning, s.number) })
		}
		return more, err
	})
}

// The scenario of the confirmation: pages shift under a deletion. The
// alert pushed from page 2 onto page 1 is never listed, yet not REMOVED;
// the deleted one is removed by the next pull.
func TestShiftedPagesRemoveNothingThatExists(t *testing.T) {
	e := newEnv(t, ghtest.Options{}, true)
	org := e.gh.AddInstallation("octo-org", "Organization")
	r := e.gh.AddRepository(org.ID, "repo", true)
	e.gh.AddAlerts(r.ID, ghtest.CodeScanning, 250) // newest first: #250..#151 on page 1
	e.mustRun(ModeFull)

	e.rec = e.reconciler(&shifting{GitHub: e.app, gh: e.gh, repo: r.ID, number: 200}, Config{})
	rep := e.mustRun(ModeFull)
	if rep.AlertsSeen != 249 {
		t.Fatalf("the listing saw %d alerts; the test wants one skipped (249)", rep.AlertsSeen)
	}
	if rep.Drift.Removed != 0 || rep.RemovalsRefuted != 1 {
		t.Errorf("drift %+v, refuted %d; want nothing removed, 1 refuted", rep.Drift, rep.RemovalsRefuted)
	}
	for k, d := range e.stored() {
		if d.Finding().FindingStatus == finding.StatusRemoved {
			t.Errorf("%s marked REMOVED, but GitHub still has it", k)
		}
	}
	rep = e.mustRun(ModeFull)
	if rep.Drift.Removed != 1 || rep.RemovalsConfirmed != 1 {
		t.Errorf("next pull: drift %+v, confirmed %d; want the deleted alert removed", rep.Drift, rep.RemovalsConfirmed)
	}
	e.check(e.expect([]ghtest.Repository{r}, finding.Key(finding.SAST, r.ID, 200)))
}

// A removal GitHub could not confirm (an error other than 404) is left
// undone and fails the scope — not its organisation listing (no fallback
// to per-repository listings) — while the confirmed removals of the scope
// go on. A feature turned off is recorded, not a failure, and removes
// nothing, checked once per repository.
func TestUnconfirmedRemovalFailsTheScope(t *testing.T) {
	e := newEnv(t, ghtest.Options{}, true)
	org := e.gh.AddInstallation("octo-org", "Organization")
	r := e.gh.AddRepository(org.ID, "repo", true)
	off := e.gh.AddRepository(org.ID, "off", true)
	e.gh.AddAlerts(r.ID, ghtest.CodeScanning, 20)
	e.gh.AddAlerts(off.ID, ghtest.CodeScanning, 10)
	e.mustRun(ModeFull)

	hidden, deleted := e.gh.Alerts(r.ID, ghtest.CodeScanning)[3], e.gh.Alerts(r.ID, ghtest.CodeScanning)[4]
	e.gh.HideFromListings(r.ID, ghtest.CodeScanning, hidden.Number, true)
	e.gh.DeleteAlert(r.ID, ghtest.CodeScanning, deleted.Number)
	e.gh.SetFeature(off.ID, ghtest.CodeScanning, ghtest.FeatureOff) // the organisation listing leaves it out
	e.gh.Inject(ghtest.Fault{Path: fmt.Sprintf("/repos/octo-org/repo/code-scanning/alerts/%d", hidden.Number), Status: http.StatusForbidden, Message: "Resource not accessible by integration"})
	e.gh.ResetStats()
	rep, err := e.run(ModeFull)
	if !errors.Is(err, ErrRunFailed) || len(rep.Failures) != 1 || rep.Failures[0].Scope != "org octo-org code-scanning" || !strings.Contains(rep.Failures[0].Error, "removal not confirmed") {
		t.Fatalf("err %v, failures %+v; want the org scope failed for an unconfirmed removal", err, rep.Failures)
	}
	if rep.ListingsFallback != 0 || e.gh.Stats().ByEndpoint["GET /repos/{owner}/{repo}/code-scanning/alerts"] != 0 {
		t.Errorf("fell back to per-repository listings: %d fallbacks, stats %v", rep.ListingsFallback, e.gh.Stats().ByEndpoint)
	}
	if rep.Drift.Removed != 1 || rep.RemovalsConfirmed != 1 {
		t.Errorf("drift %+v, confirmed %d; want the deleted alert removed all the same", rep.Drift, rep.RemovalsConfirmed)
	}
	if len(rep.FeaturesOff) != 1 || !strings.Contains(rep.FeaturesOff[0], "repo octo-org/off code-scanning") {
		t.Errorf("features off %v; want the repository with code scanning off, once", rep.FeaturesOff)
	}
	// One check for the hidden alert, one for the repository whose feature is off.
	if n := e.gh.Stats().ByEndpoint[getCodeScanningAlert]; n != 3 {
		t.Errorf("%d single-alert GETs, want 3 (hidden, deleted, one of the feature-off repository)", n)
	}
	want := e.expect([]ghtest.Repository{r}, finding.Key(finding.SAST, r.ID, deleted.Number))
	for _, a := range e.gh.Alerts(off.ID, ghtest.CodeScanning) {
		want[finding.Key(finding.SAST, off.ID, a.Number)] = a.FindingStatus() // kept, not REMOVED
	}
	e.check(want)

	// Once GitHub answers, the alert is found to exist: no failure.
	e.gh.ClearFaults()
	rep = e.mustRun(ModeFull)
	if rep.RemovalsRefuted != 1 || rep.Drift.Removed != 0 {
		t.Errorf("after the fault: refuted %d, drift %+v", rep.RemovalsRefuted, rep.Drift)
	}
	e.check(want)
}
