package ghtest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"time"
)

// App and installation endpoints: the App, its installations, installation
// tokens, the rate-limit endpoint and the repositories an installation sees.

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
