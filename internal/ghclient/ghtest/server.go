package ghtest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// reply is an answer before rate-limit headers and ETags are added.
type reply struct {
	status int
	body   []byte
	header http.Header
}

// jsonReply answers body with status.
func jsonReply(status int, body []byte) reply { return reply{status: status, body: body} }

// errReply is GitHub's basic-error answer.
func errReply(status int, msg string) reply {
	b, _ := json.Marshal(map[string]string{
		"message":           msg,
		"documentation_url": "https://docs.github.com/rest",
		"status":            strconv.Itoa(status),
	})
	return reply{status: status, body: b}
}

// route is one endpoint: the credential it wants and its handler.
type route struct {
	auth authKind
	h    func(r *http.Request, who principal, seg []string) reply
}

// match finds the route of method and path (prefix removed).
func (s *Server) match(method, path string) *route {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	n := len(seg)
	get := method == http.MethodGet || method == http.MethodHead
	switch {
	case get && n == 1 && seg[0] == "app":
		return &route{authJWT, s.getApp}
	case get && n == 2 && seg[0] == "app" && seg[1] == "installations":
		return &route{authJWT, s.listInstallations}
	case get && n == 3 && seg[0] == "app" && seg[1] == "installations":
		return &route{authJWT, s.getInstallation}
	case method == http.MethodPost && n == 4 && seg[0] == "app" && seg[1] == "installations" && seg[3] == "access_tokens":
		return &route{authJWT, s.createToken}
	case get && n == 3 && seg[0] == "app" && seg[1] == "hook" && seg[2] == "deliveries":
		return &route{authJWT, s.listDeliveries}
	case get && n == 4 && seg[0] == "app" && seg[1] == "hook" && seg[2] == "deliveries":
		return &route{authJWT, s.getDelivery}
	case get && n == 2 && seg[0] == "installation" && seg[1] == "repositories":
		return &route{authToken, s.listRepositories}
	case get && n == 4 && seg[0] == "orgs" && isKind(seg[2]) && seg[3] == "alerts":
		return &route{authToken, s.listOrgAlerts}
	case get && n == 5 && seg[0] == "repos" && isKind(seg[3]) && seg[4] == "alerts":
		return &route{authToken, s.listRepoAlerts}
	case get && n == 6 && seg[0] == "repos" && isKind(seg[3]) && seg[4] == "alerts":
		return &route{authToken, s.getAlert}
	case get && n == 1 && seg[0] == "rate_limit":
		return &route{authAny, s.getRateLimit}
	}
	return nil
}

func isKind(s string) bool { return slices.Contains(Kinds(), Kind(s)) }

// ServeHTTP serves the fake API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, s.opts.PathPrefix)
	s.mu.Lock()
	s.stats.Requests++
	s.stats.ByEndpoint[r.Method+" "+endpointTemplate(path)]++
	s.mu.Unlock()
	var rt *route
	if ok {
		rt = s.match(r.Method, path)
	}
	if rt == nil {
		s.write(w, r, errReply(http.StatusNotFound, "Not Found"), nil)
		return
	}
	who, deny := s.authenticate(r, rt.auth)
	if deny != nil {
		s.write(w, r, *deny, nil)
		return
	}
	s.enter(who.installation)
	defer s.leave(who.installation)

	s.mu.Lock()
	delay := s.latency
	f := s.matchFault(r.Method, path)
	s.mu.Unlock()
	if f != nil {
		delay += f.Delay
	}
	if delay > 0 && sleepCtx(r.Context(), delay) != nil {
		return
	}
	if f != nil && f.Status != 0 {
		rep := errReply(f.Status, f.Message)
		if f.RetryAfter > 0 {
			rep.header = http.Header{"Retry-After": {strconv.Itoa(int(math.Ceil(f.RetryAfter.Seconds())))}}
		}
		s.write(w, r, rep, s.budgetHeaders(who.installation))
		return
	}
	free := rt.auth == authAny // /rate_limit costs nothing
	if !free && !s.spend(who.installation) {
		s.mu.Lock()
		s.stats.RateLimited++
		s.mu.Unlock()
		msg := "API rate limit exceeded for installation ID " + strconv.FormatInt(who.installation, 10) + "."
		if who.installation == 0 {
			msg = "API rate limit exceeded for app ID " + strconv.FormatInt(s.opts.AppID, 10) + "."
		}
		s.write(w, r, errReply(http.StatusForbidden, msg), s.budgetHeaders(who.installation))
		return
	}
	rep := rt.h(r, who, strings.Split(strings.Trim(path, "/"), "/"))
	if rep.status == http.StatusOK && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		sum := sha256.Sum256(rep.body)
		etag := `W/"` + hex.EncodeToString(sum[:16]) + `"`
		if rep.header == nil {
			rep.header = http.Header{}
		}
		rep.header.Set("ETag", etag)
		if etagMatch(r.Header.Get("If-None-Match"), etag) {
			if !free {
				s.refund(who.installation)
			}
			s.mu.Lock()
			s.stats.NotModified++
			s.mu.Unlock()
			rep = reply{status: http.StatusNotModified, header: http.Header{"ETag": {etag}}}
		}
	}
	s.write(w, r, rep, s.budgetHeaders(who.installation))
}

