package ghclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v62/github"
)

// Sentinel errors the callers test with errors.Is. Every error of a REST
// call that got an HTTP answer unwraps to go-github's typed error
// (*github.ErrorResponse, *github.RateLimitError,
// *github.AbuseRateLimitError) and to one of these (or to none, for 5xx
// answers that outlived the retries).
var (
	// ErrFeatureOff: the feature is not enabled for the repository or
	// organisation (403/404 "Advanced Security must be enabled", "no
	// analysis found", "Dependabot alerts are disabled", "Secret scanning is
	// disabled"). Record it in the report; retrying does not help.
	ErrFeatureOff = errors.New("feature not enabled")
	// ErrNotFound: 404 for another reason (repository gone, endpoint not
	// available, installation without access).
	ErrNotFound = errors.New("not found")
	// ErrForbidden: 403 that is neither a rate limit nor a disabled feature,
	// typically "Resource not accessible by integration" on an organisation
	// endpoint: fall back to the per-repository endpoints.
	ErrForbidden = errors.New("forbidden")
	// ErrUnauthorized: 401 even after a fresh installation token, or the App
	// JWT was refused (wrong App ID or key, clock skew).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrRateLimited: the rate limit did not recover within
	// Config.MaxRateLimitWait.
	ErrRateLimited = errors.New("rate limited")
	// ErrPagination: a listing's next link repeats a page, leaves the API
	// host, cannot be followed, or the listing exceeds Config.MaxPages.
	ErrPagination = errors.New("pagination stopped")
)

// classified is an error of a REST call with the sentinel it was
// classified as; it unwraps to both, so errors.Is finds the sentinel and
// errors.As finds go-github's (or ghinstallation's) error.
type classified struct {
	kind error
	err  error
	hint string // the setting to check, for errors of the App's credentials
}

func (c *classified) Error() string {
	s := c.err.Error() + " (" + c.kind.Error() + ")"
	if c.hint != "" {
		s += ": " + c.hint
	}
	return s
}

// Unwrap returns the sentinel and the underlying error.
func (c *classified) Unwrap() []error { return []error{c.kind, c.err} }

// classify wraps err with the sentinel its answer means; errors without an
// answer (network, context) and 5xx answers come back unchanged.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var rle *github.RateLimitError
	var are *github.AbuseRateLimitError
	if errors.As(err, &rle) || errors.As(err, &are) {
		return &classified{kind: ErrRateLimited, err: err}
	}
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		kind := kindOf(er.Response.StatusCode, er.Response.Header, er.Message)
		if kind == nil {
			return err
		}
		c := &classified{kind: kind, err: err}
		if kind == ErrUnauthorized && er.Response.Request != nil && strings.Contains(er.Response.Request.URL.Path, "/app/") {
			c.hint = credentialHint(er.Message)
		}
		return c
	}
	var he *ghinstallation.HTTPError
	if errors.As(err, &he) && he.Response != nil {
		// The installation token request was refused.
		msg := ""
		if he.Response.Body != nil {
			body, _ := io.ReadAll(io.LimitReader(he.Response.Body, 64<<10))
			he.Response.Body.Close()
			msg = peekMessage(body)
		}
		kind := kindOf(he.Response.StatusCode, he.Response.Header, msg)
		if kind == nil {
			return err
		}
		c := &classified{kind: kind, err: fmt.Errorf("installation token: %d %s: %w", he.Response.StatusCode, msg, err)}
		if kind == ErrUnauthorized {
			c.hint = credentialHint(msg)
		}
		return c
	}
	return err
}

// peekMessage is the message of a basic-error body, or "".
func peekMessage(body []byte) string {
	var e apiError
	_ = json.Unmarshal(body, &e)
	return e.Message
}

// credentialHint names the setting to check when GitHub refused the App's
// JWT: "Integration not found" means no App has that issuer; a JWT that
// cannot be decoded was signed with another key.
func credentialHint(msg string) string {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "integration not found"):
		return "GitHub knows no App with this GITHUB_APP_ID"
	case strings.Contains(m, "could not be decoded"), strings.Contains(m, "signature"):
		return "the App's key does not match GITHUB_APP_PRIVATE_KEY_FILE (or GITHUB_APP_PRIVATE_KEY)"
	case strings.Contains(m, "'exp'"), strings.Contains(m, "'iat'"):
		return "the JWT's times were refused: check this machine's clock"
	}
	return "check GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY_FILE"
}

// isFeatureOff reports whether msg is GitHub's way of saying a feature is
// off: lower-case fragments of the messages of github.com and GHES.
func isFeatureOff(msg string) bool {
	m := strings.ToLower(msg)
	for _, p := range []string{"must be enabled", "not enabled", "is disabled", "are disabled", "has been disabled", "no analysis found"} {
		if strings.Contains(m, p) {
			return true
		}
	}
	return false
}

// kindOf maps a status, the rate-limit headers and the message to a sentinel.
func kindOf(status int, h http.Header, msg string) error {
	switch {
	case status == http.StatusUnauthorized:
		return ErrUnauthorized
	case status == http.StatusTooManyRequests:
		return ErrRateLimited
	case status == http.StatusForbidden && (h.Get("Retry-After") != "" || h.Get("X-Ratelimit-Remaining") == "0" || isSecondaryLimit(apiError{Message: msg}) || strings.Contains(strings.ToLower(msg), "rate limit exceeded")):
		return ErrRateLimited
	case (status == http.StatusForbidden || status == http.StatusNotFound) && isFeatureOff(msg):
		return ErrFeatureOff
	case status == http.StatusForbidden:
		return ErrForbidden
	case status == http.StatusNotFound || status == http.StatusGone:
		return ErrNotFound
	}
	return nil
}

// StatusCode is the HTTP status of the REST answer behind err (go-github's
// typed errors), or 0 when err had none: a network error, or an
// installation token GitHub refused (a 404 there means the installation,
// not the requested resource, is gone).
func StatusCode(err error) int {
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode
	}
	var rle *github.RateLimitError
	if errors.As(err, &rle) && rle.Response != nil {
		return rle.Response.StatusCode
	}
	var are *github.AbuseRateLimitError
	if errors.As(err, &are) && are.Response != nil {
		return are.Response.StatusCode
	}
	return 0
}
