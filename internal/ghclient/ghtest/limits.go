package ghtest

import (
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Limits and faults: per-installation rate-limit budgets, request
// counters and requests in flight, and injected failures.

// --- budgets -----------------------------------------------------------

// budgetOf returns the current budget of an installation. Callers hold s.mu.
func (s *Server) budgetOf(id int64, now time.Time) *budget {
	b := s.budgets[id]
	if b == nil || !now.Before(b.reset) {
		b = &budget{limit: s.opts.RateLimit, remaining: s.opts.RateLimit, reset: ceilSecond(now.Add(s.opts.RateWindow))}
		s.budgets[id] = b
	}
	return b
}

// spend takes one request from the budget; false if it is spent.
func (s *Server) spend(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.budgetOf(id, time.Now())
	if b.remaining <= 0 {
		return false
	}
	b.remaining--
	return true
}

// refund gives back a request (a 304 costs nothing).
func (s *Server) refund(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.budgetOf(id, time.Now())
	b.remaining = min(b.remaining+1, b.limit)
}

// budgetHeaders are the x-ratelimit-* headers of an installation's budget.
func (s *Server) budgetHeaders(id int64) http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.budgetOf(id, time.Now())
	return http.Header{
		"X-Ratelimit-Limit":     {strconv.Itoa(b.limit)},
		"X-Ratelimit-Remaining": {strconv.Itoa(max(b.remaining, 0))},
		"X-Ratelimit-Used":      {strconv.Itoa(b.limit - max(b.remaining, 0))},
		"X-Ratelimit-Reset":     {strconv.FormatInt(b.reset.Unix(), 10)},
		"X-Ratelimit-Resource":  {"core"},
	}
}

// --- in flight and stats -------------------------------------------------

// Stats are the request counters of a Server.
type Stats struct {
	// Requests is every request received.
	Requests int
	// NotModified is the 304 answers.
	NotModified int
	// RateLimited is the 403 answers for a spent budget.
	RateLimited int
	// Faults is the injected fault answers.
	Faults int
	// TokensIssued is the installation tokens created.
	TokensIssued int
	// Redeliveries is the redelivery requests accepted
	// (POST /app/hook/deliveries/{id}/attempts).
	Redeliveries int
	// ByEndpoint counts requests by "METHOD /path/{template}".
	ByEndpoint map[string]int
	// NotModifiedByEndpoint counts the 304 answers the same way.
	NotModifiedByEndpoint map[string]int
	// MaxInFlight is the most requests handled at once; by installation
	// (0: the App's JWT calls) in MaxInFlightByInstallation.
	MaxInFlight               int
	MaxInFlightByInstallation map[int64]int
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.ByEndpoint = maps.Clone(s.stats.ByEndpoint)
	st.NotModifiedByEndpoint = maps.Clone(s.stats.NotModifiedByEndpoint)
	st.MaxInFlightByInstallation = maps.Clone(s.stats.MaxInFlightByInstallation)
	return st
}

// ResetStats zeroes the counters.
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = Stats{ByEndpoint: map[string]int{}, NotModifiedByEndpoint: map[string]int{}, MaxInFlightByInstallation: map[int64]int{}}
}

func (s *Server) enter(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight[id]++
	s.inflightTotal++
	s.stats.MaxInFlight = max(s.stats.MaxInFlight, s.inflightTotal)
	s.stats.MaxInFlightByInstallation[id] = max(s.stats.MaxInFlightByInstallation[id], s.inflight[id])
}

func (s *Server) leave(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight[id]--
	s.inflightTotal--
}

// --- faults ----------------------------------------------------------------

// Fault is an injected failure: requests whose path (without prefix)
// contains Path (and whose method is Method, if set) are answered with
// Status and Message after Delay, except the first Skip of them; Times
// limits how often (0: always). A fault with Status 0 only adds Delay (and
// RewriteLink); Drop closes the connection without an answer.
type Fault struct {
	Method           string
	Path             string
	Skip             int
	Times            int
	Status           int
	Message          string
	DocumentationURL string
	RetryAfter       time.Duration
	Delay            time.Duration
	// Drop closes the connection instead of answering (a network error).
	Drop bool
	// RewriteLink, with Status 0, replaces the Link header of the real
	// answer: it gets the absolute request URL and the header GitHub would
	// have sent.
	RewriteLink func(requestURL, link string) string
}

type faultState struct {
	Fault
	seen, fired int
}

// SecondaryLimit is GitHub's secondary rate limit: 403 with Retry-After.
func SecondaryLimit(path string, retryAfter time.Duration, times int) Fault {
	return Fault{
		Path: path, Times: times, Status: http.StatusForbidden, RetryAfter: retryAfter,
		DocumentationURL: "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
		Message:          "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID FAKE.",
	}
}

// ServerError is a 500 fault.
func ServerError(path string, skip, times int) Fault {
	return Fault{Path: path, Skip: skip, Times: times, Status: http.StatusInternalServerError, Message: "Server Error"}
}

// DropConnection closes the connection of matching requests without an
// answer (skip and times as in ServerError; times 0: forever).
func DropConnection(path string, skip, times int) Fault {
	return Fault{Path: path, Skip: skip, Times: times, Drop: true}
}

// RepeatingNext makes the rel="next" link of matching listing pages point
// at the page itself, after the first skip of them: a client that follows
// it blindly never ends.
func RepeatingNext(path string, skip int) Fault {
	return Fault{Path: path, Skip: skip, RewriteLink: func(requestURL, link string) string {
		return replaceNext(link, requestURL)
	}}
}

// ForeignNext makes the rel="next" link of matching listing pages point
// at another host (e.g. "evil.example"), same path and query.
func ForeignNext(path, host string) Fault {
	return Fault{Path: path, RewriteLink: func(_, link string) string {
		parts := strings.Split(link, ", ")
		for i, p := range parts {
			target, rel, ok := strings.Cut(p, ">; ")
			if !ok || rel != `rel="next"` {
				continue
			}
			if u, err := url.Parse(strings.TrimPrefix(target, "<")); err == nil {
				u.Host = host
				parts[i] = "<" + u.String() + ">; " + rel
			}
		}
		return strings.Join(parts, ", ")
	}}
}

// replaceNext sets the target of the rel="next" link of a Link header.
func replaceNext(link, target string) string {
	parts := strings.Split(link, ", ")
	for i, p := range parts {
		if strings.HasSuffix(p, `; rel="next"`) {
			parts[i] = "<" + target + `>; rel="next"`
		}
	}
	return strings.Join(parts, ", ")
}

// Inject adds a fault.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &faultState{Fault: f})
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// matchFault returns the fault that fires for this request, if any. Callers hold s.mu.
func (s *Server) matchFault(method, path string) *Fault {
	for _, f := range s.faults {
		if (f.Method != "" && f.Method != method) || !strings.Contains(path, f.Path) {
			continue
		}
		if f.Times > 0 && f.fired >= f.Times {
			continue
		}
		f.seen++
		if f.seen <= f.Skip {
			continue
		}
		f.fired++
		if f.Status != 0 || f.Drop {
			s.stats.Faults++
		}
		out := f.Fault
		return &out
	}
	return nil
}