// write sends rep with extra headers.
func (s *Server) write(w http.ResponseWriter, r *http.Request, rep reply, extra http.Header) {
	h := w.Header()
	maps.Copy(h, extra)
	maps.Copy(h, rep.header)
	h.Set("X-GitHub-Api-Version-Selected", "2022-11-28")
	h.Set("X-GitHub-Request-Id", fmt.Sprintf("FAKE:%d", time.Now().UnixNano()))
	if rep.status == http.StatusNotModified {
		w.WriteHeader(rep.status)
		return
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(rep.body)))
	w.WriteHeader(rep.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(rep.body)
	}
}

// etagMatch implements If-None-Match (weak comparison).
func etagMatch(inm, etag string) bool {
	if inm == "" {
		return false
	}
	strip := func(t string) string { return strings.TrimPrefix(strings.TrimSpace(t), "W/") }
	for _, t := range strings.Split(inm, ",") {
		if strings.TrimSpace(t) == "*" || strip(t) == strip(etag) {
			return true
		}
	}
	return false
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// endpointTemplate names a path for the counters:
// /repos/o/r/dependabot/alerts/3 → /repos/{owner}/{repo}/dependabot/alerts/{id}.
func endpointTemplate(path string) string {
	seg := strings.Split(strings.Trim(path, "/"), "/")
	for i, x := range seg {
		switch {
		case i == 1 && seg[0] == "orgs":
			seg[i] = "{org}"
		case i == 1 && seg[0] == "repos":
			seg[i] = "{owner}"
		case i == 2 && seg[0] == "repos":
			seg[i] = "{repo}"
		case x != "" && strings.Trim(x, "0123456789") == "":
			seg[i] = "{id}"
		}
	}
	return "/" + strings.Join(seg, "/")
}

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
	// ByEndpoint counts requests by "METHOD /path/{template}".
	ByEndpoint map[string]int
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
	st.MaxInFlightByInstallation = maps.Clone(s.stats.MaxInFlightByInstallation)
	return st
}

// ResetStats zeroes the counters.
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = Stats{ByEndpoint: map[string]int{}, MaxInFlightByInstallation: map[int64]int{}}
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
// limits how often (0: always). A fault with Status 0 only adds Delay.
type Fault struct {
	Method     string
	Path       string
	Skip       int
	Times      int
	Status     int
	Message    string
	RetryAfter time.Duration
	Delay      time.Duration
}

type faultState struct {
	Fault
	seen, fired int
}

// SecondaryLimit is GitHub's secondary rate limit: 403 with Retry-After.
func SecondaryLimit(path string, retryAfter time.Duration, times int) Fault {
	return Fault{
		Path: path, Times: times, Status: http.StatusForbidden, RetryAfter: retryAfter,
		Message: "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID FAKE.",
	}
}

