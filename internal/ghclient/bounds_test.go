package ghclient_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/ghas-relay/ghas-relay/internal/ghclient"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
)

// countingTransport counts round trips through the standard transport and
// remembers whether any answer body contained a marker.
type countingTransport struct {
	n      atomic.Int64
	marker []byte
	mu     sync.Mutex
	saw    bool
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || c.marker == nil {
		return resp, err
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr == nil && bytes.Contains(body, c.marker) {
		c.mu.Lock()
		c.saw = true
		c.mu.Unlock()
	}
	return resp, rerr
}

func TestPageFailingForeverGivesUpInBoundedTime(t *testing.T) {
	srv := fake(t, ghtest.Options{})
	org := srv.AddInstallation("octo-org", "Organization")
	r := srv.AddRepository(org.ID, "repo", true)
	srv.AddAlerts(r.ID, ghtest.CodeScanning, 250)
	app := client(t, srv, func(c *ghclient.Config) {
		c.MaxAttempts = 4
		c.RetryInitial = 20 * time.Millisecond
		c.MaxRetryElapsed = 20 * time.Second
	})
	srv.Inject(ghtest.ServerError("/orgs/", 1, 0)) // page 2 fails forever

	start := time.Now()
	pages := 0
	err := app.ListAlerts(ctx(t), org.ID, ghclient.ListRequest{Kind: ghclient.CodeScanning, Org: "octo-org"}, func(ghclient.Page) (bool, error) { pages++; return true, nil })
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("gave up after %s", el)
	}
	var er *github.ErrorResponse
	if !errors.As(err, &er) || ghclient.StatusCode(err) != 500 || pages != 1 {
		t.Fatalf("err = %v after %d pages, want a 500 after page 1", err, pages)
	}
	if n := srv.Stats().ByEndpoint["GET /orgs/{org}/code-scanning/alerts"]; n != 1+4 {
		t.Fatalf("%d requests, want page 1 and 4 attempts of page 2", n)
	}

	// The elapsed bound cuts attempts short too.
	app = client(t, srv, func(c *ghclient.Config) {
		c.MaxAttempts = 1000
		c.RetryInitial = 50 * time.Millisecond
		c.MaxRetryElapsed = 400 * time.Millisecond
	})
	srv.ResetStats()
	start = time.Now()
	_, _, err = collect(t, app, org.ID, ghclient.ListRequest{Kind: ghclient.CodeScanning, Org: "octo-org"})
	if ghclient.StatusCode(err) != 500 || time.Since(start) > 5*time.Second {
		t.Fatalf("err = %v after %s", err, time.Since(start))
	}
	if n := srv.Stats().ByEndpoint["GET /orgs/{org}/code-scanning/alerts"]; n > 20 {
		t.Fatalf("%d requests within the elapsed bound", n)
	}
}

func TestNetworkErrorsGiveUpAfterMaxAttempts(t *testing.T) {
	srv := fake(t, ghtest.Options{})
	org := srv.AddInstallation("octo-org", "Organization")
	r := srv.AddRepository(org.ID, "repo", true)
	srv.AddAlerts(r.ID, ghtest.Dependabot, 10)
	app := client(t, srv, func(c *ghclient.Config) { c.MaxAttempts = 3 })
	srv.Inject(ghtest.DropConnection("/dependabot/alerts", 0, 0))

	_, _, err := collect(t, app, org.ID, ghclient.ListRequest{Kind: ghclient.Dependabot, Owner: "octo-org", Repo: "repo"})
	if err == nil || ghclient.StatusCode(err) != 0 {
		t.Fatalf("err = %v, want a network error", err)
	}
	// net/http resends an idempotent request once by itself when a reused
	// connection closes before answering, so each attempt is one or two
	// requests.
	if f := srv.Stats().Faults; f < 3 || f > 6 {
		t.Fatalf("%d dropped connections, want 3 attempts", f)
	}
	// A connection dropped twice heals on the third attempt.
	srv.ClearFaults()
	srv.Inject(ghtest.DropConnection("/dependabot/alerts", 0, 2))
	if items, _, err := collect(t, app, org.ID, ghclient.ListRequest{Kind: ghclient.Dependabot, Owner: "octo-org", Repo: "repo"}); err != nil || len(items) != 10 {
		t.Fatalf("%d items, %v", len(items), err)
	}
}

