// Package ghclient owns ghas-relay's access to the GitHub REST API as a
// GitHub App (SPEC §8 enrichment, §9 reconciler): App JWT and installation
// tokens (ghinstallation, one shared base transport), the installation,
// repository, alert and webhook-delivery endpoints, Link/cursor pagination,
// conditional requests with stored ETags, rate limits, a cap on requests in
// flight per installation, and the classification of GitHub's errors.
//
// Typical use (the reconciler):
//
//	app, err := ghclient.New(logger, ghclient.Config{BaseURL: apiURL, AppID: id, PrivateKeyPEM: pem, Requests: counter})
//	insts, err := app.Installations(ctx)
//	for _, in := range insts {
//		repos, err := app.Repositories(ctx, in.ID)
//		err = app.ListAlerts(ctx, in.ID, ghclient.ListRequest{Kind: ghclient.Dependabot, Org: in.Account},
//			func(p ghclient.Page) (bool, error) { ...; return true, nil })
//		switch {
//		case errors.Is(err, ghclient.ErrForbidden), errors.Is(err, ghclient.ErrNotFound):
//			// organisation endpoint refused: list per repository instead
//		case errors.Is(err, ghclient.ErrFeatureOff):
//			// record "not enabled" in the report; do not retry
//		}
//	}
//
// and the processor: app.GetCodeScanningAlert(ctx, installationID, owner, repo, number).
//
// Every request of an installation passes, in order: the rate-limit
// middleware (waits for x-ratelimit-reset when the budget is spent, honours
// Retry-After and secondary limits, retries 5xx with backoff), the in-flight
// cap (Config.MaxInFlight per installation), the token refresh on 401, the
// installation token (ghinstallation), and request counting. Alert bodies
// stay raw JSON: the transform works on raw JSON and go-github's structs
// drop fields GitHub added later (epss, cvss_severities, ...).
package ghclient

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"

	"github.com/ghas-relay/ghas-relay/internal/logging"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
)

// DefaultBaseURL is the REST base URL of github.com. GitHub Enterprise
// Server uses https://<host>/api/v3/.
const DefaultBaseURL = "https://api.github.com/"

// apiVersion is the REST API version every request asks for.
const apiVersion = "2022-11-28"

// PerPage is the page size of every list request (GitHub's maximum).
const PerPage = 100

// maxBody is the largest response body read (a page of 100 alerts is ~1 MB).
const maxBody = 64 << 20

// Config configures an App. AppID and PrivateKeyPEM are required.
type Config struct {
	// BaseURL is the REST base URL (GITHUB_API_URL); default DefaultBaseURL.
	// GHES: https://<host>/api/v3/.
	BaseURL string
	// AppID is the numeric GitHub App ID (the JWT issuer).
	AppID int64
	// PrivateKeyPEM is the App's private key (PKCS#1 or PKCS#8 PEM).
	PrivateKeyPEM []byte
	// Transport is the base transport shared by the App and every
	// installation; default a clone of the standard transport with timeouts.
	Transport http.RoundTripper
	// MaxInFlight caps the requests in flight per installation (and for the
	// App's own JWT calls); default 8.
	MaxInFlight int
	// MaxRateLimitWait is the longest wait for a primary rate-limit reset
	// before giving up with ErrRateLimited; default 65 minutes (GitHub's
	// window is an hour).
	MaxRateLimitWait time.Duration
	// MaxRetryElapsed bounds the time one request spends retrying
	// (secondary limits, 5xx, network errors, primary resets); default 70 minutes.
	MaxRetryElapsed time.Duration
	// RetryInitial is the first exponential backoff interval for 5xx and
	// network errors; default 1s.
	RetryInitial time.Duration
	// SecondaryMinWait is the least wait after a secondary rate limit that
	// came without Retry-After (GitHub asks for at least a minute); default 60s.
	SecondaryMinWait time.Duration
	// UserAgent is sent with every request; default "ghas-relay".
	UserAgent string
	// Requests, if set, counts every HTTP request by endpoint template and
	// status (labels "endpoint", "status"; SPEC §10
	// ghas_reconciler_requests_total). Status is "error" for transport errors.
	Requests *metrics.CounterVec
}

