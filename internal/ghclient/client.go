// Package ghclient owns ghas-relay's access to the GitHub REST API as a
// GitHub App (enrichment in the processor, full and delta pulls and
// missed-delivery recovery in the reconciler). go-github is the REST client:
// requests, pagination (page numbers, the `after` cursor of Dependabot, the
// `cursor` of hook deliveries), typed errors and rate information.
// ghinstallation supplies the App JWT and installation tokens. What this
// package adds around them: conditional requests with stored ETags, a cap
// on requests in flight per installation, rate-limit waits and bounded
// retries (as http.RoundTripper middleware under go-github), pagination
// guards, removal of secret values, and the classification of GitHub's
// errors into a few sentinels.
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
// Every request of an installation passes, in order: go-github, the
// rate-limit and retry middleware (waits for x-ratelimit-reset when the
// budget is spent, honours Retry-After and secondary limits, retries 5xx
// and network errors a bounded number of times, fails at once on errors
// that cannot heal), the in-flight cap (Config.MaxInFlight per
// installation), the token refresh on 401, the installation token
// (ghinstallation), and request counting. Alert and repository bodies stay
// raw JSON: the transform works on raw JSON and go-github's structs drop
// fields GitHub added later (epss, cvss_severities, ...).
package ghclient

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v62/github"

	"github.com/ghas-relay/ghas-relay/internal/config"
	"github.com/ghas-relay/ghas-relay/internal/logging"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
)

// DefaultBaseURL is the REST base URL of github.com. GitHub Enterprise
// Server uses https://<host>/api/v3/.
const DefaultBaseURL = "https://api.github.com/"

// PerPage is the page size of every list request (GitHub's maximum).
const PerPage = 100

// Defaults of the retry bounds (GITHUB_MAX_ATTEMPTS, GITHUB_RETRY_MAX_ELAPSED).
const (
	DefaultMaxAttempts     = 6
	DefaultMaxRetryElapsed = 2 * time.Minute
)

// DefaultMaxPages is the most pages one listing may have before ghclient
// stops it with an error (a million alerts at 100 a page).
const DefaultMaxPages = 10000

// Config configures an App. PrivateKeyPEM and one of AppID or ClientID are
// required.
type Config struct {
	// BaseURL is the REST base URL (GITHUB_API_URL), used as given; default
	// DefaultBaseURL. GHES: https://<host>/api/v3/.
	BaseURL string
	// AppID is the numeric GitHub App ID (the JWT issuer).
	AppID int64
	// ClientID is the App's client ID (Iv1.… or Iv23…), which GitHub
	// accepts as the JWT issuer instead of the App ID.
	ClientID string
	// PrivateKeyPEM is the App's private key (PKCS#1 or PKCS#8 PEM).
	PrivateKeyPEM []byte
	// Transport is the base transport shared by the App and every
	// installation; default a clone of the standard transport with timeouts.
	Transport http.RoundTripper
	// MaxInFlight caps the requests in flight per installation (and for the
	// App's own JWT calls); default 8.
	MaxInFlight int
	// MaxAttempts bounds the attempts of one request that keeps failing
	// with 5xx or a network error; default DefaultMaxAttempts.
	MaxAttempts int
	// MaxRetryElapsed bounds the time from the first such failure to giving
	// up; default DefaultMaxRetryElapsed.
	MaxRetryElapsed time.Duration
	// RetryInitial is the first exponential backoff interval for 5xx and
	// network errors; default 2s (doubling, at most 30s).
	RetryInitial time.Duration
	// MaxRateLimitWait bounds the time one request spends waiting on rate
	// limits (primary resets, Retry-After, secondary limits) before it
	// gives up with ErrRateLimited; default 65 minutes (GitHub's window is
	// an hour). Only these waits may be long.
	MaxRateLimitWait time.Duration
	// SecondaryMinWait is the least wait after a secondary rate limit that
	// came without Retry-After (GitHub asks for at least a minute); default 60s.
	SecondaryMinWait time.Duration
	// MaxPages is the most pages one listing may have; default DefaultMaxPages.
	MaxPages int
	// UserAgent is sent with every request; default "ghas-relay".
	UserAgent string
	// Requests, if set, counts every HTTP request by endpoint template and
	// status (labels "endpoint", "status"; ghas_reconciler_requests_total).
	// Status is "error" for transport errors.
	Requests *metrics.CounterVec
}