func TestPaginationStopsOnRepeatedForeignOrEndlessNext(t *testing.T) {
	srv := fake(t, ghtest.Options{})
	org := srv.AddInstallation("octo-org", "Organization")
	r := srv.AddRepository(org.ID, "repo", true)
	srv.AddAlerts(r.ID, ghtest.CodeScanning, 350)
	srv.AddAlerts(r.ID, ghtest.Dependabot, 350)
	app := client(t, srv, nil)
	list := func(k ghclient.Kind) (int, error) {
		pages := 0
		err := app.ListAlerts(ctx(t), org.ID, ghclient.ListRequest{Kind: k, Org: "octo-org"}, func(ghclient.Page) (bool, error) { pages++; return true, nil })
		return pages, err
	}
	for _, k := range []ghclient.Kind{ghclient.CodeScanning, ghclient.Dependabot} {
		t.Run("repeated "+string(k), func(t *testing.T) {
			srv.ClearFaults()
			srv.Inject(ghtest.RepeatingNext("/"+string(k)+"/alerts", 1)) // page 2 links to itself
			srv.ResetStats()
			pages, err := list(k)
			if !errors.Is(err, ghclient.ErrPagination) || pages != 1 || srv.Stats().ByEndpoint["GET /orgs/{org}/"+string(k)+"/alerts"] != 2 {
				t.Fatalf("%d pages, err = %v; want ErrPagination at page 2", pages, err)
			}
		})
		t.Run("foreign "+string(k), func(t *testing.T) {
			srv.ClearFaults()
			srv.Inject(ghtest.ForeignNext("/"+string(k)+"/alerts", "evil.example"))
			srv.ResetStats()
			pages, err := list(k)
			if !errors.Is(err, ghclient.ErrPagination) || pages != 0 || !strings.Contains(err.Error(), "evil.example") {
				t.Fatalf("%d pages, err = %v; want ErrPagination before visiting", pages, err)
			}
		})
	}
	t.Run("page cap", func(t *testing.T) {
		srv.ClearFaults()
		capped := client(t, srv, func(c *ghclient.Config) { c.MaxPages = 2 })
		pages := 0
		err := capped.ListAlerts(ctx(t), org.ID, ghclient.ListRequest{Kind: ghclient.Dependabot, Org: "octo-org"}, func(ghclient.Page) (bool, error) { pages++; return true, nil })
		if !errors.Is(err, ghclient.ErrPagination) || pages != 1 {
			t.Fatalf("%d pages, err = %v; want ErrPagination", pages, err)
		}
	})
}

func TestErrorsThatCannotHealFailAtOnce(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := fake(t, ghtest.Options{})
	newApp := func(base string, tr http.RoundTripper) *ghclient.App {
		app, err := ghclient.New(quiet, ghclient.Config{
			BaseURL: base, AppID: 1, PrivateKeyPEM: srv.PrivateKeyPEM(), Transport: tr,
			RetryInitial: 5 * time.Second, MaxAttempts: 6,
		})
		if err != nil {
			t.Fatal(err)
		}
		return app
	}
	t.Run("dns", func(t *testing.T) {
		tr := &countingTransport{}
		app := newApp("https://api.ghas-relay.invalid/", tr)
		start := time.Now()
		if _, err := app.Installations(ctx(t)); err == nil {
			t.Fatal("no error")
		}
		if _, err := app.Repositories(ctx(t), 7); err == nil {
			t.Fatal("no error for an installation token")
		}
		if el := time.Since(start); el > 4*time.Second || tr.n.Load() != 2 {
			t.Fatalf("%d attempts in %s: an unknown host must fail at once", tr.n.Load(), el)
		}
	})
	t.Run("tls certificate", func(t *testing.T) {
		var served atomic.Int64
		ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			served.Add(1)
			w.WriteHeader(http.StatusInternalServerError)
		}))
		ts.Config.ErrorLog = log.New(io.Discard, "", 0)
		ts.StartTLS()
		t.Cleanup(ts.Close)
		tr := &countingTransport{}
		app := newApp(ts.URL+"/", tr)
		start := time.Now()
		_, err := app.Installations(ctx(t))
		if err == nil || time.Since(start) > 4*time.Second || tr.n.Load() != 1 || served.Load() != 0 {
			t.Fatalf("err = %v, %d attempts, %d served in %s", err, tr.n.Load(), served.Load(), time.Since(start))
		}
	})
	t.Run("4xx", func(t *testing.T) {
		org := srv.AddInstallation("octo-org", "Organization")
		r := srv.AddRepository(org.ID, "repo", true)
		srv.SetFeature(r.ID, ghtest.Dependabot, ghtest.FeatureOff)
		app := client(t, srv, func(c *ghclient.Config) { c.RetryInitial = 5 * time.Second })
		srv.ResetStats()
		start := time.Now()
		_, _, err := collect(t, app, org.ID, ghclient.ListRequest{Kind: ghclient.Dependabot, Owner: "octo-org", Repo: "repo"})
		if !errors.Is(err, ghclient.ErrFeatureOff) || time.Since(start) > 4*time.Second || srv.Stats().ByEndpoint["GET /repos/{owner}/{repo}/dependabot/alerts"] != 1 {
			t.Fatalf("err = %v, stats %v", err, srv.Stats().ByEndpoint)
		}
	})
}

