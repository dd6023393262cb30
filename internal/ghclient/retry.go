package ghclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/ghas-relay/ghas-relay/internal/retry"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/cenkalti/backoff/v4"
	"github.com/google/go-github/v62/github"

	"github.com/ghas-relay/ghas-relay/internal/logging"
)

// RateLimit is the primary rate-limit state GitHub last reported for one
// budget (an installation, or the App itself for JWT calls).
type RateLimit struct {
	Limit     int
	Remaining int
	Used      int
	Reset     time.Time
	Resource  string
	Seen      time.Time // when the answer was read
}

// limiter keeps one budget's rate information and makes requests wait for
// the reset once the budget is spent.
type limiter struct {
	mu    sync.Mutex
	state RateLimit
	known bool
}

// observe records go-github's rate information of an answer (plus the
// used and resource headers it does not parse), if the answer had any.
func (l *limiter) observe(r github.Rate, h http.Header, now time.Time) {
	if h.Get("X-Ratelimit-Remaining") == "" {
		return
	}
	st := RateLimit{Limit: r.Limit, Remaining: r.Remaining, Reset: r.Reset.Time, Resource: h.Get("X-Ratelimit-Resource"), Seen: now}
	st.Used, _ = strconv.Atoi(h.Get("X-Ratelimit-Used"))
	l.mu.Lock()
	l.state, l.known = st, true
	l.mu.Unlock()
}

// observeHeaders records the rate-limit headers of a response the
// middleware sees (before go-github does), so concurrent requests of the
// budget wait for the reset at once.
func (l *limiter) observeHeaders(h http.Header, now time.Time) {
	rem, err := strconv.Atoi(h.Get("X-Ratelimit-Remaining"))
	if err != nil {
		return
	}
	r := github.Rate{Remaining: rem}
	r.Limit, _ = strconv.Atoi(h.Get("X-Ratelimit-Limit"))
	if reset, err := strconv.ParseInt(h.Get("X-Ratelimit-Reset"), 10, 64); err == nil {
		r.Reset = github.Timestamp{Time: time.Unix(reset, 0)}
	}
	l.observe(r, h, now)
}

// snapshot returns the last observed state.
func (l *limiter) snapshot() (RateLimit, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state, l.known
}

// untilReset is how long a request must wait before the budget has
// requests again: zero unless the last answer said remaining 0 and the
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

// retryPolicy holds the bounds of rateLimited.
type retryPolicy struct {
	maxAttempts      int           // attempts of a request failing with 5xx or a network error
	maxElapsed       time.Duration // from the first such failure to giving up
	initial          time.Duration // first exponential backoff interval
	maxRateLimitWait time.Duration // all rate-limit waits of one request together
	secondaryMin     time.Duration // least wait after a secondary limit without Retry-After
}

// transientBackOff is the schedule of retries after 5xx answers and network
// errors: exponential from initial, at most maxAttempts attempts within
// maxElapsed, ending with ctx.
func (p retryPolicy) transientBackOff(ctx context.Context) backoff.BackOff {
	exp := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(p.initial),
		backoff.WithMultiplier(2),
		backoff.WithMaxInterval(30*time.Second),
		backoff.WithMaxElapsedTime(p.maxElapsed),
	)
	b := backoff.WithContext(backoff.WithMaxRetries(exp, uint64(max(p.maxAttempts-1, 0))), ctx)
	b.Reset()
	return b
}

