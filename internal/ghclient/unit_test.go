package ghclient

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

func TestParseLink(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
	}{
		{`<https://api.github.com/orgs/o/code-scanning/alerts?per_page=100&page=2>; rel="next", <https://api.github.com/orgs/o/code-scanning/alerts?per_page=100&page=9>; rel="last"`,
			map[string]string{"next": "https://api.github.com/orgs/o/code-scanning/alerts?per_page=100&page=2", "last": "https://api.github.com/orgs/o/code-scanning/alerts?per_page=100&page=9"}},
		// Dependabot: cursor-only, prev before next.
		{`<https://api.github.com/repos/o/r/dependabot/alerts?per_page=100&before=Y3Vyc29yOnYy>; rel="prev", <https://api.github.com/repos/o/r/dependabot/alerts?per_page=100&after=Y3Vyc29yOnYyOpK0>; rel="next"`,
			map[string]string{"prev": "https://api.github.com/repos/o/r/dependabot/alerts?per_page=100&before=Y3Vyc29yOnYy", "next": "https://api.github.com/repos/o/r/dependabot/alerts?per_page=100&after=Y3Vyc29yOnYyOpK0"}},
		{`<https://x/a,b>; title="a, b"; rel=next`, map[string]string{"next": "https://x/a,b"}},
		{`<https://x/1>; rel="next last"`, map[string]string{"next": "https://x/1", "last": "https://x/1"}},
		{``, map[string]string{}},
		{`garbage, <https://x/2>; rel="next"`, map[string]string{"next": "https://x/2"}},
		{`<https://x/3`, map[string]string{}},
	}
	for _, tt := range tests {
		got := ParseLink(tt.in)
		if len(got) != len(tt.want) {
			t.Errorf("ParseLink(%q) = %v, want %v", tt.in, got, tt.want)
			continue
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("ParseLink(%q)[%s] = %q, want %q", tt.in, k, got[k], v)
			}
		}
	}
}

// FuzzParseLink: never panics, and every URL it returns was between <> in the input.
func FuzzParseLink(f *testing.F) {
	f.Add(`<https://api.github.com/x?page=2>; rel="next", <https://api.github.com/x?page=3>; rel="last"`)
	f.Add(`<a>; rel="next"; title=",;<>", <b>; rel=prev`)
	f.Add(`<<>>;rel=""`)
	f.Fuzz(func(t *testing.T, s string) {
		for rel, u := range ParseLink(s) {
			if rel == "" || !strings.Contains(s, "<"+u+">") {
				t.Fatalf("ParseLink(%q) returned %q=%q not present in input", s, rel, u)
			}
		}
	})
}

func TestClassify(t *testing.T) {
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	tests := []struct {
		status int
		h      http.Header
		msg    string
		want   error
	}{
		{403, nil, "Advanced Security must be enabled for this repository to use code scanning.", ErrFeatureOff},
		{403, nil, "Code Security must be enabled for this repository to use code scanning.", ErrFeatureOff},
		{404, nil, "no analysis found", ErrFeatureOff},
		{403, nil, "Dependabot alerts are disabled for this repository.", ErrFeatureOff},
		{404, nil, "Secret scanning is disabled on this repository.", ErrFeatureOff},
		{403, nil, "Resource not accessible by integration", ErrForbidden},
		{404, nil, "Not Found", ErrNotFound},
		{401, nil, "Bad credentials", ErrUnauthorized},
		{403, h("X-Ratelimit-Remaining", "0"), "API rate limit exceeded for installation ID 1.", ErrRateLimited},
		{403, h("Retry-After", "60"), "You have exceeded a secondary rate limit.", ErrRateLimited},
		{403, nil, "You have exceeded a secondary rate limit. Please wait a few minutes", ErrRateLimited},
		{429, nil, "", ErrRateLimited},
		{500, nil, "Server Error", nil},
	}
	for _, tt := range tests {
		h := tt.h
		if h == nil {
			h = http.Header{}
		}
		if got := classify(tt.status, h, tt.msg); got != tt.want {
			t.Errorf("classify(%d, %q) = %v, want %v", tt.status, tt.msg, got, tt.want)
		}
	}
	ae := &APIError{Method: "GET", Endpoint: "/x", StatusCode: 404, Message: "no analysis found", kind: ErrFeatureOff}
	if !errors.Is(ae, ErrFeatureOff) || errors.Is(ae, ErrNotFound) {
		t.Fatalf("APIError does not unwrap to its kind")
	}
}

func TestEndpointTemplate(t *testing.T) {
	tests := map[[2]string]string{
		{"/", "/orgs/octo/dependabot/alerts"}:                     "/orgs/{org}/dependabot/alerts",
		{"/api/v3/", "/api/v3/repos/o/r/code-scanning/alerts/42"}: "/repos/{owner}/{repo}/code-scanning/alerts/{id}",
		{"/", "/app/installations/123/access_tokens"}:             "/app/installations/{id}/access_tokens",
		{"/", "/app/hook/deliveries/9"}:                           "/app/hook/deliveries/{id}",
		{"/api/v3", "/api/v3/installation/repositories"}:          "/installation/repositories",
	}
	for in, want := range tests {
		if got := EndpointTemplate(in[0], in[1]); got != want {
			t.Errorf("EndpointTemplate(%q, %q) = %q, want %q", in[0], in[1], got, want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := http.Header{}
	if retryAfter(h, now) != 0 {
		t.Fatal("absent header")
	}
	h.Set("Retry-After", "3")
	if retryAfter(h, now) != 3*time.Second {
		t.Fatal("seconds")
	}
	h.Set("Retry-After", now.Add(10*time.Second).Format(http.TimeFormat))
	if retryAfter(h, now) != 10*time.Second {
		t.Fatal("date")
	}
}

func TestKVETags(t *testing.T) {
	srv := streamtest.Run(t)
	_, js := srv.Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, stream.StateBucket)
	if err != nil {
		t.Fatal(err)
	}
	store := NewKVETags(kv)
	key := ETagKey("https://api.github.com/orgs/o/dependabot/alerts?per_page=100&after=abc")
	if !strings.HasPrefix(key, "etag.") || strings.ContainsAny(key, "?&=/:") {
		t.Fatalf("key %q is not a plain KV key", key)
	}
	if _, ok, err := store.Get(ctx, key); ok || err != nil {
		t.Fatalf("empty store: ok=%v err=%v", ok, err)
	}
	want := Validator{ETag: `W/"abc"`, Next: "https://api.github.com/x?after=1", Items: 100}
	if err := store.Put(ctx, key, want); err != nil {
		t.Fatal(err)
	}
	// Survives a server restart (file store).
	srv.Shutdown()
	srv.Start()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, ok, err := store.Get(ctx, key)
		if err == nil {
			if !ok || got != want {
				t.Fatalf("got %+v ok=%v, want %+v", got, ok, want)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("get after restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
