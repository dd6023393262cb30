package ghclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/cenkalti/backoff/v4"

	"github.com/ghas-relay/ghas-relay/internal/logging"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
)

// Middleware wraps a RoundTripper; the App builds each installation's client
// as a chain of them (rate limits → in-flight cap → token refresh on 401 →
// installation auth → request counting → the shared base transport).
type Middleware func(http.RoundTripper) http.RoundTripper

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// RateLimit is the primary rate-limit state GitHub last reported for one
// budget (an installation, or the App itself for JWT calls).
type RateLimit struct {
	Limit     int
	Remaining int
	Used      int
	Reset     time.Time
	Resource  string
	Seen      time.Time // when the headers were read
}

// limiter tracks one budget's x-ratelimit-* headers and makes requests wait
// for the reset once the budget is spent.
type limiter struct {
	mu    sync.Mutex
	state RateLimit
	known bool
}

// observe records the rate-limit headers of a response, if it has them.
func (l *limiter) observe(h http.Header, now time.Time) {
	rem := h.Get("X-Ratelimit-Remaining")
	if rem == "" {
		return
	}
	r, err := strconv.Atoi(rem)
	if err != nil {
		return
	}
	st := RateLimit{Remaining: r, Resource: h.Get("X-Ratelimit-Resource"), Seen: now}
	st.Limit, _ = strconv.Atoi(h.Get("X-Ratelimit-Limit"))
	st.Used, _ = strconv.Atoi(h.Get("X-Ratelimit-Used"))
	if reset, err := strconv.ParseInt(h.Get("X-Ratelimit-Reset"), 10, 64); err == nil {
		st.Reset = time.Unix(reset, 0)
	}
	l.mu.Lock()
	l.state, l.known = st, true
	l.mu.Unlock()
}

// snapshot returns the last observed state.
func (l *limiter) snapshot() (RateLimit, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state, l.known
}

// untilReset is how long a request must wait before the budget has
// requests again: zero unless the last response said remaining 0 and the
// reset is still ahead.
func (l *limiter) untilReset(now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.known || l.state.Remaining > 0 || l.state.Reset.IsZero() {
		return 0
	}
	if d := l.state.Reset.Sub(now); d > 0 {
		return d + resetSlack
	}
	return 0
}

// resetSlack is added to waits for x-ratelimit-reset: the header has
// one-second resolution and clocks differ a little.
const resetSlack = 500 * time.Millisecond

// retryPolicy holds the limits of rateLimited.
type retryPolicy struct {
	maxRateLimitWait time.Duration // longest single wait for a primary reset
	maxElapsed       time.Duration // give up retrying after this long
	initial          time.Duration // first exponential backoff interval (5xx, network)
	secondaryMin     time.Duration // least wait after a secondary limit without Retry-After
}

// rateLimited returns the middleware that honours GitHub's rate limits for
// one budget: before a request it waits for x-ratelimit-reset when the
// budget is spent; it retries idempotent requests after a primary-limit 403
// (until the reset), a secondary-limit 403/429 (Retry-After, else backoff of
// at least secondaryMin), 5xx answers and network errors (exponential
// backoff), all bounded by the request's context and pol.maxElapsed. When it
// gives up it returns the last response, which the caller classifies as
// ErrRateLimited.
func rateLimited(logger *slog.Logger, l *limiter, pol retryPolicy) Middleware {
	return func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			ctx := req.Context()
			idempotent := (req.Method == http.MethodGet || req.Method == http.MethodHead) && req.Body == nil
			start := time.Now()
			bo := backoff.NewExponentialBackOff(
				backoff.WithInitialInterval(pol.initial),
				backoff.WithMaxInterval(2*time.Minute),
				backoff.WithMaxElapsedTime(0), // bounded below by maxElapsed
			)
			for attempt := 1; ; attempt++ {
				if d := l.untilReset(time.Now()); d > 0 {
					if d > pol.maxRateLimitWait {
						return nil, fmt.Errorf("%w: budget spent, reset in %s", ErrRateLimited, d.Round(time.Second))
					}
					logger.Warn("github rate limit spent, waiting for reset", slog.Duration("wait", d))
					if err := sleep(ctx, d); err != nil {
						return nil, err
					}
				}
				// A clone per attempt: ghinstallation's App transport writes
				// headers into the request it is given.
				resp, err := next.RoundTrip(req.Clone(ctx))
				now := time.Now()
				if err == nil {
					l.observe(resp.Header, now)
				}
				if !idempotent {
					return resp, err
				}
				wait, why := retryDecision(resp, err, now, bo, pol)
				if why == "" {
					return resp, err
				}
				if now.Add(wait).Sub(start) > pol.maxElapsed || (why == "primary" && wait > pol.maxRateLimitWait) {
					logger.Warn("github request gave up retrying", slog.String("reason", why), slog.Int("attempts", attempt))
					return resp, err
				}
				if resp != nil {
					drain(resp)
				}
				logger.Warn("github request retrying", slog.String("reason", why), slog.Duration("wait", wait), slog.Int("attempt", attempt), logging.Err(err))
				if err := sleep(ctx, wait); err != nil {
					return nil, err
				}
			}
		})
	}
}

