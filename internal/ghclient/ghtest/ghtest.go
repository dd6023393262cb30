// Package ghtest is a fake GitHub REST API for tests and local demos, built
// on net/http/httptest. It owns an in-memory world — a GitHub App with
// installations (organisations and users), their repositories, code
// scanning, Dependabot and secret scanning alerts per repository, and the
// App's webhook deliveries — and serves it in the real response shapes
// (rendered from GitHub's own examples in samples/, a copy of
// testdata/rest; alerts added by AddExampleAlerts are GitHub's documented
// examples themselves, testdata/examples):
//
//	GET  /app, /app/installations, /app/installations/{id}          (App JWT)
//	POST /app/installations/{id}/access_tokens                      (App JWT)
//	GET  /app/hook/deliveries (cursor), /app/hook/deliveries/{id}   (App JWT)
//	POST /app/hook/deliveries/{id}/attempts                         (App JWT)
//	GET  /installation/repositories                                 (installation token)
//	GET  /orgs/{org}/{kind}/alerts                                  (installation token)
//	GET  /repos/{owner}/{repo}/{kind}/alerts[/{number}]             (installation token)
//	PATCH /repos/{owner}/{repo}/{kind}/alerts/{number}              (installation token; update.go)
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
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
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
	noWrite       map[Kind]bool // alert kinds the App may not update (update.go)
	updates       []AlertUpdate // accepted updates, in order
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
// sample templates (chosen by Template), or is Raw.
type Alert struct {
	Number int64
	// State: code scanning open|dismissed|fixed; Dependabot
	// open|dismissed|fixed|auto_dismissed; secret scanning open|resolved.
	State string
	// Resolution of a resolved secret (revoked, false_positive, ...).
	Resolution string
	// Updated: the state was last set by an update (update.go), whose
	// DismissedReason and DismissedComment (a dismissed alert) or
	// ResolutionComment (a resolved secret) the alert shows; else it
	// shows the samples' words.
	Updated           bool
	DismissedReason   string
	DismissedComment  string
	ResolutionComment string
	CreatedAt         time.Time
	UpdatedAt         time.Time
	// Template picks the sample the alert is rendered from (modulo their number).
	Template int
	// Raw, when set, is the whole alert as GitHub documents it (see
	// ExampleAlert): the fake serves it instead of a template, with this
	// world's number, URLs and repository. State, Resolution, CreatedAt
	// and UpdatedAt then only filter and sort listings; change the alert
	// by putting another Raw.
	Raw json.RawMessage
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