// App is a GitHub App client: JWT calls as the App and REST calls as each of
// its installations. It is safe for concurrent use.
type App struct {
	logger    *slog.Logger
	cfg       Config
	base      *url.URL
	key       *rsa.PrivateKey
	transport http.RoundTripper // counted base transport, shared
	policy    retryPolicy
	app       *client

	mu       sync.Mutex
	installs map[int64]*client
}

// client is go-github over one budget's middleware: the App's JWT calls or
// one installation.
type client struct {
	gh      *github.Client
	limiter *limiter
}

// New returns an App for cfg. Its errors are *config.Error naming the
// setting that is wrong.
func New(logger *slog.Logger, cfg Config) (*App, error) {
	if cfg.AppID <= 0 && cfg.ClientID == "" {
		return nil, &config.Error{Setting: "GITHUB_APP_ID", Msg: "required: the numeric App ID or the client ID"}
	}
	if cfg.ClientID != "" && !IsClientID(cfg.ClientID) {
		return nil, &config.Error{Setting: "GITHUB_APP_ID", Msg: fmt.Sprintf("%q is not a client ID (Iv1.… or Iv23…)", cfg.ClientID)}
	}
	key, err := ParsePrivateKey(cfg.PrivateKeyPEM)
	if err != nil {
		return nil, &config.Error{Setting: "GITHUB_APP_PRIVATE_KEY_FILE", Msg: "not an RSA private key in PEM: " + err.Error()}
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	base, err := url.Parse(cfg.BaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, &config.Error{Setting: "GITHUB_API_URL", Msg: fmt.Sprintf("%q is not an http(s) URL", cfg.BaseURL)}
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
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.MaxRetryElapsed <= 0 {
		cfg.MaxRetryElapsed = DefaultMaxRetryElapsed
	}
	if cfg.RetryInitial <= 0 {
		cfg.RetryInitial = 2 * time.Second
	}
	if cfg.MaxRateLimitWait <= 0 {
		cfg.MaxRateLimitWait = 65 * time.Minute
	}
	if cfg.SecondaryMinWait <= 0 {
		cfg.SecondaryMinWait = time.Minute
	}
	if cfg.MaxPages <= 0 {
		cfg.MaxPages = DefaultMaxPages
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
			maxAttempts:      cfg.MaxAttempts,
			maxElapsed:       cfg.MaxRetryElapsed,
			initial:          cfg.RetryInitial,
			maxRateLimitWait: cfg.MaxRateLimitWait,
			secondaryMin:     cfg.SecondaryMinWait,
		},
		installs: map[int64]*client{},
	}
	atr, err := a.appsTransport()
	if err != nil {
		return nil, &config.Error{Setting: "GITHUB_APP_PRIVATE_KEY_FILE", Msg: err.Error()}
	}
	a.app = a.newClient(atr, logger.With(slog.String(logging.KeyAuth, "app")))
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

// newClient builds go-github over auth wrapped in the rate-limit, retry and
// in-flight middleware of one budget.
func (a *App) newClient(auth http.RoundTripper, logger *slog.Logger) *client {
	l := &limiter{}
	rt := inFlight(a.cfg.MaxInFlight)(auth)
	rt = rateLimited(logger, l, a.policy)(rt)
	gh := github.NewClient(&http.Client{
		Transport: rt,
		// Follow redirects (renamed repositories) only on the API host: the
		// auth transports add credentials to every request.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 || !a.sameOrigin(req.URL) {
				return http.ErrUseLastResponse
			}
			return nil
		},
	})
	// The base URL is used as configured (WithEnterpriseURLs would append
	// api/v3/ to any host not named api.*, e.g. a proxy or the fake GitHub).
	gh.BaseURL = a.base
	gh.UserAgent = a.cfg.UserAgent
	return &client{gh: gh, limiter: l}
}