func TestSecretValuesNeverLeaveTheClient(t *testing.T) {
	srv := fake(t, ghtest.Options{IgnoreHideSecret: true})
	org := srv.AddInstallation("octo-org", "Organization")
	r := srv.AddRepository(org.ID, "leaky", true)
	srv.AddAlerts(r.ID, ghtest.SecretScanning, 120)
	tr := &countingTransport{marker: []byte(`"secret":"fake_secret_`)}
	app := client(t, srv, func(c *ghclient.Config) { c.Transport = tr })
	check := func(what string, raw []byte) {
		t.Helper()
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil || m["number"] == nil {
			t.Fatalf("%s: not an alert: %s (%v)", what, raw, err)
		}
		if _, ok := m["secret"]; ok || bytes.Contains(raw, []byte("fake_secret")) {
			t.Fatalf("%s: secret value returned: %s", what, raw)
		}
		if m["secret_type"] == nil {
			t.Fatalf("%s: other fields lost: %s", what, raw)
		}
	}
	for _, req := range []ghclient.ListRequest{
		{Kind: ghclient.SecretScanning, Org: "octo-org"},
		{Kind: ghclient.SecretScanning, Owner: "octo-org", Repo: "leaky"},
	} {
		items, _, err := collect(t, app, org.ID, req)
		if err != nil || len(items) != 120 {
			t.Fatalf("%+v: %d items, %v", req, len(items), err)
		}
		for _, it := range items {
			check(fmt.Sprintf("%+v", req), it)
		}
	}
	one, err := app.GetAlert(ctx(t), org.ID, ghclient.SecretScanning, "octo-org", "leaky", 5)
	if err != nil {
		t.Fatal(err)
	}
	check("get", one)
	if !tr.saw {
		t.Fatal("the fake never sent a secret value: the test proves nothing")
	}
}

func TestClientIDAsIssuer(t *testing.T) {
	srv := fake(t, ghtest.Options{AppID: 77, ClientID: "Iv23liRelayTest01"})
	org := srv.AddInstallation("octo-org", "Organization")
	srv.AddRepository(org.ID, "repo", true)
	app := client(t, srv, func(c *ghclient.Config) { c.AppID, c.ClientID = 0, srv.ClientID() })
	insts, err := app.Installations(ctx(t))
	if err != nil || len(insts) != 1 {
		t.Fatalf("installations %+v, %v", insts, err)
	}
	if repos, err := app.Repositories(ctx(t), org.ID); err != nil || len(repos) != 1 {
		t.Fatalf("repositories %+v, %v", repos, err)
	}
	wrong := client(t, srv, func(c *ghclient.Config) { c.AppID, c.ClientID = 0, "Iv23liSomeoneElse" })
	_, err = wrong.Installations(ctx(t))
	if !errors.Is(err, ghclient.ErrUnauthorized) || !strings.Contains(err.Error(), "GITHUB_APP_ID") {
		t.Fatalf("err = %v, want ErrUnauthorized naming GITHUB_APP_ID", err)
	}
	_, err = wrong.Repositories(ctx(t), org.ID)
	if !errors.Is(err, ghclient.ErrUnauthorized) || !strings.Contains(err.Error(), "GITHUB_APP_ID") {
		t.Fatalf("token: err = %v, want ErrUnauthorized naming GITHUB_APP_ID", err)
	}
}

func TestRedeliverHookDelivery(t *testing.T) {
	srv := fake(t, ghtest.Options{})
	d := srv.AddDelivery(ghtest.Delivery{GUID: "g-1", Event: "code_scanning_alert", Status: "Invalid HTTP Response: 502", StatusCode: 502})
	app := client(t, srv, nil)
	if err := app.RedeliverHookDelivery(ctx(t), d.ID); err != nil {
		t.Fatal(err)
	}
	if n := srv.Stats().Redeliveries; n != 1 {
		t.Fatalf("%d redeliveries", n)
	}
	if err := app.RedeliverHookDelivery(ctx(t), d.ID+1000); !errors.Is(err, ghclient.ErrNotFound) {
		t.Fatalf("unknown delivery: err = %v", err)
	}
}

// TestErrorAnswersFreeTheirSlot: go-github swaps the body of an error answer
// (304 included) for a buffered copy and closes only that; the in-flight
// slot must still be freed, or an installation stalls after MaxInFlight
// such answers.
func TestErrorAnswersFreeTheirSlot(t *testing.T) {
	srv := fake(t, ghtest.Options{})
	org := srv.AddInstallation("octo-org", "Organization")
	r := srv.AddRepository(org.ID, "repo", true)
	srv.AddAlerts(r.ID, ghtest.CodeScanning, 5)
	srv.SetFeature(r.ID, ghtest.Dependabot, ghtest.FeatureOff)
	app := client(t, srv, func(c *ghclient.Config) { c.MaxInFlight = 1 })
	etags := ghclient.NewMemoryETags()
	for i := range 4 {
		if _, _, err := collect(t, app, org.ID, ghclient.ListRequest{Kind: ghclient.Dependabot, Owner: "octo-org", Repo: "repo"}); !errors.Is(err, ghclient.ErrFeatureOff) {
			t.Fatalf("attempt %d: err = %v", i, err)
		}
		_, pages, err := collect(t, app, org.ID, ghclient.ListRequest{Kind: ghclient.CodeScanning, Owner: "octo-org", Repo: "repo", ETags: etags})
		if err != nil || len(pages) != 1 || pages[0].NotModified != (i > 0) {
			t.Fatalf("attempt %d: pages %+v, %v", i, pages, err)
		}
	}
}