// App is a GitHub App client: JWT calls as the App and REST calls as each of
// its installations. It is safe for concurrent use.
type App struct {
	logger     *slog.Logger
	cfg        Config
	base       *url.URL
	key        *rsa.PrivateKey
	transport  http.RoundTripper // counted base transport, shared
	policy     retryPolicy
	appClient  *http.Client
	appLimiter *limiter

	mu       sync.Mutex
	installs map[int64]*installClient
}

// installClient is the cached client of one installation.
type installClient struct {
	client  *http.Client
	limiter *limiter
}

// New returns an App for cfg.
func New(logger *slog.Logger, cfg Config) (*App, error) {
	if cfg.AppID <= 0 {
		return nil, errors.New("github app: GITHUB_APP_ID must be the numeric App ID")
	}
	key, err := ParsePrivateKey(cfg.PrivateKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("github app: GITHUB_APP_PRIVATE_KEY: %w", err)
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	base, err := url.Parse(cfg.BaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("github app: GITHUB_API_URL %q is not an http(s) URL", cfg.BaseURL)
	}
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
	}
	base.RawQuery, base.Fragment = "", ""
	if cfg.Transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.ResponseHeaderTimeout = time.Minute
		t.MaxIdleConnsPerHost = 64
		cfg.Transport = t
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 8
	}
	if cfg.MaxRateLimitWait <= 0 {
		cfg.MaxRateLimitWait = 65 * time.Minute
	}
	if cfg.MaxRetryElapsed <= 0 {
		cfg.MaxRetryElapsed = 70 * time.Minute
	}
	if cfg.RetryInitial <= 0 {
		cfg.RetryInitial = time.Second
	}
	if cfg.SecondaryMinWait <= 0 {
		cfg.SecondaryMinWait = time.Minute
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "ghas-relay"
	}
	a := &App{
		logger:    logger,
		cfg:       cfg,
		base:      base,
		key:       key,
		transport: counted(cfg.Requests, base.Path)(cfg.Transport),
		policy: retryPolicy{
			maxRateLimitWait: cfg.MaxRateLimitWait,
			maxElapsed:       cfg.MaxRetryElapsed,
			initial:          cfg.RetryInitial,
			secondaryMin:     cfg.SecondaryMinWait,
		},
		appLimiter: &limiter{},
		installs:   map[int64]*installClient{},
	}
	a.appClient = a.httpClient(a.appsTransport(), a.appLimiter, logger.With(slog.String("auth", "app")))
	return a, nil
}

// ParsePrivateKey parses an RSA private key in PKCS#1 or PKCS#8 PEM.
func ParsePrivateKey(pemBytes []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("private key is not RSA")
	}
	return rk, nil
}

// BaseURL is the REST base URL, always ending in "/".
func (a *App) BaseURL() string { return a.base.String() }

// apiRoot is the base URL without the trailing slash, as ghinstallation wants it.
func (a *App) apiRoot() string { return strings.TrimSuffix(a.base.String(), "/") }

// appsTransport authenticates as the App (a fresh JWT per request). Each
// installation gets its own, because ghinstallation writes to it on token
// refresh.
func (a *App) appsTransport() *ghinstallation.AppsTransport {
	atr := ghinstallation.NewAppsTransportFromPrivateKey(a.transport, a.cfg.AppID, a.key)
	atr.BaseURL = a.apiRoot()
	return atr
}

