// Package ghtest is a fake GitHub REST API for tests and local demos, built
// on net/http/httptest. It owns an in-memory world — a GitHub App with
// installations (organisations and users), their repositories, code
// scanning, Dependabot and secret scanning alerts per repository, and the
// App's webhook deliveries — and serves it in the real response shapes
// (rendered from GitHub's own examples in samples/, a copy of
// testdata/rest):
//
//	GET  /app, /app/installations, /app/installations/{id}          (App JWT)
//	POST /app/installations/{id}/access_tokens                      (App JWT)
//	GET  /app/hook/deliveries (cursor), /app/hook/deliveries/{id}   (App JWT)
//	POST /app/hook/deliveries/{id}/attempts                         (App JWT)
//	GET  /installation/repositories                                 (installation token)
//	GET  /orgs/{org}/{kind}/alerts                                  (installation token)
//	GET  /repos/{owner}/{repo}/{kind}/alerts[/{number}]             (installation token)
//	GET  /rate_limit
//
// like GitHub it verifies JWTs against the App key and installation tokens
// (which expire, and can be revoked); paginates with real Link headers (page
// numbers for code and secret scanning, the `after` cursor only for
// Dependabot, `cursor` for deliveries); honours state, sort=updated and
// direction; sends an ETag with every GET and answers If-None-Match with
// 304 (free of rate limit, without a Link header); keeps an
// x-ratelimit-* budget per installation and answers 403 with remaining 0
// when it is spent; and answers 403/404 with GitHub's messages for features
// that are off. Tests inject faults (secondary limits with Retry-After,
// 5xx, failures after N pages) and latency, and read request counters and
// the highest number of requests in flight per installation.
//
// The fake needs no *testing.T: Start takes Options and returns a running
// server (a demo program serves it on a fixed address); New is the
// test-friendly wrapper that closes it at the end of the test.
package ghtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Kind is an alert kind as spelled in the REST paths.
type Kind string

// Alert kinds.
const (
	CodeScanning   Kind = "code-scanning"
	Dependabot     Kind = "dependabot"
	SecretScanning Kind = "secret-scanning"
)

// Kinds returns every alert kind.
func Kinds() []Kind { return []Kind{CodeScanning, Dependabot, SecretScanning} }

// Options configure a Server. The zero value is a github.com look-alike with
// GitHub's default budget.
type Options struct {
	// AppID is the App's ID (JWT issuer); default 1.
	AppID int64
	// ClientID is the App's client ID, which GitHub also accepts as the JWT
	// issuer; default "Iv23liFakeGhasRelay".
	ClientID string
	// PathPrefix is prepended to every route, "/api/v3" to look like GitHub
	// Enterprise Server; default none.
	PathPrefix string
	// Addr is the listen address; default a free loopback port.
	Addr string
	// RateLimit is the request budget per installation (and for the App's
	// JWT) per RateWindow; default 5000 per hour.
	RateLimit  int
	RateWindow time.Duration
	// TokenTTL is how long an installation token is valid; default 1 hour.
	TokenTTL time.Duration
	// Latency is added to every request.
	Latency time.Duration
	// PrivateKey is the App key; default a fresh 2048-bit RSA key.
	PrivateKey *rsa.PrivateKey
	// IgnoreHideSecret makes secret scanning alerts carry their "secret"
	// value even when the request asked hide_secret=true (a server that
	// does not honour the parameter).
	IgnoreHideSecret bool
}

// TB is the part of testing.TB that New uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Server is a running fake GitHub.
type Server struct {
	opts   Options
	key    *rsa.PrivateKey
	keyPEM []byte
	hs     *httptest.Server
	url    string // API base URL ending in "/"
	tpl    *templates

	mu            sync.Mutex
	version       uint64 // bumped on every change of alerts or repositories
	installs      map[int64]*installState
	installOrder  []int64
	repos         map[int64]*repoState
	reposByName   map[string]*repoState // lower-case full name
	tokens        map[string]tokenState
	budgets       map[int64]*budget // by installation id; 0 is the App
	deliveries    []*Delivery       // by id ascending
	faults        []*faultState
	latency       time.Duration
	nextID        int64
	cache         map[listKey]*listSnapshot
	stats         Stats
	inflight      map[int64]int
	inflightTotal int
}

