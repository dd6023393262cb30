package ghclient

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/metrics"
)

// Middleware wraps a RoundTripper; the App builds each installation's client
// as go-github over a chain of them (rate limits and retries → in-flight cap
// → token refresh on 401 → installation auth → request counting → the
// shared base transport).
type Middleware func(http.RoundTripper) http.RoundTripper

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

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
// until its response body is closed or read to the end.
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

// releaseBody frees an in-flight slot when the body is closed or read to
// its end: go-github reads an error answer's body and swaps in a buffered
// copy, so the original body is never closed.
type releaseBody struct {
	io.ReadCloser
	release func()
}

func (b *releaseBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.release()
	}
	return n, err
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