// httpClient wraps auth in the rate-limit and in-flight middleware.
func (a *App) httpClient(auth http.RoundTripper, l *limiter, logger *slog.Logger) *http.Client {
	rt := inFlight(a.cfg.MaxInFlight)(auth)
	rt = rateLimited(logger, l, a.policy)(rt)
	return &http.Client{
		Transport: rt,
		// Follow redirects (renamed repositories) only on the API host: the
		// auth transports add credentials to every request.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 || !a.sameOrigin(req.URL) {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

// sameOrigin reports whether u is on the API's scheme and host.
func (a *App) sameOrigin(u *url.URL) bool {
	return u.Scheme == a.base.Scheme && strings.EqualFold(u.Host, a.base.Host)
}

// installation returns the cached client of installation id.
func (a *App) installation(id int64) *installClient {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ic := a.installs[id]; ic != nil {
		return ic
	}
	logger := a.logger.With(slog.Int64(logging.KeyInstallationID, id))
	fresh := func() http.RoundTripper {
		tr := ghinstallation.NewFromAppsTransport(a.appsTransport(), id)
		tr.BaseURL = a.apiRoot()
		return tr
	}
	ic := &installClient{limiter: &limiter{}}
	ic.client = a.httpClient(&reauth{logger: logger, fresh: fresh, cur: fresh()}, ic.limiter, logger)
	a.installs[id] = ic
	return ic
}

// RateLimit returns the primary rate limit GitHub last reported for
// installation id, or for the App's own JWT calls when id is 0; false if no
// response has carried rate-limit headers yet.
func (a *App) RateLimit(id int64) (RateLimit, bool) {
	if id == 0 {
		return a.appLimiter.snapshot()
	}
	a.mu.Lock()
	ic := a.installs[id]
	a.mu.Unlock()
	if ic == nil {
		return RateLimit{}, false
	}
	return ic.limiter.snapshot()
}

// url resolves a path relative to the base URL with query q.
func (a *App) url(q url.Values, segments ...string) string {
	escaped := make([]string, len(segments))
	for i, s := range segments {
		escaped[i] = url.PathEscape(s)
	}
	u := a.base.JoinPath(escaped...)
	u.RawQuery = q.Encode()
	return u.String()
}

// get sends one GET. 2xx and 304 come back as the response (body open);
// everything else is an *APIError or a wrapped transport error.
func (a *App) get(ctx context.Context, c *http.Client, rawURL, etag string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", rawURL, err)
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", apiVersion)
	req.Header.Set("User-Agent", a.cfg.UserAgent)
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	endpoint := EndpointTemplate(a.base.Path, req.URL.Path)
	resp, err := c.Do(req)
	if err != nil {
		var he *ghinstallation.HTTPError
		if errors.As(err, &he) && he.Response != nil {
			ae := newAPIError(http.MethodPost, EndpointTemplate(a.base.Path, he.Response.Request.URL.Path), he.Response)
			return nil, fmt.Errorf("get %s: installation token: %w", endpoint, ae)
		}
		return nil, fmt.Errorf("get %s: %w", endpoint, err)
	}
	if resp.StatusCode == http.StatusNotModified || resp.StatusCode/100 == 2 {
		return resp, nil
	}
	return nil, newAPIError(http.MethodGet, endpoint, resp)
}

// getJSON GETs rawURL and returns the body.
func (a *App) getJSON(ctx context.Context, c *http.Client, rawURL string) (json.RawMessage, error) {
	resp, err := a.get(ctx, c, rawURL, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := readBody(resp)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", EndpointTemplate(a.base.Path, resp.Request.URL.Path), err)
	}
	return body, nil
}

// readBody reads a whole response body (bounded by maxBody).
func readBody(resp *http.Response) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(body) > maxBody {
		return nil, fmt.Errorf("read body: larger than %d bytes", maxBody)
	}
	return body, nil
}

// rawPage is one page of a paginated listing.
type rawPage struct {
	body        []byte // nil when not modified
	notModified bool
	etag        string
	url         string
	number      int
	validator   Validator
}

// paginate walks a Link-paginated listing from first, one page at a time,
// until there is no rel="next" or visit says stop. With etags, each page is
// a conditional request; a 304 page is visited with notModified set and
// pagination continues from the Link header or, if the 304 lacks it, from
// the next URL stored with the ETag.
func (a *App) paginate(ctx context.Context, c *http.Client, first string, etags ETagStore, visit func(*rawPage) (bool, error)) error {
	u := first
	for n := 1; u != ""; n++ {
		var v Validator
		var key string
		if etags != nil {
			key = ETagKey(u)
			got, ok, err := etags.Get(ctx, key)
			if err != nil {
				return fmt.Errorf("etag get: %w", err)
			}
			if ok {
				v = got
			}
		}
		resp, err := a.get(ctx, c, u, v.ETag)
		if err != nil {
			return err
		}
		pg := rawPage{url: u, number: n, etag: resp.Header.Get("ETag")}
		next, hasLink := nextLink(resp.Header)
		if resp.StatusCode == http.StatusNotModified {
			drain(resp)
			pg.notModified = true
			pg.validator = v
			if !hasLink {
				next = v.Next
			}
			if pg.etag == "" {
				pg.etag = v.ETag
			}
		} else {
			pg.body, err = readBody(resp)
			resp.Body.Close()
			if err != nil {
				return fmt.Errorf("get %s: %w", EndpointTemplate(a.base.Path, resp.Request.URL.Path), err)
			}
			pg.validator = Validator{ETag: pg.etag, Next: next}
		}
		if next != "" {
			nu, err := url.Parse(next)
			if err != nil || !a.sameOrigin(nu) {
				return fmt.Errorf("pagination: next link %q is not on %s", next, a.base.Host)
			}
		}
		more, err := visit(&pg)
		if err != nil {
			return err
		}
		// Store the validator only after the page was processed, so a page
		// whose processing failed is fetched in full next time.
		if etags != nil && !pg.notModified && pg.etag != "" {
			if err := etags.Put(ctx, key, pg.validator); err != nil {
				return fmt.Errorf("etag put: %w", err)
			}
		}
		if !more {
			return nil
		}
		u = next
	}
	return nil
}

// Installation is one installation of the App.
type Installation struct {
	ID int64
	// Account is the login of the organisation or user the App is installed on.
	Account   string
	AccountID int64
	// AccountType is "Organization" or "User".
	AccountType string
	// RepositorySelection is "all" or "selected".
	RepositorySelection string
	// Suspended is true when the installation is suspended (its token
	// requests fail with 403).
	Suspended bool
}

// IsOrganization reports whether the installation is on an organisation,
// whose organisation-level alert endpoints can be used.
func (i Installation) IsOrganization() bool { return i.AccountType == "Organization" }

// Installations lists every installation of the App (GET /app/installations, JWT).
func (a *App) Installations(ctx context.Context) ([]Installation, error) {
	var out []Installation
	first := a.url(url.Values{"per_page": {strconv.Itoa(PerPage)}}, "app", "installations")
	err := a.paginate(ctx, a.appClient, first, nil, func(p *rawPage) (bool, error) {
		var items []struct {
			ID      int64 `json:"id"`
			Account struct {
				Login string `json:"login"`
				ID    int64  `json:"id"`
				Type  string `json:"type"`
			} `json:"account"`
			TargetType          string          `json:"target_type"`
			RepositorySelection string          `json:"repository_selection"`
			SuspendedAt         json.RawMessage `json:"suspended_at"`
		}
		if err := json.Unmarshal(p.body, &items); err != nil {
			return false, fmt.Errorf("decode installations: %w", err)
		}
		for _, it := range items {
			typ := it.TargetType
			if typ == "" {
				typ = it.Account.Type
			}
			out = append(out, Installation{
				ID: it.ID, Account: it.Account.Login, AccountID: it.Account.ID, AccountType: typ,
				RepositorySelection: it.RepositorySelection,
				Suspended:           len(it.SuspendedAt) > 0 && string(it.SuspendedAt) != "null",
			})
		}
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list installations: %w", err)
	}
	return out, nil
}

// Repository is one repository an installation can access. Raw is the
// repository object exactly as GitHub sent it (the asset fields of a finding
// come from it).
type Repository struct {
	ID            int64  `json:"id"`
	Name          string `json:"name"`
	FullName      string `json:"full_name"`
	Private       bool   `json:"private"`
	Archived      bool   `json:"archived"`
	Disabled      bool   `json:"disabled"`
	Visibility    string `json:"visibility"`
	HTMLURL       string `json:"html_url"`
	DefaultBranch string `json:"default_branch"`
	Owner         struct {
		Login string `json:"login"`
		ID    int64  `json:"id"`
		Type  string `json:"type"`
	} `json:"owner"`
	Raw json.RawMessage `json:"-"`
}

// Repositories lists the repositories installation id can access (GET
// /installation/repositories).
func (a *App) Repositories(ctx context.Context, installationID int64) ([]Repository, error) {
	var out []Repository
	first := a.url(url.Values{"per_page": {strconv.Itoa(PerPage)}}, "installation", "repositories")
	err := a.paginate(ctx, a.installation(installationID).client, first, nil, func(p *rawPage) (bool, error) {
		var page struct {
			Repositories []json.RawMessage `json:"repositories"`
		}
		if err := json.Unmarshal(p.body, &page); err != nil {
			return false, fmt.Errorf("decode repositories: %w", err)
		}
		for _, raw := range page.Repositories {
			var r Repository
			if err := json.Unmarshal(raw, &r); err != nil {
				return false, fmt.Errorf("decode repository: %w", err)
			}
			r.Raw = raw
			out = append(out, r)
		}
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list repositories of installation %d: %w", installationID, err)
	}
	return out, nil
}