// Installation is an installation of the App.
type Installation struct {
	ID        int64
	Account   string
	AccountID int64
	// Type is "Organization" or "User".
	Type      string
	Suspended bool
}

// Repository is a repository of an installation.
type Repository struct {
	ID             int64
	InstallationID int64
	Owner          string
	OwnerID        int64
	OwnerType      string
	Name           string
	FullName       string
	Private        bool
	Archived       bool
	CreatedAt      time.Time
}

// Alert is the state of one alert; the rest of its JSON comes from the
// sample templates (chosen by Template).
type Alert struct {
	Number int64
	// State: code scanning open|dismissed|fixed; Dependabot
	// open|dismissed|fixed|auto_dismissed; secret scanning open|resolved.
	State string
	// Resolution of a resolved secret (revoked, false_positive, ...).
	Resolution string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	// Template picks the sample the alert is rendered from (modulo their number).
	Template int
}

// Feature is whether a repository has an alert kind enabled.
type Feature int

// Feature states.
const (
	// FeatureOn: alerts are listed.
	FeatureOn Feature = iota
	// FeatureOff: GitHub's "not enabled" answer (code scanning 403 "Advanced
	// Security must be enabled...", Dependabot 403 "Dependabot alerts are
	// disabled...", secret scanning 404 "Secret scanning is disabled...").
	FeatureOff
	// NoAnalysis: code scanning enabled but never run: 404 "no analysis found".
	NoAnalysis
)

type installState struct {
	Installation
	orgRefused map[Kind]bool
	repoIDs    []int64
}

type repoState struct {
	Repository
	alerts   map[Kind][]Alert // by number ascending
	features map[Kind]Feature
	next     map[Kind]int64
	hidden   map[Kind]map[int64]bool // left out of listings, still served by GET
	full     []byte
	simple   []byte
}

type tokenState struct {
	installation int64
	expires      time.Time
}

type budget struct {
	limit, remaining int
	reset            time.Time
}

// Start builds the world and starts serving it.
func Start(opts Options) (*Server, error) {
	if opts.AppID == 0 {
		opts.AppID = 1
	}
	if opts.ClientID == "" {
		opts.ClientID = "Iv23liFakeGhasRelay"
	}
	if opts.RateLimit <= 0 {
		opts.RateLimit = 5000
	}
	if opts.RateWindow <= 0 {
		opts.RateWindow = time.Hour
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = time.Hour
	}
	opts.PathPrefix = "/" + strings.Trim(opts.PathPrefix, "/")
	if opts.PathPrefix == "/" {
		opts.PathPrefix = ""
	}
	key := opts.PrivateKey
	if key == nil {
		var err error
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return nil, fmt.Errorf("ghtest: generate key: %w", err)
		}
	}
	tpl, err := loadTemplates()
	if err != nil {
		return nil, fmt.Errorf("ghtest: templates: %w", err)
	}
	s := &Server{
		opts:        opts,
		key:         key,
		keyPEM:      pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		tpl:         tpl,
		installs:    map[int64]*installState{},
		repos:       map[int64]*repoState{},
		reposByName: map[string]*repoState{},
		tokens:      map[string]tokenState{},
		budgets:     map[int64]*budget{},
		latency:     opts.Latency,
		nextID:      1000,
		cache:       map[listKey]*listSnapshot{},
		inflight:    map[int64]int{},
	}
	s.stats.ByEndpoint = map[string]int{}
	s.stats.NotModifiedByEndpoint = map[string]int{}
	s.stats.MaxInFlightByInstallation = map[int64]int{}
	s.hs = httptest.NewUnstartedServer(s)
	if opts.Addr != "" {
		l, err := net.Listen("tcp", opts.Addr)
		if err != nil {
			return nil, fmt.Errorf("ghtest: listen %s: %w", opts.Addr, err)
		}
		s.hs.Listener.Close()
		s.hs.Listener = l
	}
	s.hs.Start()
	s.url = s.hs.URL + opts.PathPrefix + "/"
	return s, nil
}

