package ghtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Repository facts and custom properties: topics, forks, archived
// repositories (whose Dependabot alerts GitHub refuses with 403), and GET /orgs/{org}/properties/values (single- and
// multi-select values, properties without a value, 403 when the App lacks
// the organisation permission "custom properties: read").
//
// A repository's properties live in its rendered object's
// custom_properties field, as GitHub's repository objects carry them, and
// the values endpoint reads them from there.

// refusedProperties marks, in an installation's refusals, that the App
// lacks the custom properties permission.
const refusedProperties Kind = "custom-properties"

// RepositoryFacts are the facts SetRepositoryFacts gives a repository.
type RepositoryFacts struct {
	Topics   []string
	Fork     bool
	Archived bool
	// Properties are custom property values: a string, a []string for a
	// multi-select property, or nil for a property without a value. Nil
	// Properties leaves custom_properties out of the repository object
	// (and out of the values endpoint).
	Properties map[string]any
}

// SetRepositoryFacts sets a repository's topics, fork and archived flags
// and custom properties, in its repository object and in the organisation's
// custom property values.
func (s *Server) SetRepositoryFacts(repoID int64, f RepositoryFacts) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[repoID]
	if r == nil {
		panic(fmt.Sprintf("ghtest: no repository %d", repoID))
	}
	r.Archived = f.Archived
	if err := s.fillRepository(r); err != nil {
		panic(fmt.Sprintf("ghtest: render repository: %v", err))
	}
	var doc map[string]any
	if err := json.Unmarshal(r.full, &doc); err != nil {
		panic(fmt.Sprintf("ghtest: repository %d: %v", repoID, err))
	}
	doc["topics"] = append([]string{}, f.Topics...)
	doc["fork"] = f.Fork
	delete(doc, "custom_properties")
	if f.Properties != nil {
		doc["custom_properties"] = f.Properties
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(fmt.Sprintf("ghtest: repository %d: %v", repoID, err))
	}
	r.full = b
	s.version++
}

// RefusePropertyValues makes GET /orgs/{org}/properties/values answer 403
// "Resource not accessible by integration" for the installation, as GitHub
// does when the App lacks the custom properties permission.
func (s *Server) RefusePropertyValues(installationID int64, refused bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in := s.installs[installationID]; in != nil {
		in.orgRefused[refusedProperties] = refused
	}
}

// listPropertyValues serves GET /orgs/{org}/properties/values: one item per
// repository of the organisation, in repository order, paged by number.
func (s *Server) listPropertyValues(r *http.Request, who principal, seg []string) reply {
	org := seg[1]
	s.mu.Lock()
	in := s.installs[who.installation]
	if in == nil || in.Type != "Organization" || !strings.EqualFold(in.Account, org) {
		s.mu.Unlock()
		return errReply(http.StatusNotFound, "Not Found")
	}
	if in.orgRefused[refusedProperties] {
		s.mu.Unlock()
		return errReply(http.StatusForbidden, "Resource not accessible by integration")
	}
	var items [][]byte
	for _, id := range in.repoIDs {
		rs := s.repos[id]
		var doc struct {
			Properties map[string]any `json:"custom_properties"`
		}
		_ = json.Unmarshal(rs.full, &doc)
		names := make([]string, 0, len(doc.Properties))
		for n := range doc.Properties {
			names = append(names, n)
		}
		slices.Sort(names)
		props := make([]map[string]any, 0, len(names))
		for _, n := range names {
			props = append(props, map[string]any{"property_name": n, "value": doc.Properties[n]})
		}
		b, _ := json.Marshal(map[string]any{
			"repository_id":        rs.ID,
			"repository_name":      rs.Name,
			"repository_full_name": rs.FullName,
			"properties":           props,
		})
		items = append(items, b)
	}
	s.mu.Unlock()
	return s.pageByNumber(r, items, func(page []byte) []byte { return page })
}

// archivedRefusal reports whether GitHub refuses a kind of alerts of a
// repository because it is archived: Dependabot alerts of an archived
// repository are not available (403 on the repository's listing and
// single alerts; the organisation listing leaves them out).
func archivedRefusal(rs *repoState, kind Kind) bool { return rs.Archived && kind == Dependabot }

// repoFeatureReply is the refusal of a repository's alert endpoint: an
// archived repository's Dependabot alerts, else a feature that is off;
// nil when the endpoint answers.
func repoFeatureReply(rs *repoState, kind Kind) *reply {
	if archivedRefusal(rs, kind) {
		rep := errReply(http.StatusForbidden, "Dependabot alerts are not available for archived repositories.")
		return &rep
	}
	return featureReply(kind, rs.features[kind])
}
