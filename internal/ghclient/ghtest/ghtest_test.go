package ghtest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	keyOnce sync.Once
	key     *rsa.PrivateKey
)

func testServer(t *testing.T, opts Options) *Server {
	keyOnce.Do(func() { key, _ = rsa.GenerateKey(rand.Reader, 2048) })
	opts.PrivateKey = key
	return New(t, opts)
}

// jwt signs claims the way GitHub Apps do.
func jwt(t *testing.T, k *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	enc := base64.RawURLEncoding
	hb, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT"})
	cb, _ := json.Marshal(claims)
	signing := enc.EncodeToString(hb) + "." + enc.EncodeToString(cb)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + enc.EncodeToString(sig)
}

func TestVerifyJWT(t *testing.T) {
	keyOnce.Do(func() { key, _ = rsa.GenerateKey(rand.Reader, 2048) })
	other, _ := rsa.GenerateKey(rand.Reader, 1024)
	now := time.Now()
	good := map[string]any{"iss": "12", "iat": now.Add(-30 * time.Second).Unix(), "exp": now.Add(90 * time.Second).Unix()}
	if err := verifyJWT(jwt(t, key, good), &key.PublicKey, 12, "Iv23liTest", now); err != nil {
		t.Fatalf("valid JWT refused: %v", err)
	}
	numericIss := map[string]any{"iss": 12, "iat": good["iat"], "exp": good["exp"]}
	if err := verifyJWT(jwt(t, key, numericIss), &key.PublicKey, 12, "Iv23liTest", now); err != nil {
		t.Fatalf("numeric iss refused: %v", err)
	}
	clientIss := map[string]any{"iss": "Iv23liTest", "iat": good["iat"], "exp": good["exp"]}
	if err := verifyJWT(jwt(t, key, clientIss), &key.PublicKey, 12, "Iv23liTest", now); err != nil {
		t.Fatalf("client ID as issuer refused: %v", err)
	}
	bad := map[string]string{
		"other key":    jwt(t, other, good),
		"wrong issuer": jwt(t, key, map[string]any{"iss": "13", "iat": good["iat"], "exp": good["exp"]}),
		"other client": jwt(t, key, map[string]any{"iss": "Iv23liOther", "iat": good["iat"], "exp": good["exp"]}),
		"expired":      jwt(t, key, map[string]any{"iss": "12", "iat": now.Add(-5 * time.Minute).Unix(), "exp": now.Add(-time.Minute).Unix()}),
		"too long":     jwt(t, key, map[string]any{"iss": "12", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}),
		"garbage":      "a.b.c",
	}
	tampered := jwt(t, key, good)
	bad["tampered"] = tampered[:len(tampered)-4] + "AAAA"
	for name, tok := range bad {
		if err := verifyJWT(tok, &key.PublicKey, 12, "Iv23liTest", now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// get sends a GET with an Authorization header and returns status, headers, body.
func get(t *testing.T, s *Server, url, auth string, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", auth)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// token gets an installation token through the App JWT.
func token(t *testing.T, s *Server, inst int64) string {
	t.Helper()
	now := time.Now()
	j := jwt(t, key, map[string]any{"iss": fmt.Sprint(s.AppID()), "iat": now.Add(-30 * time.Second).Unix(), "exp": now.Add(time.Minute).Unix()})
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%sapp/installations/%d/access_tokens", s.URL(), inst), nil)
	req.Header.Set("Authorization", "Bearer "+j)
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if resp.StatusCode != 201 || json.NewDecoder(resp.Body).Decode(&tok) != nil || !strings.HasPrefix(tok.Token, "ghs_") || tok.ExpiresAt.Before(now) {
		t.Fatalf("token: %d %+v", resp.StatusCode, tok)
	}
	return "token " + tok.Token
}

func TestListingsLikeGitHub(t *testing.T) {
	s := testServer(t, Options{TokenTTL: time.Hour})
	in := s.AddInstallation("octo-org", "Organization")
	r := s.AddRepository(in.ID, "repo", true)
	for _, k := range Kinds() {
		s.AddAlerts(r.ID, k, 150)
	}
	auth := token(t, s, in.ID)

	// Page-numbered Link for code scanning, with next and last.
	st, h, body := get(t, s, s.URL()+"orgs/octo-org/code-scanning/alerts?per_page=100", auth)
	links := h.Get("Link")
	if st != 200 || !strings.Contains(links, `page=2&per_page=100>; rel="next"`) || !strings.Contains(links, `rel="last"`) {
		t.Fatalf("code scanning: %d Link %q", st, links)
	}
	var items []map[string]any
	if err := json.Unmarshal(body, &items); err != nil || len(items) != 100 {
		t.Fatalf("code scanning page: %d items, %v", len(items), err)
	}
	first := items[0]
	repo, _ := first["repository"].(map[string]any)
	if first["number"].(float64) != 150 || first["rule"] == nil || first["most_recent_instance"] == nil || first["updated_at"] == nil ||
		repo["full_name"] != "octo-org/repo" || repo["id"].(float64) != float64(r.ID) {
		t.Fatalf("code scanning alert shape: %v", first)
	}
	if h.Get("X-Ratelimit-Remaining") != "4999" || h.Get("ETag") == "" {
		t.Fatalf("headers %v", h)
	}

	// 304 on If-None-Match, free of rate limit, without Link.
	st, h2, body := get(t, s, s.URL()+"orgs/octo-org/code-scanning/alerts?per_page=100", auth, "If-None-Match", h.Get("ETag"))
	if st != 304 || len(body) != 0 || h2.Get("X-Ratelimit-Remaining") != "4999" || h2.Get("Link") != "" {
		t.Fatalf("conditional: %d remaining %s link %q", st, h2.Get("X-Ratelimit-Remaining"), h2.Get("Link"))
	}

	// Dependabot: cursor only; page numbers refused.
	st, h, body = get(t, s, s.URL()+"repos/octo-org/repo/dependabot/alerts?per_page=100", auth)
	if st != 200 || !strings.Contains(h.Get("Link"), `after=`) || strings.Contains(h.Get("Link"), "?page=") || strings.Contains(h.Get("Link"), "&page=") {
		t.Fatalf("dependabot: %d Link %q", st, h.Get("Link"))
	}
	if !strings.Contains(string(body), `"cvss_severities"`) { // newer fields of the sample are served
		t.Fatalf("dependabot body lacks cvss_severities")
	}
	if st, _, _ := get(t, s, s.URL()+"repos/octo-org/repo/dependabot/alerts?page=2", auth); st != 400 {
		t.Fatalf("dependabot page=2: %d, want 400", st)
	}

	// Filters.
	_, _, body = get(t, s, s.URL()+"repos/octo-org/repo/secret-scanning/alerts?state=resolved&per_page=100&hide_secret=true", auth)
	items = nil
	_ = json.Unmarshal(body, &items)
	for _, it := range items {
		if it["state"] != "resolved" || it["resolution"] == nil || it["secret"] != nil {
			t.Fatalf("secret filter/hide: %v", it)
		}
	}
	if len(items) == 0 {
		t.Fatal("no resolved secrets")
	}

	// Tokens are checked; installation tokens cannot use JWT endpoints.
	if st, _, _ := get(t, s, s.URL()+"installation/repositories", "token ghs_nope"); st != 401 {
		t.Fatalf("bad token: %d", st)
	}
	if st, _, _ := get(t, s, s.URL()+"app/installations", auth); st != 401 {
		t.Fatalf("token on JWT endpoint: %d", st)
	}
	// Another installation's repository is invisible.
	other := s.AddInstallation("other", "Organization")
	if st, _, _ := get(t, s, s.URL()+"repos/octo-org/repo/code-scanning/alerts", token(t, s, other.ID)); st != 404 {
		t.Fatalf("foreign repository: %d", st)
	}
}

func TestRateLimitExhaustion(t *testing.T) {
	s := testServer(t, Options{RateLimit: 3})
	in := s.AddInstallation("o", "Organization")
	s.AddRepository(in.ID, "r", false)
	auth := token(t, s, in.ID)
	for i := range 3 {
		if st, h, _ := get(t, s, s.URL()+"installation/repositories", auth); st != 200 || h.Get("X-Ratelimit-Remaining") != fmt.Sprint(2-i) {
			t.Fatalf("request %d: %d remaining %s", i, st, h.Get("X-Ratelimit-Remaining"))
		}
	}
	st, h, body := get(t, s, s.URL()+"installation/repositories", auth)
	if st != 403 || h.Get("X-Ratelimit-Remaining") != "0" || !strings.Contains(string(body), "API rate limit exceeded") {
		t.Fatalf("spent: %d %v %s", st, h, body)
	}
	s.SetRateLimit(in.ID, 5, time.Minute) // a new window
	if st, _, _ := get(t, s, s.URL()+"installation/repositories", auth); st != 200 {
		t.Fatalf("after reset: %d", st)
	}
}

func TestSeedDemo(t *testing.T) {
	s := testServer(t, Options{})
	d := s.SeedDemo()
	if len(d.Repositories) != 4 || d.Org.Type != "Organization" || d.User.Type != "User" {
		t.Fatalf("demo %+v", d)
	}
	if n := len(s.Alerts(d.Repositories[0].ID, CodeScanning)); n != 12 {
		t.Fatalf("%d code scanning alerts", n)
	}
	auth := token(t, s, d.Org.ID)
	if st, _, body := get(t, s, s.URL()+"repos/octo-org/website/code-scanning/alerts", auth); st != 403 || !strings.Contains(string(body), "Advanced Security must be enabled") {
		t.Fatalf("feature off: %d %s", st, body)
	}
}

// A hidden alert is left out of both listings but still served by GET.
func TestHideFromListings(t *testing.T) {
	s := testServer(t, Options{})
	in := s.AddInstallation("octo-org", "Organization")
	r := s.AddRepository(in.ID, "repo", true)
	s.AddAlerts(r.ID, CodeScanning, 3)
	auth := token(t, s, in.ID)
	numbers := func(url string) []float64 {
		t.Helper()
		st, _, body := get(t, s, url, auth)
		var items []struct {
			Number float64 `json:"number"`
		}
		if err := json.Unmarshal(body, &items); st != 200 || err != nil {
			t.Fatalf("%s: %d, %v", url, st, err)
		}
		var out []float64
		for _, it := range items {
			out = append(out, it.Number)
		}
		return out
	}
	s.HideFromListings(r.ID, CodeScanning, 2, true)
	for _, u := range []string{s.URL() + "orgs/octo-org/code-scanning/alerts", s.URL() + "repos/octo-org/repo/code-scanning/alerts"} {
		if got := fmt.Sprint(numbers(u)); got != "[3 1]" {
			t.Errorf("%s with #2 hidden lists %s, want [3 1]", u, got)
		}
	}
	if st, _, body := get(t, s, s.URL()+"repos/octo-org/repo/code-scanning/alerts/2", auth); st != 200 || !strings.Contains(string(body), `"number":2`) {
		t.Errorf("GET of the hidden alert: %d %.80s", st, body)
	}
	s.HideFromListings(r.ID, CodeScanning, 2, false)
	if got := fmt.Sprint(numbers(s.URL() + "repos/octo-org/repo/code-scanning/alerts")); got != "[3 2 1]" {
		t.Errorf("shown again: lists %s, want [3 2 1]", got)
	}
}