// rateLimited returns the middleware that honours GitHub's rate limits for
// one budget and retries what may heal. Before a request it waits for
// x-ratelimit-reset when the budget is spent. It retries idempotent
// requests after a primary-limit 403 (at the reset), a secondary-limit
// 403/429 (Retry-After, else at least secondaryMin): these waits together
// are bounded by maxRateLimitWait. It retries 5xx answers and network
// errors with exponential backoff, at most maxAttempts attempts within
// maxElapsed. Errors that cannot heal (DNS names that do not exist, TLS
// certificate errors, 4xx other than rate limits, a refused installation
// token) are returned at once. When it gives up it returns the last answer
// or error, which go-github and classify turn into the caller's error.
func rateLimited(logger *slog.Logger, l *limiter, pol retryPolicy) Middleware {
	return func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			ctx := req.Context()
			// A write that sets a state (UpdateAlert) is retried like a read:
			// each attempt sends the body again.
			idempotent := (req.Method == http.MethodGet || req.Method == http.MethodHead) && req.Body == nil ||
				req.GetBody != nil && isRetriedWrite(ctx)
			var transient backoff.BackOff // from the first 5xx or network error
			var rateWaited time.Duration
			for attempt := 1; ; attempt++ {
				if d := l.untilReset(time.Now()); d > 0 {
					if rateWaited+d > pol.maxRateLimitWait {
						return nil, fmt.Errorf("%w: budget spent, reset in %s", ErrRateLimited, d.Round(time.Second))
					}
					logger.Warn("github rate limit spent, waiting for reset", slog.Duration(logging.KeyWait, d))
					if err := sleep(ctx, d); err != nil {
						return nil, err
					}
					rateWaited += d
				}
				// A clone per attempt: ghinstallation's App transport writes
				// headers into the request it is given.
				try := req.Clone(ctx)
				if attempt > 1 && req.GetBody != nil {
					body, err := req.GetBody()
					if err != nil {
						return nil, err
					}
					try.Body = body
				}
				resp, err := next.RoundTrip(try)
				now := time.Now()
				if err == nil {
					l.observeHeaders(resp.Header, now)
				}
				if !idempotent {
					return resp, err
				}
				d := retryDecision(resp, err, now, pol)
				var wait time.Duration
				switch d.kind {
				case final:
					return resp, err
				case rateLimit:
					if rateWaited+d.wait > pol.maxRateLimitWait {
						logger.Warn("github rate limit outlasts the wait allowed, giving up", slog.String(logging.KeyReason, d.reason), slog.Duration(logging.KeyWait, d.wait))
						return resp, err
					}
					wait = d.wait
					rateWaited += wait
				case transientFailure:
					if transient == nil {
						transient = pol.transientBackOff(ctx)
					}
					if wait = transient.NextBackOff(); wait == backoff.Stop {
						logger.Warn("github request gave up retrying", slog.String(logging.KeyReason, d.reason), slog.Int(logging.KeyAttempts, attempt), logging.Err(err))
						return resp, err
					}
				}
				if resp != nil {
					drain(resp)
				}
				logger.Warn("github request retrying", slog.String(logging.KeyReason, d.reason), slog.Duration(logging.KeyWait, wait), slog.Int(logging.KeyAttempt, attempt), logging.Err(err))
				if err := sleep(ctx, wait); err != nil {
					return nil, err
				}
			}
		})
	}
}

// decisionKind is what rateLimited does with an answer.
type decisionKind int

const (
	final            decisionKind = iota // return it
	rateLimit                            // wait (rate limit) and retry
	transientFailure                     // back off and retry, bounded
)

// decision is the verdict on one attempt.
type decision struct {
	kind   decisionKind
	wait   time.Duration // for rateLimit
	reason string
}

// retryDecision says whether an attempt's outcome is final, a rate limit to
// wait out, or a failure that may heal. It may replace resp.Body with a
// buffered copy to read the message.
func retryDecision(resp *http.Response, err error, now time.Time, pol retryPolicy) decision {
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrRateLimited) || cannotHeal(err) {
			return decision{kind: final}
		}
		return decision{kind: transientFailure, reason: "network"}
	}
	switch resp.StatusCode {
	case http.StatusForbidden, http.StatusTooManyRequests:
		if d := retry.ParseAfter(resp.Header.Get("Retry-After"), now); d > 0 {
			return decision{kind: rateLimit, wait: d, reason: "retry-after"}
		}
		if resp.Header.Get("X-Ratelimit-Remaining") == "0" {
			if reset, perr := strconv.ParseInt(resp.Header.Get("X-Ratelimit-Reset"), 10, 64); perr == nil {
				return decision{kind: rateLimit, wait: max(time.Unix(reset, 0).Sub(now), 0) + resetSlack, reason: "primary"}
			}
			return decision{kind: rateLimit, wait: pol.secondaryMin, reason: "primary"}
		}
		if resp.StatusCode == http.StatusTooManyRequests || isSecondaryLimit(peekError(resp)) {
			return decision{kind: rateLimit, wait: pol.secondaryMin, reason: "secondary"}
		}
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return decision{kind: transientFailure, reason: "server " + strconv.Itoa(resp.StatusCode)}
	}
	return decision{kind: final}
}

// cannotHeal reports whether a transport error will fail the same way
// however often it is retried: a host name that does not exist, a
// certificate that is not trusted or does not match, a server that does
// not speak TLS, or an installation token GitHub refused with a 4xx (bad
// App ID or key, suspended installation).
func cannotHeal(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return true
	}
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	var record tls.RecordHeaderError
	if errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify) || errors.As(err, &record) {
		return true
	}
	var he *ghinstallation.HTTPError
	if errors.As(err, &he) && he.Response != nil && he.Response.StatusCode < 500 {
		return true
	}
	return false
}

// apiError is GitHub's basic-error body.
type apiError struct {
	Message          string `json:"message"`
	DocumentationURL string `json:"documentation_url"`
}

// peekError reads the error body of resp and puts it back.
func peekError(resp *http.Response) apiError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var e apiError
	_ = json.Unmarshal(body, &e)
	return e
}

// isSecondaryLimit reports whether an error body is a secondary (abuse)
// rate limit: go-github's test (the documentation URL) or the message.
func isSecondaryLimit(e apiError) bool {
	m := strings.ToLower(e.Message)
	return strings.HasSuffix(e.DocumentationURL, "secondary-rate-limits") || strings.HasSuffix(e.DocumentationURL, "#abuse-rate-limits") ||
		strings.Contains(m, "secondary rate limit") || strings.Contains(m, "abuse detection")
}