// ServerError is a 500 fault.
func ServerError(path string, skip, times int) Fault {
	return Fault{Path: path, Skip: skip, Times: times, Status: http.StatusInternalServerError, Message: "Server Error"}
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
		if f.Status != 0 {
			s.stats.Faults++
		}
		out := f.Fault
		return &out
	}
	return nil
}

// --- App endpoints -------------------------------------------------------

func (s *Server) getApp(*http.Request, principal, []string) reply {
	doc := maps.Clone(s.tpl.app)
	doc["id"] = s.opts.AppID
	b, _ := json.Marshal(doc)
	return jsonReply(http.StatusOK, b)
}

// installationJSON renders an installation. Callers hold s.mu.
func (s *Server) installationJSON(in *installState) []byte {
	doc := maps.Clone(s.tpl.installation)
	acct := maps.Clone(doc["account"].(map[string]any))
	acct["login"], acct["id"], acct["type"] = in.Account, in.AccountID, in.Type
	acct["html_url"] = "https://github.com/" + in.Account
	acct["url"] = s.url + "users/" + in.Account
	doc["account"] = acct
	doc["id"], doc["app_id"], doc["target_id"], doc["target_type"] = in.ID, s.opts.AppID, in.AccountID, in.Type
	doc["access_tokens_url"] = fmt.Sprintf("%sapp/installations/%d/access_tokens", s.url, in.ID)
	doc["repositories_url"] = s.url + "installation/repositories"
	doc["repository_selection"] = "all"
	doc["permissions"] = map[string]string{"metadata": "read", "security_events": "read", "vulnerability_alerts": "read", "secret_scanning_alerts": "read"}
	doc["events"] = []string{"code_scanning_alert", "dependabot_alert", "secret_scanning_alert", "repository"}
	if in.Suspended {
		doc["suspended_at"] = "2024-01-01T00:00:00Z"
	}
	b, _ := json.Marshal(doc)
	return b
}

func (s *Server) listInstallations(r *http.Request, _ principal, _ []string) reply {
	s.mu.Lock()
	items := make([][]byte, 0, len(s.installOrder))
	for _, id := range s.installOrder {
		items = append(items, s.installationJSON(s.installs[id]))
	}
	s.mu.Unlock()
	return s.pageByNumber(r, items, nil)
}