// New starts a Server for a test and closes it when the test ends.
func New(t TB, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Close stops the server.
func (s *Server) Close() { s.hs.Close() }

// URL is the API base URL (GITHUB_API_URL), ending in "/", with the path
// prefix if any.
func (s *Server) URL() string { return s.url }

// AppID is the App's ID.
func (s *Server) AppID() int64 { return s.opts.AppID }

// ClientID is the App's client ID.
func (s *Server) ClientID() string { return s.opts.ClientID }

// PrivateKeyPEM is the App's private key in PKCS#1 PEM.
func (s *Server) PrivateKeyPEM() []byte { return slices.Clone(s.keyPEM) }

// Client returns an HTTP client for the server (plain transport).
func (s *Server) Client() *http.Client { return s.hs.Client() }

// id returns a fresh id. Callers hold s.mu.
func (s *Server) id() int64 { s.nextID++; return s.nextID }

// AddInstallation adds an installation on account; typ is "Organization" or "User".
func (s *Server) AddInstallation(account, typ string) Installation {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := &installState{
		Installation: Installation{ID: s.id(), Account: account, AccountID: s.id(), Type: typ},
		orgRefused:   map[Kind]bool{},
	}
	s.installs[in.ID] = in
	s.installOrder = append(s.installOrder, in.ID)
	s.version++
	return in.Installation
}

// SuspendInstallation suspends (or resumes) an installation: its token
// requests fail with 403.
func (s *Server) SuspendInstallation(id int64, suspended bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in := s.installs[id]; in != nil {
		in.Suspended = suspended
	}
}

// RefuseOrgEndpoint makes the organisation endpoint of kind answer 403
// "Resource not accessible by integration" for the installation.
func (s *Server) RefuseOrgEndpoint(installationID int64, kind Kind) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in := s.installs[installationID]; in != nil {
		in.orgRefused[kind] = true
	}
}

// AddRepository adds a repository named name to the installation's account.
func (s *Server) AddRepository(installationID int64, name string, private bool) Repository {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.installs[installationID]
	if in == nil {
		panic(fmt.Sprintf("ghtest: no installation %d", installationID))
	}
	r := &repoState{
		Repository: Repository{
			ID: s.id(), InstallationID: in.ID, Owner: in.Account, OwnerID: in.AccountID, OwnerType: in.Type,
			Name: name, FullName: in.Account + "/" + name, Private: private,
			CreatedAt: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(len(s.repos)) * time.Hour),
		},
		alerts:   map[Kind][]Alert{},
		features: map[Kind]Feature{},
		next:     map[Kind]int64{},
	}
	if err := s.fillRepository(r); err != nil {
		panic(fmt.Sprintf("ghtest: render repository: %v", err))
	}
	s.repos[r.ID] = r
	s.reposByName[strings.ToLower(r.FullName)] = r
	in.repoIDs = append(in.repoIDs, r.ID)
	s.version++
	return r.Repository
}

// RemoveRepository removes a repository (deleted, or taken out of the installation).
func (s *Server) RemoveRepository(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[id]
	if r == nil {
		return
	}
	delete(s.repos, id)
	delete(s.reposByName, strings.ToLower(r.FullName))
	if in := s.installs[r.InstallationID]; in != nil {
		in.repoIDs = slices.DeleteFunc(in.repoIDs, func(x int64) bool { return x == id })
	}
	s.version++
}

// SetFeature turns an alert kind on or off for a repository.
func (s *Server) SetFeature(repoID int64, kind Kind, f Feature) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.repos[repoID]; r != nil {
		r.features[kind] = f
		s.version++
	}
}

// AlertTime is the creation time of generated alert number n: one minute
// apart from 2024-01-01, so that every ordering is deterministic.
func AlertTime(n int64) time.Time {
	return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Minute)
}