// retryDecision says whether and how long to wait before retrying; an
// empty reason means the answer is final. It may replace resp.Body with a
// buffered copy to read the message.
func retryDecision(resp *http.Response, err error, now time.Time, bo *backoff.ExponentialBackOff, pol retryPolicy) (time.Duration, string) {
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrRateLimited) {
			return 0, ""
		}
		// A refused installation token request (bad App ID or key, suspended
		// installation) does not get better by retrying; a 5xx might.
		var he *ghinstallation.HTTPError
		if errors.As(err, &he) && he.Response != nil && he.Response.StatusCode < 500 {
			return 0, ""
		}
		return bo.NextBackOff(), "network"
	}
	switch resp.StatusCode {
	case http.StatusForbidden, http.StatusTooManyRequests:
		if d := retryAfter(resp.Header, now); d > 0 {
			return d, "retry-after"
		}
		if resp.Header.Get("X-Ratelimit-Remaining") == "0" {
			if reset, perr := strconv.ParseInt(resp.Header.Get("X-Ratelimit-Reset"), 10, 64); perr == nil {
				return max(time.Unix(reset, 0).Sub(now), 0) + resetSlack, "primary"
			}
			return max(bo.NextBackOff(), pol.secondaryMin), "primary"
		}
		msg := peekMessage(resp)
		if resp.StatusCode == http.StatusTooManyRequests || isSecondaryLimit(msg) {
			return max(bo.NextBackOff(), pol.secondaryMin), "secondary"
		}
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return bo.NextBackOff(), "server " + strconv.Itoa(resp.StatusCode)
	}
	return 0, ""
}

// peekMessage reads the error message of resp and puts the body back.
func peekMessage(resp *http.Response) string {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	msg, _ := parseErrorMessage(body)
	return msg
}

// drain reads a little of resp's body (so the connection is reused) and closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// inFlight returns the middleware that lets at most n requests of one
// installation be in flight at once. A slot is held from sending the request
// until its response body is closed.
func inFlight(n int) Middleware {
	sem := make(chan struct{}, n)
	return func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			select {
			case sem <- struct{}{}:
			case <-req.Context().Done():
				return nil, req.Context().Err()
			}
			release := sync.OnceFunc(func() { <-sem })
			resp, err := next.RoundTrip(req)
			if err != nil {
				release()
				return nil, err
			}
			resp.Body = &releaseBody{ReadCloser: resp.Body, release: release}
			return resp, nil
		})
	}
}

// releaseBody frees an in-flight slot when the body is closed.
type releaseBody struct {
	io.ReadCloser
	release func()
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}

// reauth is the middleware that answers a 401 "Bad credentials" (a token
// that expired early or was revoked; ghinstallation only refreshes by its
// own clock) by replacing the installation transport with a fresh one, so
// the next request fetches a new token, and retrying the request once.
type reauth struct {
	logger *slog.Logger
	fresh  func() http.RoundTripper
	mu     sync.Mutex
	cur    http.RoundTripper
}

func (t *reauth) RoundTrip(req *http.Request) (*http.Response, error) {
	t.mu.Lock()
	tr := t.cur
	t.mu.Unlock()
	resp, err := tr.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || req.Body != nil {
		return resp, err
	}
	drain(resp)
	t.mu.Lock()
	if t.cur == tr { // another request may have refreshed already
		t.cur = t.fresh()
		t.logger.Info("installation token refused, fetching a new one")
	}
	tr = t.cur
	t.mu.Unlock()
	return tr.RoundTrip(req.Clone(req.Context()))
}

// counted returns the middleware that counts requests by endpoint template
// and status in c (labels endpoint, status); basePath is the API prefix
// (e.g. /api/v3) stripped before templating.
func counted(c *metrics.CounterVec, basePath string) Middleware {
	return func(next http.RoundTripper) http.RoundTripper {
		if c == nil {
			return next
		}
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := next.RoundTrip(req)
			status := "error"
			if err == nil {
				status = strconv.Itoa(resp.StatusCode)
			}
			c.Inc(EndpointTemplate(basePath, req.URL.Path), status)
			return resp, err
		})
	}
}

// EndpointTemplate turns a request path into its endpoint template for
// metrics and errors: /api/v3/repos/o/r/code-scanning/alerts/7 with base path
// /api/v3 becomes /repos/{owner}/{repo}/code-scanning/alerts/{id}.
func EndpointTemplate(basePath, path string) string {
	path = strings.TrimPrefix(path, strings.TrimSuffix(basePath, "/"))
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i, s := range segs {
		switch {
		case i == 1 && (segs[0] == "orgs" || segs[0] == "users" || segs[0] == "enterprises"):
			segs[i] = "{" + strings.TrimSuffix(segs[0], "s") + "}"
		case i == 1 && segs[0] == "repos":
			segs[i] = "{owner}"
		case i == 2 && segs[0] == "repos":
			segs[i] = "{repo}"
		case s != "" && strings.Trim(s, "0123456789") == "":
			segs[i] = "{id}"
		}
	}
	return "/" + strings.Join(segs, "/")
}