func (s *Server) getInstallation(_ *http.Request, _ principal, seg []string) reply {
	id, _ := strconv.ParseInt(seg[2], 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.installs[id]
	if in == nil {
		return errReply(http.StatusNotFound, "Not Found")
	}
	return jsonReply(http.StatusOK, s.installationJSON(in))
}

func (s *Server) createToken(_ *http.Request, _ principal, seg []string) reply {
	id, _ := strconv.ParseInt(seg[2], 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.installs[id]
	if in == nil {
		return errReply(http.StatusNotFound, "Not Found")
	}
	if in.Suspended {
		return errReply(http.StatusForbidden, "This installation has been suspended")
	}
	tok, exp := s.newToken(id, time.Now())
	b, _ := json.Marshal(map[string]any{
		"token":                tok,
		"expires_at":           exp.UTC().Format(time.RFC3339),
		"permissions":          map[string]string{"metadata": "read", "security_events": "read", "vulnerability_alerts": "read", "secret_scanning_alerts": "read"},
		"repository_selection": "all",
	})
	return jsonReply(http.StatusCreated, b)
}

// Delivery is one webhook delivery attempt of the App.
type Delivery struct {
	ID             int64
	GUID           string
	DeliveredAt    time.Time
	Redelivery     bool
	Status         string // "OK" when delivered, else e.g. "Invalid HTTP Response: 503"
	StatusCode     int
	Event          string
	Action         string
	InstallationID int64
	RepositoryID   int64
	// Headers are the request headers (X-GitHub-Event etc. are added if missing).
	Headers map[string]string
	// Payload is the webhook body.
	Payload json.RawMessage
}

// AddDelivery records a delivery attempt (ID 0: the next id; zero
// DeliveredAt: now; empty Status: "OK" with 200).
func (s *Server) AddDelivery(d Delivery) Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.ID == 0 {
		d.ID = s.id()
	}
	if d.DeliveredAt.IsZero() {
		d.DeliveredAt = time.Now().UTC().Truncate(time.Second)
	}
	if d.Status == "" {
		d.Status, d.StatusCode = "OK", 200
	}
	h := maps.Clone(d.Headers)
	if h == nil {
		h = map[string]string{}
	}
	setDefault := func(k, v string) {
		if _, ok := h[k]; !ok {
			h[k] = v
		}
	}
	setDefault("X-GitHub-Delivery", d.GUID)
	setDefault("X-GitHub-Event", d.Event)
	setDefault("X-GitHub-Hook-ID", "42")
	setDefault("X-GitHub-Hook-Installation-Target-ID", strconv.FormatInt(s.opts.AppID, 10))
	setDefault("X-GitHub-Hook-Installation-Target-Type", "integration")
	setDefault("content-type", "application/json")
	d.Headers = h
	dd := d
	i, _ := slices.BinarySearchFunc(s.deliveries, d.ID, func(x *Delivery, id int64) int { return cmp.Compare(x.ID, id) })
	s.deliveries = slices.Insert(s.deliveries, i, &dd)
	return d
}

func deliverySummary(d *Delivery) map[string]any {
	m := map[string]any{
		"id": d.ID, "guid": d.GUID, "delivered_at": d.DeliveredAt.UTC().Format(time.RFC3339),
		"redelivery": d.Redelivery, "duration": 0.05, "status": d.Status, "status_code": d.StatusCode,
		"event": d.Event, "action": nil, "installation_id": nil, "repository_id": nil, "throttled_at": nil,
	}
	if d.Action != "" {
		m["action"] = d.Action
	}
	if d.InstallationID != 0 {
		m["installation_id"] = d.InstallationID
	}
	if d.RepositoryID != 0 {
		m["repository_id"] = d.RepositoryID
	}
	return m
}

func (s *Server) listDeliveries(r *http.Request, _ principal, _ []string) reply {
	s.mu.Lock()
	items := make([][]byte, 0, len(s.deliveries))
	for i := len(s.deliveries) - 1; i >= 0; i-- { // newest first
		b, _ := json.Marshal(deliverySummary(s.deliveries[i]))
		items = append(items, b)
	}
	s.mu.Unlock()
	return s.pageByCursor(r, items, "cursor")
}

func (s *Server) getDelivery(_ *http.Request, _ principal, seg []string) reply {
	id, _ := strconv.ParseInt(seg[3], 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := slices.BinarySearchFunc(s.deliveries, id, func(x *Delivery, id int64) int { return cmp.Compare(x.ID, id) })
	if !ok {
		return errReply(http.StatusNotFound, "Not Found")
	}
	d := s.deliveries[i]
	m := deliverySummary(d)
	m["url"] = "https://relay.example.com/webhook"
	payload := d.Payload
	if len(payload) == 0 {
		payload = json.RawMessage("{}")
	}
	m["request"] = map[string]any{"headers": d.Headers, "payload": payload}
	m["response"] = map[string]any{"headers": map[string]string{"Content-Type": "application/json"}, "payload": `{"status":"accepted"}`}
	b, err := json.Marshal(m)
	if err != nil {
		return errReply(http.StatusInternalServerError, err.Error())
	}
	return jsonReply(http.StatusOK, b)
}

func (s *Server) getRateLimit(_ *http.Request, who principal, _ []string) reply {
	s.mu.Lock()
	b := s.budgetOf(who.installation, time.Now())
	core := map[string]any{"limit": b.limit, "remaining": max(b.remaining, 0), "reset": b.reset.Unix(), "used": b.limit - max(b.remaining, 0), "resource": "core"}
	s.mu.Unlock()
	body, _ := json.Marshal(map[string]any{"resources": map[string]any{"core": core}, "rate": core})
	return jsonReply(http.StatusOK, body)
}

// --- installation endpoints ----------------------------------------------

func (s *Server) listRepositories(r *http.Request, who principal, _ []string) reply {
	s.mu.Lock()
	in := s.installs[who.installation]
	var items [][]byte
	if in != nil {
		for _, id := range in.repoIDs {
			items = append(items, s.repos[id].full)
		}
	}
	s.mu.Unlock()
	return s.pageByNumber(r, items, func(page []byte) []byte {
		return fmt.Appendf(nil, `{"total_count":%d,"repository_selection":"all","repositories":%s}`, len(items), page)
	})
}

// featureReply is GitHub's answer for a feature that is off, or nil.
func featureReply(kind Kind, f Feature) *reply {
	var rep reply
	switch {
	case f == FeatureOff && kind == CodeScanning:
		rep = errReply(http.StatusForbidden, "Advanced Security must be enabled for this repository to use code scanning.")
	case f == FeatureOff && kind == Dependabot:
		rep = errReply(http.StatusForbidden, "Dependabot alerts are disabled for this repository.")
	case f == FeatureOff && kind == SecretScanning:
		rep = errReply(http.StatusNotFound, "Secret scanning is disabled on this repository.")
	case f == NoAnalysis && kind == CodeScanning:
		rep = errReply(http.StatusNotFound, "no analysis found")
	default:
		return nil
	}
	return &rep
}

// repoFor finds owner/name for an installation. Callers hold s.mu.
func (s *Server) repoFor(who principal, owner, name string) *repoState {
	r := s.reposByName[strings.ToLower(owner+"/"+name)]
	if r == nil || r.InstallationID != who.installation {
		return nil
	}
	return r
}

func (s *Server) listOrgAlerts(r *http.Request, who principal, seg []string) reply {
	org, kind := seg[1], Kind(seg[2])
	s.mu.Lock()
	in := s.installs[who.installation]
	if in == nil || in.Type != "Organization" || !strings.EqualFold(in.Account, org) {
		s.mu.Unlock()
		return errReply(http.StatusNotFound, "Not Found")
	}
	if in.orgRefused[kind] {
		s.mu.Unlock()
		return errReply(http.StatusForbidden, "Resource not accessible by integration")
	}
	q := r.URL.Query()
	snap := s.snapshot(listKey{installation: in.ID, kind: kind, sort: q.Get("sort"), direction: q.Get("direction"), state: q.Get("state")}, func() []alertRef {
		var refs []alertRef
		for _, id := range in.repoIDs {
			rs := s.repos[id]
			if rs.features[kind] != FeatureOn {
				continue
			}
			for _, a := range rs.alerts[kind] {
				if !rs.hidden[kind][a.Number] {
					refs = append(refs, alertRef{repo: rs, alert: a})
				}
			}
		}
		return refs
	})
	s.mu.Unlock()
	return s.alertPage(r, kind, snap, true)
}

func (s *Server) listRepoAlerts(r *http.Request, who principal, seg []string) reply {
	kind := Kind(seg[3])
	s.mu.Lock()
	rs := s.repoFor(who, seg[1], seg[2])
	if rs == nil {
		s.mu.Unlock()
		return errReply(http.StatusNotFound, "Not Found")
	}
	if rep := featureReply(kind, rs.features[kind]); rep != nil {
		s.mu.Unlock()
		return *rep
	}
	q := r.URL.Query()
	snap := s.snapshot(listKey{repo: rs.ID, kind: kind, sort: q.Get("sort"), direction: q.Get("direction"), state: q.Get("state")}, func() []alertRef {
		refs := make([]alertRef, 0, len(rs.alerts[kind]))
		for _, a := range rs.alerts[kind] {
			if !rs.hidden[kind][a.Number] {
				refs = append(refs, alertRef{repo: rs, alert: a})
			}
		}
		return refs
	})
	s.mu.Unlock()
	return s.alertPage(r, kind, snap, false)
}

func (s *Server) getAlert(r *http.Request, who principal, seg []string) reply {
	kind := Kind(seg[3])
	num, err := strconv.ParseInt(seg[5], 10, 64)
	if err != nil {
		return errReply(http.StatusNotFound, "Not Found")
	}
	s.mu.Lock()
	rs := s.repoFor(who, seg[1], seg[2])
	if rs == nil {
		s.mu.Unlock()
		return errReply(http.StatusNotFound, "Not Found")
	}
	if rep := featureReply(kind, rs.features[kind]); rep != nil {
		s.mu.Unlock()
		return *rep
	}
	list := rs.alerts[kind]
	i, found := slices.BinarySearchFunc(list, num, func(a Alert, n int64) int { return cmp.Compare(a.Number, n) })
	var a Alert
	if found {
		a = list[i]
	}
	s.mu.Unlock()
	if !found {
		return errReply(http.StatusNotFound, "No alert found for alert number "+seg[5])
	}
	at := s.tpl.alerts[kind]
	tpls := at.single
	if kind == SecretScanning && r.URL.Query().Get("hide_secret") == "true" {
		tpls = at.singleNoSecret
	}
	return jsonReply(http.StatusOK, s.renderAlert(nil, kind, rs, a, tpls[a.Template%len(tpls)]))
}

// --- listings ----------------------------------------------------------------

type listKey struct {
	installation, repo     int64
	kind                   Kind
	sort, direction, state string
}

type alertRef struct {
	repo  *repoState
	alert Alert
}

type listSnapshot struct {
	version uint64
	refs    []alertRef
}

// snapshot returns the filtered, sorted alerts of a listing, cached until
// the world changes. Callers hold s.mu.
func (s *Server) snapshot(k listKey, collect func() []alertRef) []alertRef {
	if c := s.cache[k]; c != nil && c.version == s.version {
		return c.refs
	}
	refs := collect()
	if k.state != "" {
		want := strings.Split(k.state, ",")
		refs = slices.DeleteFunc(refs, func(x alertRef) bool {
			st := x.alert.State
			for _, w := range want {
				if w == st || (w == "closed" && (st == "fixed" || st == "dismissed")) {
					return false
				}
			}
			return true
		})
	}
	byUpdated := k.sort == "updated"
	asc := k.direction == "asc"
	slices.SortStableFunc(refs, func(a, b alertRef) int {
		ta, tb := a.alert.CreatedAt, b.alert.CreatedAt
		if byUpdated {
			ta, tb = a.alert.UpdatedAt, b.alert.UpdatedAt
		}
		c := ta.Compare(tb)
		if c == 0 {
			c = cmp.Compare(a.repo.ID, b.repo.ID)
		}
		if c == 0 {
			c = cmp.Compare(a.alert.Number, b.alert.Number)
		}
		if !asc {
			c = -c
		}
		return c
	})
	if len(s.cache) > 10000 {
		clear(s.cache)
	}
	s.cache[k] = &listSnapshot{version: s.version, refs: refs}
	return refs
}

// alertPage renders the requested page of a listing: Dependabot by cursor,
// the others by page number.
func (s *Server) alertPage(r *http.Request, kind Kind, refs []alertRef, org bool) reply {
	at := s.tpl.alerts[kind]
	tpls := at.repoList
	if org {
		tpls = at.orgList
	}
	if kind == SecretScanning && r.URL.Query().Get("hide_secret") == "true" {
		tpls = at.repoListNoSecret
		if org {
			tpls = at.orgListNoSecret
		}
	}
	render := func(lo, hi int) []byte {
		buf := make([]byte, 0, (hi-lo)*2048+2)
		buf = append(buf, '[')
		for i := lo; i < hi; i++ {
			if i > lo {
				buf = append(buf, ',')
			}
			a := refs[i].alert
			buf = s.renderAlert(buf, kind, refs[i].repo, a, tpls[a.Template%len(tpls)])
		}
		return append(buf, ']')
	}
	if kind == Dependabot {
		if r.URL.Query().Has("page") {
			return errReply(http.StatusBadRequest, "Pagination using the `page` parameter is not supported. Use the `before` and `after` cursors instead.")
		}
		return s.cursorPage(r, len(refs), "after", render)
	}
	return s.numberPage(r, len(refs), render, nil)
}

// perPage reads per_page (default 30, at most 100).
func perPage(q url.Values) int {
	n, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || n <= 0 {
		return 30
	}
	return min(n, 100)
}

// linkURL is the request URL with query q, absolute.
func (s *Server) linkURL(r *http.Request, q url.Values) string {
	return fmt.Sprintf("<%s%s?%s>", s.hs.URL, r.URL.Path, q.Encode())
}

// numberPage pages n items by page number with a GitHub Link header
// (next, last, first, prev); wrap, if set, wraps the JSON array.
func (s *Server) numberPage(r *http.Request, n int, render func(lo, hi int) []byte, wrap func([]byte) []byte) reply {
	q := r.URL.Query()
	per := perPage(q)
	page, err := strconv.Atoi(q.Get("page"))
	if err != nil || page < 1 {
		page = 1
	}
	lo := min((page-1)*per, n)
	hi := min(lo+per, n)
	body := render(lo, hi)
	if wrap != nil {
		body = wrap(body)
	}
	last := max((n+per-1)/per, 1)
	var links []string
	link := func(p int, rel string) {
		q2 := maps.Clone(q)
		q2.Set("page", strconv.Itoa(p))
		links = append(links, s.linkURL(r, q2)+`; rel="`+rel+`"`)
	}
	if page > 1 {
		link(page-1, "prev")
	}
	if page < last {
		link(page+1, "next")
		link(last, "last")
	}
	if page > 1 {
		link(1, "first")
	}
	rep := jsonReply(http.StatusOK, body)
	if len(links) > 0 {
		rep.header = http.Header{"Link": {strings.Join(links, ", ")}}
	}
	return rep
}

// pageByNumber pages pre-rendered items by page number.
func (s *Server) pageByNumber(r *http.Request, items [][]byte, wrap func([]byte) []byte) reply {
	return s.numberPage(r, len(items), func(lo, hi int) []byte {
		return append(append([]byte{'['}, bytes.Join(items[lo:hi], []byte{','})...), ']')
	}, wrap)
}

// pageByCursor pages pre-rendered items by an opaque cursor in param.
func (s *Server) pageByCursor(r *http.Request, items [][]byte, param string) reply {
	return s.cursorPage(r, len(items), param, func(lo, hi int) []byte {
		return append(append([]byte{'['}, bytes.Join(items[lo:hi], []byte{','})...), ']')
	})
}

// cursorPage pages n items with cursors (GitHub's cursor-only lists):
// Link has rel="next" with param=<cursor> while there is more, and
// rel="prev" with before=<cursor> after the first page.
func (s *Server) cursorPage(r *http.Request, n int, param string, render func(lo, hi int) []byte) reply {
	q := r.URL.Query()
	per := perPage(q)
	lo := 0
	if c := q.Get(param); c != "" {
		off, ok := decodeCursor(c)
		if !ok {
			return errReply(http.StatusBadRequest, "Invalid cursor")
		}
		lo = min(off, n)
	}
	hi := min(lo+per, n)
	rep := jsonReply(http.StatusOK, render(lo, hi))
	var links []string
	if lo > 0 {
		q2 := maps.Clone(q)
		q2.Del(param)
		q2.Set("before", encodeCursor(lo))
		links = append(links, s.linkURL(r, q2)+`; rel="prev"`)
	}
	if hi < n {
		q2 := maps.Clone(q)
		q2.Del("before")
		q2.Set(param, encodeCursor(hi))
		links = append(links, s.linkURL(r, q2)+`; rel="next"`)
	}
	if len(links) > 0 {
		rep.header = http.Header{"Link": {strings.Join(links, ", ")}}
	}
	return rep
}

func encodeCursor(off int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("v1:" + strconv.Itoa(off)))
}

func decodeCursor(c string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, false
	}
	rest, ok := strings.CutPrefix(string(b), "v1:")
	if !ok {
		return 0, false
	}
	off, err := strconv.Atoi(rest)
	return off, err == nil && off >= 0
}