// sameOrigin reports whether u is on the API's scheme and host.
func (a *App) sameOrigin(u *url.URL) bool {
	return u.Scheme == a.base.Scheme && strings.EqualFold(u.Host, a.base.Host)
}

// installation returns the cached client of installation id.
func (a *App) installation(id int64) *client {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.installs[id]; c != nil {
		return c
	}
	logger := a.logger.With(slog.Int64(logging.KeyInstallationID, id))
	fresh := func() http.RoundTripper {
		// The App transport was built once in New from the same key, so
		// building it again cannot fail.
		atr, _ := a.appsTransport()
		return a.installationTransport(atr, id)
	}
	c := a.newClient(&reauth{logger: logger, fresh: fresh, cur: fresh()}, logger)
	a.installs[id] = c
	return c
}

// RateLimit returns the primary rate limit GitHub last reported for
// installation id, or for the App's own JWT calls when id is 0; false if no
// response has carried rate-limit headers yet.
func (a *App) RateLimit(id int64) (RateLimit, bool) {
	if id == 0 {
		return a.app.limiter.snapshot()
	}
	a.mu.Lock()
	c := a.installs[id]
	a.mu.Unlock()
	if c == nil {
		return RateLimit{}, false
	}
	return c.limiter.snapshot()
}

// relPath joins escaped path segments relative to the base URL, with query q.
func relPath(q url.Values, segments ...string) string {
	escaped := make([]string, len(segments))
	for i, s := range segments {
		escaped[i] = url.PathEscape(s)
	}
	p := strings.Join(escaped, "/")
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	return p
}

// do sends req through go-github as c and decodes the answer into v (see call).
func (a *App) do(ctx context.Context, c *client, req *http.Request, v any) (*github.Response, error) {
	return a.call(ctx, c, func() (*github.Response, error) { return c.gh.Do(ctx, req, v) })
}

// call runs send, one go-github call as c; records the rate information of
// the answer; and waits when go-github refused to send because the budget
// it last saw is spent (or a secondary limit is in force): go-github's own
// wait (SleepUntilPrimaryRateLimitResetWhenRateLimited) knows no bound, so
// the wait is bounded here by Config.MaxRateLimitWait.
func (a *App) call(ctx context.Context, c *client, send func() (*github.Response, error)) (*github.Response, error) {
	var waited time.Duration
	for {
		resp, err := send()
		if resp != nil && resp.Response != nil {
			c.limiter.observe(resp.Rate, resp.Header, time.Now())
		}
		wait, refused := notSent(err, time.Now())
		if !refused || waited+wait > a.cfg.MaxRateLimitWait {
			return resp, err
		}
		a.logger.Warn("github rate limit in force, waiting", slog.Duration(logging.KeyWait, wait))
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
		waited += wait
	}
}

// notSent reports whether err is go-github refusing to send a request
// because of a rate limit it saw earlier (its fake answer has no headers),
// and how long to wait before trying again.
func notSent(err error, now time.Time) (time.Duration, bool) {
	var rle *github.RateLimitError
	if errors.As(err, &rle) && rle.Response != nil && len(rle.Response.Header) == 0 {
		return max(rle.Rate.Reset.Time.Sub(now), 0) + resetSlack, true
	}
	var are *github.AbuseRateLimitError
	if errors.As(err, &are) && are.Response != nil && len(are.Response.Header) == 0 && are.RetryAfter != nil {
		return max(*are.RetryAfter, 0) + resetSlack, true
	}
	return 0, false
}
