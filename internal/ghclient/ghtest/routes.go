package ghtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Routing: which handler and credential each request gets, the shared
// answer path (faults, rate-limit budget, ETags and 304s) and the writing of
// replies.

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
	return errReplyDoc(status, msg, "https://docs.github.com/rest")
}

// errReplyDoc is GitHub's basic-error answer with a documentation URL.
func errReplyDoc(status int, msg, doc string) reply {
	b, _ := json.Marshal(map[string]string{
		"message":           msg,
		"documentation_url": doc,
		"status":            strconv.Itoa(status),
	})
	return reply{status: status, body: b}
}

// dropConnection closes the connection without an answer: the client sees
// a network error.
func dropConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	conn.Close()
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
	case method == http.MethodPost && n == 5 && seg[0] == "app" && seg[1] == "hook" && seg[2] == "deliveries" && seg[4] == "attempts":
		return &route{authJWT, s.redeliver}
	case get && n == 2 && seg[0] == "installation" && seg[1] == "repositories":
		return &route{authToken, s.listRepositories}
	case get && n == 4 && seg[0] == "orgs" && seg[2] == "properties" && seg[3] == "values":
		return &route{authToken, s.listPropertyValues} // properties.go
	case get && n == 4 && seg[0] == "orgs" && isKind(seg[2]) && seg[3] == "alerts":
		return &route{authToken, s.listOrgAlerts}
	case get && n == 5 && seg[0] == "repos" && isKind(seg[3]) && seg[4] == "alerts":
		return &route{authToken, s.listRepoAlerts}
	case get && n == 6 && seg[0] == "repos" && isKind(seg[3]) && seg[4] == "alerts":
		return &route{authToken, s.getAlert}
	case method == http.MethodPatch && n == 6 && seg[0] == "repos" && isKind(seg[3]) && seg[4] == "alerts":
		return &route{authToken, s.updateAlert} // update.go
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
	if f != nil && f.Drop {
		dropConnection(w)
		return
	}
	if f != nil && f.Status != 0 {
		rep := errReply(f.Status, f.Message)
		if f.DocumentationURL != "" {
			rep = errReplyDoc(f.Status, f.Message, f.DocumentationURL)
		}
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
	if link := rep.header.Get("Link"); f != nil && f.RewriteLink != nil && link != "" {
		rep.header.Set("Link", f.RewriteLink(s.hs.URL+r.URL.RequestURI(), link))
	}
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
			s.stats.NotModifiedByEndpoint[r.Method+" "+endpointTemplate(path)]++
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
