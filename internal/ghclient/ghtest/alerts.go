package ghtest

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// Alert endpoints: organisation and repository listings, single alerts,
// features that are off, and the cached sorted snapshots listings page through.

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
			if rs.features[kind] != FeatureOn || archivedRefusal(rs, kind) {
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
	if rep := repoFeatureReply(rs, kind); rep != nil { // properties.go
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
	if rep := repoFeatureReply(rs, kind); rep != nil { // properties.go
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
	hide := kind == SecretScanning && s.hideSecret(r)
	if a.Raw != nil {
		return jsonReply(http.StatusOK, s.renderExample(nil, kind, rs, a, false, hide))
	}
	at := s.tpl.alerts[kind]
	tpls := at.single
	if hide {
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
	hide := kind == SecretScanning && s.hideSecret(r)
	if hide {
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
			if a.Raw != nil {
				buf = s.renderExample(buf, kind, refs[i].repo, a, org, hide)
				continue
			}
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

// hideSecret reports whether a secret scanning answer leaves out the
// secret value: the request asked so and the server honours it.
func (s *Server) hideSecret(r *http.Request) bool {
	return r.URL.Query().Get("hide_secret") == "true" && !s.opts.IgnoreHideSecret
}
