package ghclient_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/ghas-relay/ghas-relay/internal/ghclient"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
)

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
)

// fake starts a fake GitHub with a key shared by the tests (RSA key
// generation is the slowest part of a fake).
func fake(t *testing.T, opts ghtest.Options) *ghtest.Server {
	t.Helper()
	keyOnce.Do(func() {
		var err error
		if testKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	opts.PrivateKey = testKey
	return ghtest.New(t, opts)
}

// client returns an App on srv with test-sized waits.
func client(t *testing.T, srv *ghtest.Server, mod func(*ghclient.Config)) *ghclient.App {
	t.Helper()
	cfg := ghclient.Config{
		BaseURL:          srv.URL(),
		AppID:            srv.AppID(),
		PrivateKeyPEM:    srv.PrivateKeyPEM(),
		RetryInitial:     10 * time.Millisecond,
		SecondaryMinWait: 50 * time.Millisecond,
		MaxRetryElapsed:  10 * time.Second,
		MaxRateLimitWait: 10 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	app, err := ghclient.New(slog.New(slog.NewTextHandler(io.Discard, nil)), cfg)
	if err != nil {
		t.Fatalf("new app: %v", err)
	}
	return app
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// collect lists every alert of r and returns the items and pages.
func collect(t *testing.T, app *ghclient.App, inst int64, r ghclient.ListRequest) ([]json.RawMessage, []ghclient.Page, error) {
	t.Helper()
	var items []json.RawMessage
	var pages []ghclient.Page
	err := app.ListAlerts(ctx(t), inst, r, func(p ghclient.Page) (bool, error) {
		items = append(items, p.Items...)
		p.Items = nil
		pages = append(pages, p)
		return true, nil
	})
	return items, pages, err
}

// alertKey is "<repository id>.<number>" of an org-list alert, or the number.
func alertKey(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var a struct {
		Number     int64 `json:"number"`
		Repository *struct {
			ID int64 `json:"id"`
		} `json:"repository"`
	}
	if err := json.Unmarshal(raw, &a); err != nil || a.Number == 0 {
		t.Fatalf("bad alert %s: %v", raw, err)
	}
	if a.Repository != nil {
		return fmt.Sprintf("%d.%d", a.Repository.ID, a.Number)
	}
	return fmt.Sprint(a.Number)
}

func TestInstallationsTokensRepositories(t *testing.T) {
	srv := fake(t, ghtest.Options{})
	org := srv.AddInstallation("octo-org", "Organization")
	user := srv.AddInstallation("octocat", "User")
	for i := range 3 {
		srv.AddRepository(org.ID, fmt.Sprintf("repo-%d", i), true)
	}
	srv.AddRepository(user.ID, "dotfiles", false)
	app := client(t, srv, nil)

	insts, err := app.Installations(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(insts) != 2 || insts[0].ID != org.ID || !insts[0].IsOrganization() || insts[0].Account != "octo-org" ||
		insts[1].ID != user.ID || insts[1].IsOrganization() || insts[1].AccountType != "User" {
		t.Fatalf("installations = %+v", insts)
	}
	repos, err := app.Repositories(ctx(t), org.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(repos) != 3 || repos[2].FullName != "octo-org/repo-2" || repos[0].Owner.Login != "octo-org" || !repos[0].Private {
		t.Fatalf("repos = %+v", repos)
	}
	var raw map[string]any
	if err := json.Unmarshal(repos[0].Raw, &raw); err != nil || raw["html_url"] != "https://github.com/octo-org/repo-0" || raw["ssh_url"] == nil {
		t.Fatalf("raw repository = %v (%v)", raw, err)
	}
	urepos, err := app.Repositories(ctx(t), user.ID)
	if err != nil || len(urepos) != 1 || urepos[0].FullName != "octocat/dotfiles" {
		t.Fatalf("user repos = %+v, %v", urepos, err)
	}
	// One token per installation, reused across calls.
	if _, err := app.Repositories(ctx(t), org.ID); err != nil {
		t.Fatal(err)
	}
	if st := srv.Stats(); st.TokensIssued != 2 {
		t.Fatalf("tokens issued = %d, want 2", st.TokensIssued)
	}
	if rl, ok := app.RateLimit(org.ID); !ok || rl.Limit != 5000 || rl.Remaining != 4998 {
		t.Fatalf("rate limit = %+v %v", rl, ok)
	}
}

func TestOrgListPaginationAcrossPages(t *testing.T) {
	srv := fake(t, ghtest.Options{})
	org := srv.AddInstallation("octo-org", "Organization")
	for i := range 3 {
		r := srv.AddRepository(org.ID, fmt.Sprintf("repo-%d", i), true)
		srv.AddAlerts(r.ID, ghtest.CodeScanning, 120)
	}
	reg := metrics.NewRegistry()
	counter := reg.NewCounterVec("ghas_reconciler_requests_total", "requests", "endpoint", "status")
	app := client(t, srv, func(c *ghclient.Config) { c.Requests = counter })

	items, pages, err := collect(t, app, org.ID, ghclient.ListRequest{Kind: ghclient.CodeScanning, Org: "octo-org"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, it := range items {
		seen[alertKey(t, it)] = true
	}
	if len(items) != 360 || len(seen) != 360 || len(pages) != 4 {
		t.Fatalf("items %d unique %d pages %d, want 360 360 4", len(items), len(seen), len(pages))
	}
	for i, p := range pages {
		u, _ := url.Parse(p.URL)
		if p.Number != i+1 || u.Query().Get("per_page") != "100" || (i > 0 && u.Query().Get("page") != fmt.Sprint(i+1)) {
			t.Fatalf("page %d: %+v", i, p)
		}
	}
	if got := counter.Value("/orgs/{org}/code-scanning/alerts", "200"); got != 4 {
		t.Fatalf("counted org requests = %d, want 4", got)
	}
	if got := counter.Value("/app/installations/{id}/access_tokens", "201"); got != 1 {
		t.Fatalf("counted token requests = %d, want 1", got)
	}
	// A filtered delta listing: only open alerts, most recently updated first.
	var first []json.RawMessage
	err = app.ListAlerts(ctx(t), org.ID, ghclient.ListRequest{Kind: ghclient.CodeScanning, Org: "octo-org", State: "open", Sort: "updated", Direction: "desc"},
		func(p ghclient.Page) (bool, error) { first = p.Items; return false, nil })
	if err != nil {
		t.Fatal(err)
	}
	var a0, a1 struct {
		State     string    `json:"state"`
		UpdatedAt time.Time `json:"updated_at"`
	}
	_ = json.Unmarshal(first[0], &a0)
	_ = json.Unmarshal(first[1], &a1)
	if len(first) != 100 || a0.State != "open" || a0.UpdatedAt.Before(a1.UpdatedAt) {
		t.Fatalf("delta page: %d items, first %+v second %+v", len(first), a0, a1)
	}
}

func TestDependabotCursorPagination(t *testing.T) {
	srv := fake(t, ghtest.Options{})
	user := srv.AddInstallation("octocat", "User")
	r := srv.AddRepository(user.ID, "app", false)
	srv.AddAlerts(r.ID, ghtest.Dependabot, 250)
	app := client(t, srv, nil)

	items, pages, err := collect(t, app, user.ID, ghclient.ListRequest{Kind: ghclient.Dependabot, Owner: "octocat", Repo: "app"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, it := range items {
		seen[alertKey(t, it)] = true
	}
	if len(items) != 250 || len(seen) != 250 || len(pages) != 3 {
		t.Fatalf("items %d unique %d pages %d", len(items), len(seen), len(pages))
	}
	for i, p := range pages {
		q, _ := url.ParseQuery(strings.SplitN(p.URL, "?", 2)[1])
		if q.Has("page") || (i > 0) != q.Has("after") {
			t.Fatalf("page %d URL %s: want cursor-only pagination", i+1, p.URL)
		}
	}
	// Sanity of the fake: Dependabot refuses page numbers like GitHub.
	resp, err := srv.Client().Get(srv.URL() + "repos/octocat/app/dependabot/alerts?page=2")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 { // unauthenticated first
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestSecretScanningHidesSecrets(t *testing.T) {
	srv := fake(t, ghtest.Options{})
	org := srv.AddInstallation("octo-org", "Organization")
	r := srv.AddRepository(org.ID, "leaky", true)
	srv.AddAlerts(r.ID, ghtest.SecretScanning, 10)
	app := client(t, srv, nil)
	for _, req := range []ghclient.ListRequest{
		{Kind: ghclient.SecretScanning, Org: "octo-org"},
		{Kind: ghclient.SecretScanning, Owner: "octo-org", Repo: "leaky"},
	} {
		items, _, err := collect(t, app, org.ID, req)
		if err != nil || len(items) != 10 {
			t.Fatalf("%+v: %d items, %v", req, len(items), err)
		}
		for _, it := range items {
			if strings.Contains(string(it), `"secret"`) || strings.Contains(string(it), "fake_secret") {
				t.Fatalf("secret value served: %s", it)
			}
		}
	}
	one, err := app.GetAlert(ctx(t), org.ID, ghclient.SecretScanning, "octo-org", "leaky", 5)
	if err != nil || strings.Contains(string(one), "fake_secret") || !strings.Contains(string(one), `"resolution":"revoked"`) {
		t.Fatalf("get secret alert: %s, %v", one, err)
	}
}

func TestETagsSecondRunIsNotModified(t *testing.T) {
	srv := fake(t, ghtest.Options{})
	org := srv.AddInstallation("octo-org", "Organization")
	r := srv.AddRepository(org.ID, "repo", true)
	srv.AddAlerts(r.ID, ghtest.Dependabot, 230)
	app := client(t, srv, nil)
	etags := ghclient.NewMemoryETags()
	req := ghclient.ListRequest{Kind: ghclient.Dependabot, Org: "octo-org", ETags: etags}

	items, pages, err := collect(t, app, org.ID, req)
	if err != nil || len(items) != 230 || len(pages) != 3 {
		t.Fatalf("first run: %d items %d pages %v", len(items), len(pages), err)
	}
	rl1, _ := app.RateLimit(org.ID)
	srv.ResetStats()

	items, pages, err = collect(t, app, org.ID, req)
	if err != nil {
		t.Fatal(err)
	}
	unchanged := 0
	for _, p := range pages {
		if !p.NotModified {
			t.Fatalf("page %d modified on second run", p.Number)
		}
		unchanged += p.UnchangedItems
	}
	// Pagination continued through 304 answers (which carry no Link) from the stored next URLs.
	if len(items) != 0 || len(pages) != 3 || unchanged != 230 {
		t.Fatalf("second run: %d items %d pages %d unchanged", len(items), len(pages), unchanged)
	}
	st := srv.Stats()
	rl2, _ := app.RateLimit(org.ID)
	if st.NotModified != 3 || rl2.Remaining != rl1.Remaining {
		t.Fatalf("304s %d, remaining %d → %d: a 304 must cost nothing", st.NotModified, rl1.Remaining, rl2.Remaining)
	}

	// A change shows up on the pages it touches.
	srv.UpdateAlert(r.ID, ghtest.Dependabot, 229, func(a *ghtest.Alert) { a.State = "fixed"; a.UpdatedAt = time.Now() })
	items, pages, err = collect(t, app, org.ID, req)
	if err != nil || pages[0].NotModified || len(items) != 100 || !pages[1].NotModified || !pages[2].NotModified {
		t.Fatalf("after change: %d items, pages %+v, %v", len(items), pages, err)
	}
}

func TestExpiredTokenIsRefreshed(t *testing.T) {
	srv := fake(t, ghtest.Options{})
	org := srv.AddInstallation("octo-org", "Organization")
	r := srv.AddRepository(org.ID, "repo", true)
	srv.AddAlerts(r.ID, ghtest.CodeScanning, 250)
	app := client(t, srv, nil)

	n := 0
	err := app.ListAlerts(ctx(t), org.ID, ghclient.ListRequest{Kind: ghclient.CodeScanning, Owner: "octo-org", Repo: "repo"}, func(p ghclient.Page) (bool, error) {
		n += len(p.Items)
		if p.Number == 1 {
			srv.RevokeTokens() // the token dies mid-run
		}
		return true, nil
	})
	if err != nil || n != 250 {
		t.Fatalf("listed %d, %v", n, err)
	}
	if st := srv.Stats(); st.TokensIssued != 2 {
		t.Fatalf("tokens issued = %d, want 2 (one refresh)", st.TokensIssued)
	}
}

func TestRateLimitExhaustedWaitsForReset(t *testing.T) {
	srv := fake(t, ghtest.Options{})
	org := srv.AddInstallation("octo-org", "Organization")
	r := srv.AddRepository(org.ID, "repo", true)
	srv.AddAlerts(r.ID, ghtest.CodeScanning, 350)
	app := client(t, srv, nil)
	req := ghclient.ListRequest{Kind: ghclient.CodeScanning, Owner: "octo-org", Repo: "repo"}

	t.Run("client sees remaining 0 and waits", func(t *testing.T) {
		srv.SetRateLimit(org.ID, 2, 1500*time.Millisecond) // token + 1 page, then spent
		srv.ResetStats()
		start := time.Now()
		items, _, err := collect(t, app, org.ID, req)
		if err != nil || len(items) != 350 {
			t.Fatalf("%d items, %v", len(items), err)
		}
		if el := time.Since(start); el < time.Second {
			t.Fatalf("finished in %s: did not wait for the reset", el)
		}
		if st := srv.Stats(); st.RateLimited != 0 {
			t.Fatalf("%d requests hit a spent budget", st.RateLimited)
		}
	})
	t.Run("403 with remaining 0 is retried after reset", func(t *testing.T) {
		srv.SetRateLimit(org.ID, 0, 1200*time.Millisecond)
		srv.ResetStats()
		items, _, err := collect(t, app, org.ID, req)
		if err != nil || len(items) != 350 {
			t.Fatalf("%d items, %v", len(items), err)
		}
		if st := srv.Stats(); st.RateLimited != 1 {
			t.Fatalf("rate limited answers = %d, want 1", st.RateLimited)
		}
	})
	t.Run("reset too far away gives up", func(t *testing.T) {
		srv.SetRateLimit(org.ID, 0, time.Hour)
		_, _, err := collect(t, app, org.ID, req)
		if !errors.Is(err, ghclient.ErrRateLimited) {
			t.Fatalf("err = %v, want ErrRateLimited", err)
		}
	})
}

func TestSecondaryLimitHonoursRetryAfter(t *testing.T) {
	srv := fake(t, ghtest.Options{})
	org := srv.AddInstallation("octo-org", "Organization")
	r := srv.AddRepository(org.ID, "repo", true)
	srv.AddAlerts(r.ID, ghtest.SecretScanning, 5)
	app := client(t, srv, nil)
	srv.Inject(ghtest.SecondaryLimit("/secret-scanning/alerts", time.Second, 1))

	start := time.Now()
	items, _, err := collect(t, app, org.ID, ghclient.ListRequest{Kind: ghclient.SecretScanning, Org: "octo-org"})
	if err != nil || len(items) != 5 {
		t.Fatalf("%d items, %v", len(items), err)
	}
	if el := time.Since(start); el < time.Second {
		t.Fatalf("retried after %s, before Retry-After", el)
	}
	if st := srv.Stats(); st.Faults != 1 || st.ByEndpoint["GET /orgs/{org}/secret-scanning/alerts"] != 2 {
		t.Fatalf("stats %+v", st)
	}

	// Without Retry-After, the secondary-limit message alone leads to a backoff and retry.
	f := ghtest.SecondaryLimit("/secret-scanning/alerts", 0, 2)
	srv.Inject(f)
	if items, _, err := collect(t, app, org.ID, ghclient.ListRequest{Kind: ghclient.SecretScanning, Org: "octo-org"}); err != nil || len(items) != 5 {
		t.Fatalf("%d items, %v", len(items), err)
	}
}

func TestServerErrorsRetriedThenReported(t *testing.T) {
	srv := fake(t, ghtest.Options{})
	org := srv.AddInstallation("octo-org", "Organization")
	r := srv.AddRepository(org.ID, "repo", true)
	srv.AddAlerts(r.ID, ghtest.CodeScanning, 250)
	app := client(t, srv, func(c *ghclient.Config) { c.MaxRetryElapsed = 500 * time.Millisecond })

	srv.Inject(ghtest.ServerError("/orgs/", 1, 2)) // page 2 fails twice
	items, _, err := collect(t, app, org.ID, ghclient.ListRequest{Kind: ghclient.CodeScanning, Org: "octo-org"})
	if err != nil || len(items) != 250 {
		t.Fatalf("%d items, %v", len(items), err)
	}
	srv.ClearFaults()
	srv.Inject(ghtest.ServerError("/orgs/", 1, 0)) // page 2 always fails
	pages := 0
	err = app.ListAlerts(ctx(t), org.ID, ghclient.ListRequest{Kind: ghclient.CodeScanning, Org: "octo-org"}, func(ghclient.Page) (bool, error) { pages++; return true, nil })
	var er *github.ErrorResponse
	if !errors.As(err, &er) || ghclient.StatusCode(err) != 500 || pages != 1 {
		t.Fatalf("err = %v after %d pages, want a 500 ErrorResponse after page 1", err, pages)
	}
}

func TestFeatureOffAndRefusals(t *testing.T) {
	srv := fake(t, ghtest.Options{})
	org := srv.AddInstallation("octo-org", "Organization")
	user := srv.AddInstallation("octocat", "User")
	r := srv.AddRepository(org.ID, "repo", true)
	srv.AddRepository(user.ID, "mine", false)
	for _, k := range ghtest.Kinds() {
		srv.SetFeature(r.ID, k, ghtest.FeatureOff)
	}
	app := client(t, srv, nil)

	for _, k := range ghclient.Kinds() {
		srv.ResetStats()
		_, _, err := collect(t, app, org.ID, ghclient.ListRequest{Kind: k, Owner: "octo-org", Repo: "repo"})
		if !errors.Is(err, ghclient.ErrFeatureOff) {
			t.Fatalf("%s: err = %v, want ErrFeatureOff", k, err)
		}
		if n := srv.Stats().ByEndpoint["GET /repos/{owner}/{repo}/"+string(k)+"/alerts"]; n != 1 {
			t.Fatalf("%s: %d requests, a feature that is off must not be retried", k, n)
		}
	}
	srv.SetFeature(r.ID, ghtest.CodeScanning, ghtest.NoAnalysis)
	if _, _, err := collect(t, app, org.ID, ghclient.ListRequest{Kind: ghclient.CodeScanning, Owner: "octo-org", Repo: "repo"}); !errors.Is(err, ghclient.ErrFeatureOff) {
		t.Fatalf("no analysis: err = %v", err)
	}
	srv.RefuseOrgEndpoint(org.ID, ghtest.Dependabot)
	if _, _, err := collect(t, app, org.ID, ghclient.ListRequest{Kind: ghclient.Dependabot, Org: "octo-org"}); !errors.Is(err, ghclient.ErrForbidden) {
		t.Fatalf("refused org endpoint: err = %v, want ErrForbidden", err)
	}
	if _, _, err := collect(t, app, user.ID, ghclient.ListRequest{Kind: ghclient.Dependabot, Org: "octocat"}); !errors.Is(err, ghclient.ErrNotFound) {
		t.Fatalf("org endpoint of a user: err = %v, want ErrNotFound", err)
	}
	if _, err := app.GetCodeScanningAlert(ctx(t), user.ID, "octocat", "mine", 99); !errors.Is(err, ghclient.ErrNotFound) {
		t.Fatalf("missing alert: err = %v, want ErrNotFound", err)
	}
	var er *github.ErrorResponse
	_, _, err := collect(t, app, org.ID, ghclient.ListRequest{Kind: ghclient.CodeScanning, Owner: "octo-org", Repo: "repo"})
	if !errors.As(err, &er) || er.Response.StatusCode != 404 || er.Message != "no analysis found" || er.Response.Request.URL.Path != "/repos/octo-org/repo/code-scanning/alerts" {
		t.Fatalf("ErrorResponse = %+v", er)
	}
}

func TestGHESBaseURL(t *testing.T) {
	srv := fake(t, ghtest.Options{PathPrefix: "/api/v3"})
	if !strings.HasSuffix(srv.URL(), "/api/v3/") {
		t.Fatalf("URL %s", srv.URL())
	}
	org := srv.AddInstallation("corp", "Organization")
	r := srv.AddRepository(org.ID, "svc", true)
	srv.AddAlerts(r.ID, ghtest.Dependabot, 150)
	app := client(t, srv, nil)
	insts, err := app.Installations(ctx(t))
	if err != nil || len(insts) != 1 {
		t.Fatalf("installations %+v %v", insts, err)
	}
	items, pages, err := collect(t, app, org.ID, ghclient.ListRequest{Kind: ghclient.Dependabot, Org: "corp"})
	if err != nil || len(items) != 150 || len(pages) != 2 || !strings.Contains(pages[1].URL, "/api/v3/orgs/corp/dependabot/alerts?") {
		t.Fatalf("%d items %d pages %v", len(items), len(pages), err)
	}
	if st := srv.Stats(); st.ByEndpoint["POST /app/installations/{id}/access_tokens"] != 1 {
		t.Fatalf("token not fetched under the prefix: %v", st.ByEndpoint)
	}
}

func TestInFlightCapPerInstallation(t *testing.T) {
	srv := fake(t, ghtest.Options{Latency: 30 * time.Millisecond})
	a := srv.AddInstallation("a", "Organization")
	b := srv.AddInstallation("b", "Organization")
	ra := srv.AddRepository(a.ID, "r", true)
	rb := srv.AddRepository(b.ID, "r", true)
	srv.AddAlerts(ra.ID, ghtest.CodeScanning, 30)
	srv.AddAlerts(rb.ID, ghtest.CodeScanning, 30)
	app := client(t, srv, func(c *ghclient.Config) { c.MaxInFlight = 3 })

	var wg sync.WaitGroup
	errs := make(chan error, 60)
	for i := 1; i <= 30; i++ {
		for _, in := range []ghtest.Installation{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := app.GetCodeScanningAlert(ctx(t), in.ID, in.Account, "r", int64(i))
				errs <- err
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st := srv.Stats()
	if st.MaxInFlightByInstallation[a.ID] != 3 || st.MaxInFlightByInstallation[b.ID] != 3 {
		t.Fatalf("max in flight per installation = %v, want exactly the cap 3", st.MaxInFlightByInstallation)
	}
	if st.MaxInFlight < 4 {
		t.Fatalf("max in flight overall = %d: installations should not share a cap", st.MaxInFlight)
	}
}

func TestGetCodeScanningAlertForEnrichment(t *testing.T) {
	srv := fake(t, ghtest.Options{})
	org := srv.AddInstallation("octo-org", "Organization")
	r := srv.AddRepository(org.ID, "repo", true)
	srv.PutAlert(r.ID, ghtest.CodeScanning, ghtest.Alert{Number: 42, State: "open"})
	app := client(t, srv, nil)
	raw, err := app.GetCodeScanningAlert(ctx(t), org.ID, "octo-org", "repo", 42)
	if err != nil {
		t.Fatal(err)
	}
	var a struct {
		Number int64 `json:"number"`
		State  string
		Rule   struct {
			SecuritySeverityLevel string `json:"security_severity_level"`
		} `json:"rule"`
	}
	if err := json.Unmarshal(raw, &a); err != nil || a.Number != 42 || a.State != "open" || a.Rule.SecuritySeverityLevel != "high" {
		t.Fatalf("alert %+v (%v)", a, err)
	}
}

func TestHookDeliveries(t *testing.T) {
	srv := fake(t, ghtest.Options{})
	for i := range 250 {
		d := ghtest.Delivery{GUID: fmt.Sprintf("guid-%03d", i), Event: "dependabot_alert", Action: "created", InstallationID: 7,
			Payload: json.RawMessage(fmt.Sprintf(`{"action":"created","n":%d}`, i))}
		if i%10 == 0 {
			d.Status, d.StatusCode = "Invalid HTTP Response: 503", 503
		}
		srv.AddDelivery(d)
	}
	app := client(t, srv, nil)
	var all []ghclient.HookDelivery
	pages := 0
	err := app.ListHookDeliveries(ctx(t), func(ds []ghclient.HookDelivery) (bool, error) {
		pages++
		all = append(all, ds...)
		return true, nil
	})
	if err != nil || len(all) != 250 || pages != 3 {
		t.Fatalf("%d deliveries in %d pages, %v", len(all), pages, err)
	}
	if all[0].GUID != "guid-249" || all[249].GUID != "guid-000" || all[0].Event != "dependabot_alert" || all[0].InstallationID != 7 {
		t.Fatalf("order/fields: first %+v last %+v", all[0], all[249])
	}
	if all[249].Succeeded() || !all[248].Succeeded() {
		t.Fatalf("Succeeded: %+v %+v", all[249], all[248])
	}
	d, err := app.GetHookDelivery(ctx(t), all[249].ID)
	if err != nil || d.GUID != "guid-000" || d.Headers["X-GitHub-Event"] != "dependabot_alert" || string(d.Payload) != `{"action":"created","n":0}` {
		t.Fatalf("delivery %+v, %v", d, err)
	}
	// Stopping early stops paging.
	srv.ResetStats()
	_ = app.ListHookDeliveries(ctx(t), func([]ghclient.HookDelivery) (bool, error) { return false, nil })
	if n := srv.Stats().ByEndpoint["GET /app/hook/deliveries"]; n != 1 {
		t.Fatalf("%d list requests after stop, want 1", n)
	}
}

func TestBadAppCredentials(t *testing.T) {
	srv := fake(t, ghtest.Options{AppID: 7})
	srv.AddInstallation("octo-org", "Organization")
	app := client(t, srv, func(c *ghclient.Config) { c.AppID = 8 })
	if _, err := app.Installations(ctx(t)); !errors.Is(err, ghclient.ErrUnauthorized) {
		t.Fatalf("err = %v, want ErrUnauthorized", err)
	}
	if _, err := app.Repositories(ctx(t), 1001); !errors.Is(err, ghclient.ErrUnauthorized) {
		t.Fatalf("token with a wrong JWT: err = %v, want ErrUnauthorized", err)
	}
}

// BenchmarkFullPull pulls 100,000 alerts of 2,000 repositories from the fake
// through the organisation endpoints (3 kinds listed concurrently), as the
// reconciler's full pull does, and through the per-repository endpoints
// (8 repositories at a time) for comparison.
//
//	go test -run '^$' -bench FullPull -benchtime 1x ./internal/ghclient/
func BenchmarkFullPull(b *testing.B) {
	keyOnce.Do(func() { testKey, _ = rsa.GenerateKey(rand.Reader, 2048) })
	srv, err := ghtest.Start(ghtest.Options{PrivateKey: testKey, RateLimit: 1_000_000})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	org := srv.AddInstallation("big-org", "Organization")
	var names []string
	for i := range 2000 {
		r := srv.AddRepository(org.ID, fmt.Sprintf("repo-%04d", i), true)
		srv.AddAlerts(r.ID, ghtest.CodeScanning, 20)
		srv.AddAlerts(r.ID, ghtest.Dependabot, 20)
		srv.AddAlerts(r.ID, ghtest.SecretScanning, 10)
		names = append(names, r.Name)
	}
	app, err := ghclient.New(slog.New(slog.NewTextHandler(io.Discard, nil)), ghclient.Config{
		BaseURL: srv.URL(), AppID: srv.AppID(), PrivateKeyPEM: srv.PrivateKeyPEM(), MaxInFlight: 8,
	})
	if err != nil {
		b.Fatal(err)
	}
	c := context.Background()
	pull := func(reqs []ghclient.ListRequest, workers int) int {
		var mu sync.Mutex
		total := 0
		work := make(chan ghclient.ListRequest)
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range work {
					n := 0
					if err := app.ListAlerts(c, org.ID, r, func(p ghclient.Page) (bool, error) { n += len(p.Items); return true, nil }); err != nil {
						b.Error(err)
					}
					mu.Lock()
					total += n
					mu.Unlock()
				}
			}()
		}
		for _, r := range reqs {
			work <- r
		}
		close(work)
		wg.Wait()
		return total
	}
	b.Run("org", func(b *testing.B) {
		for b.Loop() {
			srv.ResetStats()
			var reqs []ghclient.ListRequest
			for _, k := range ghclient.Kinds() {
				reqs = append(reqs, ghclient.ListRequest{Kind: k, Org: "big-org"})
			}
			if n := pull(reqs, 3); n != 100_000 {
				b.Fatalf("pulled %d alerts", n)
			}
		}
		b.ReportMetric(float64(srv.Stats().Requests), "requests")
		b.ReportMetric(100_000, "alerts")
	})
	b.Run("per-repo", func(b *testing.B) {
		for b.Loop() {
			srv.ResetStats()
			var reqs []ghclient.ListRequest
			for _, name := range names {
				for _, k := range ghclient.Kinds() {
					reqs = append(reqs, ghclient.ListRequest{Kind: k, Owner: "big-org", Repo: name})
				}
			}
			if n := pull(reqs, 8); n != 100_000 {
				b.Fatalf("pulled %d alerts", n)
			}
		}
		b.ReportMetric(float64(srv.Stats().Requests), "requests")
		b.ReportMetric(100_000, "alerts")
	})
}