// AddAlerts generates n alerts of kind in a repository, numbered after the
// existing ones, with states cycling deterministically (every 5th fixed or
// revoked, every 7th dismissed or false positive, the rest open).
func (s *Server) AddAlerts(repoID int64, kind Kind, n int) []Alert {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[repoID]
	if r == nil {
		panic(fmt.Sprintf("ghtest: no repository %d", repoID))
	}
	out := make([]Alert, 0, n)
	for range n {
		r.next[kind]++
		num := r.next[kind]
		a := Alert{Number: num, State: "open", CreatedAt: AlertTime(num), UpdatedAt: AlertTime(num).Add(30 * time.Second), Template: int(num)}
		switch {
		case num%5 == 0 && kind == SecretScanning:
			a.State, a.Resolution = "resolved", "revoked"
		case num%5 == 0:
			a.State = "fixed"
		case num%7 == 0 && kind == SecretScanning:
			a.State, a.Resolution = "resolved", "false_positive"
		case num%7 == 0:
			a.State = "dismissed"
		}
		r.alerts[kind] = append(r.alerts[kind], a)
		out = append(out, a)
	}
	s.version++
	return out
}

// PutAlert stores a (number 0: the next number) and returns it.
func (s *Server) PutAlert(repoID int64, kind Kind, a Alert) Alert {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[repoID]
	if r == nil {
		panic(fmt.Sprintf("ghtest: no repository %d", repoID))
	}
	if a.Number == 0 {
		r.next[kind]++
		a.Number = r.next[kind]
	}
	r.next[kind] = max(r.next[kind], a.Number)
	if a.CreatedAt.IsZero() {
		a.CreatedAt = AlertTime(a.Number)
	}
	if a.UpdatedAt.IsZero() {
		a.UpdatedAt = a.CreatedAt
	}
	list := r.alerts[kind]
	i, found := sort.Find(len(list), func(i int) int { return cmpInt(a.Number, list[i].Number) })
	if found {
		list[i] = a
	} else {
		list = slices.Insert(list, i, a)
	}
	r.alerts[kind] = list
	s.version++
	return a
}

// UpdateAlert changes one alert in place; false if there is none.
func (s *Server) UpdateAlert(repoID int64, kind Kind, number int64, change func(*Alert)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[repoID]
	if r == nil {
		return false
	}
	list := r.alerts[kind]
	i, found := sort.Find(len(list), func(i int) int { return cmpInt(number, list[i].Number) })
	if !found {
		return false
	}
	change(&list[i])
	list[i].Number = number
	s.version++
	return true
}

// DeleteAlert removes one alert.
func (s *Server) DeleteAlert(repoID int64, kind Kind, number int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.repos[repoID]; r != nil {
		r.alerts[kind] = slices.DeleteFunc(r.alerts[kind], func(a Alert) bool { return a.Number == number })
		s.version++
	}
}

// HideFromListings leaves one alert out of every listing (organisation and
// repository endpoints) while GET /repos/{owner}/{repo}/{kind}/alerts/{number}
// still returns it, or shows it again (hidden false): what a listing looks
// like to a client when its pages shift under concurrent deletions.
func (s *Server) HideFromListings(repoID int64, kind Kind, number int64, hidden bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[repoID]
	if r == nil {
		panic(fmt.Sprintf("ghtest: no repository %d", repoID))
	}
	if r.hidden == nil {
		r.hidden = map[Kind]map[int64]bool{}
	}
	if r.hidden[kind] == nil {
		r.hidden[kind] = map[int64]bool{}
	}
	if hidden {
		r.hidden[kind][number] = true
	} else {
		delete(r.hidden[kind], number)
	}
	s.version++
}

// Alerts returns a copy of a repository's alerts of kind.
func (s *Server) Alerts(repoID int64, kind Kind) []Alert {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.repos[repoID]; r != nil {
		return slices.Clone(r.alerts[kind])
	}
	return nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// SetLatency sets the delay added to every request.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// SetRateLimit sets an installation's budget (0: the App's) to remaining
// requests until resetIn from now; then it refills to Options.RateLimit.
func (s *Server) SetRateLimit(installationID int64, remaining int, resetIn time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.budgets[installationID] = &budget{limit: s.opts.RateLimit, remaining: remaining, reset: ceilSecond(time.Now().Add(resetIn))}
}

// RevokeTokens invalidates every installation token issued so far (as an
// early expiry or a revocation would); their next use gets 401 "Bad credentials".
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// ceilSecond rounds t up to a whole second (x-ratelimit-reset has seconds).
func ceilSecond(t time.Time) time.Time {
	if tr := t.Truncate(time.Second); !tr.Equal(t) {
		return tr.Add(time.Second)
	}
	return t
}
