package ghclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors the callers test with errors.Is. Every error of a REST call
// that got an HTTP answer is an *APIError that unwraps to one of them (or to
// none, for 5xx answers that outlived the retries).
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
	// ErrRateLimited: the rate limit did not recover within the configured
	// waits (Config.MaxRateLimitWait, Config.MaxRetryElapsed).
	ErrRateLimited = errors.New("rate limited")
)

// APIError is a non-success answer of the GitHub REST API. Its body follows
// GitHub's basic-error shape {message, documentation_url, status}.
type APIError struct {
	Method           string
	Endpoint         string // path template, e.g. /orgs/{org}/dependabot/alerts
	StatusCode       int
	Message          string
	DocumentationURL string
	kind             error
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	s := fmt.Sprintf("%s %s: %d %s", e.Method, e.Endpoint, e.StatusCode, msg)
	if e.kind != nil {
		s += " (" + e.kind.Error() + ")"
	}
	return s
}

// Unwrap returns the sentinel error the answer was classified as, or nil.
func (e *APIError) Unwrap() error { return e.kind }

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

// isSecondaryLimit reports whether msg is a secondary (abuse) rate-limit message.
func isSecondaryLimit(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "secondary rate limit") || strings.Contains(m, "abuse detection")
}

// errorBody is GitHub's basic-error shape.
type errorBody struct {
	Message          string `json:"message"`
	DocumentationURL string `json:"documentation_url"`
}

// parseErrorMessage extracts message and documentation_url from an error body;
// a body that is not JSON yields its first line as the message.
func parseErrorMessage(body []byte) (msg, doc string) {
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err == nil {
		return eb.Message, eb.DocumentationURL
	}
	s := strings.TrimSpace(string(body))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s, ""
}

// classify maps a status, the rate-limit headers and the message to a sentinel.
func classify(status int, h http.Header, msg string) error {
	switch {
	case status == http.StatusUnauthorized:
		return ErrUnauthorized
	case status == http.StatusTooManyRequests:
		return ErrRateLimited
	case status == http.StatusForbidden && (h.Get("Retry-After") != "" || h.Get("X-Ratelimit-Remaining") == "0" || isSecondaryLimit(msg) || strings.Contains(strings.ToLower(msg), "rate limit exceeded")):
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

// newAPIError reads (at most 64 KiB of) resp's body, closes it, and
// classifies the answer.
func newAPIError(method, endpoint string, resp *http.Response) *APIError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	msg, doc := parseErrorMessage(body)
	return &APIError{
		Method:           method,
		Endpoint:         endpoint,
		StatusCode:       resp.StatusCode,
		Message:          msg,
		DocumentationURL: doc,
		kind:             classify(resp.StatusCode, resp.Header, msg),
	}
}

// retryAfter parses a Retry-After header (seconds or HTTP date); 0 if absent.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
