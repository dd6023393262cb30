package ghclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/google/go-github/v62/github"
)

// Installation is one installation of the App.
type Installation struct {
	ID int64
	// Account is the login of the organisation or user the App is installed on.
	Account   string
	AccountID int64
	// AccountType is "Organization" or "User".
	AccountType string
	// RepositorySelection is "all" or "selected".
	RepositorySelection string
	// Suspended is true when the installation is suspended (its token
	// requests fail with 403).
	Suspended bool
}

// IsOrganization reports whether the installation is on an organisation,
// whose organisation-level alert endpoints can be used.
func (i Installation) IsOrganization() bool { return i.AccountType == "Organization" }

// installationOf projects go-github's installation onto the fields the
// reconciler uses.
func installationOf(in *github.Installation) Installation {
	typ := in.GetTargetType()
	if typ == "" {
		typ = in.GetAccount().GetType()
	}
	return Installation{
		ID: in.GetID(), Account: in.GetAccount().GetLogin(), AccountID: in.GetAccount().GetID(), AccountType: typ,
		RepositorySelection: in.GetRepositorySelection(),
		Suspended:           in.SuspendedAt != nil,
	}
}

// Installations lists every installation of the App (GET /app/installations, JWT).
func (a *App) Installations(ctx context.Context) ([]Installation, error) {
	var out []Installation
	pg := a.pager()
	opts := &github.ListOptions{PerPage: PerPage}
	for {
		var items []*github.Installation
		resp, err := a.call(ctx, a.app, func() (*github.Response, error) {
			var err error
			var r *github.Response
			items, r, err = a.app.gh.Apps.ListInstallations(ctx, opts)
			return r, err
		})
		if err != nil {
			return nil, fmt.Errorf("list installations: %w", classify(err))
		}
		for _, in := range items {
			out = append(out, installationOf(in))
		}
		next, err := pg.next(resp, "")
		if err != nil {
			return nil, fmt.Errorf("list installations: %w", err)
		}
		if next == (cursor{}) {
			return out, nil
		}
		if next.page == 0 {
			return nil, fmt.Errorf("list installations: %w: cursor %s where page numbers were expected", ErrPagination, next)
		}
		opts.Page = next.page
	}
}

// Repository is one repository an installation can access. Raw is the
// repository object exactly as GitHub sent it (the asset fields of a finding
// come from it).
type Repository struct {
	ID            int64  `json:"id"`
	Name          string `json:"name"`
	FullName      string `json:"full_name"`
	Private       bool   `json:"private"`
	Archived      bool   `json:"archived"`
	Disabled      bool   `json:"disabled"`
	Visibility    string `json:"visibility"`
	HTMLURL       string `json:"html_url"`
	DefaultBranch string `json:"default_branch"`
	Owner         struct {
		Login string `json:"login"`
		ID    int64  `json:"id"`
		Type  string `json:"type"`
	} `json:"owner"`
	Raw json.RawMessage `json:"-"`
}

// Repositories lists the repositories installation id can access (GET
// /installation/repositories). The request and its pages go through
// go-github (client.NewRequest and Do); the repositories stay raw JSON
// rather than github.Repository, whose custom_properties
// (map[string]string) cannot hold multi-select properties and which drops
// fields the asset needs verbatim.
func (a *App) Repositories(ctx context.Context, installationID int64) ([]Repository, error) {
	c := a.installation(installationID)
	var out []Repository
	pg := a.pager()
	q := url.Values{"per_page": {strconv.Itoa(PerPage)}}
	for {
		req, err := c.gh.NewRequest(http.MethodGet, relPath(q, "installation", "repositories"), nil)
		if err != nil {
			return nil, fmt.Errorf("list repositories of installation %d: %w", installationID, err)
		}
		var page struct {
			Repositories []json.RawMessage `json:"repositories"`
		}
		resp, err := a.do(ctx, c, req, &page)
		if err != nil {
			return nil, fmt.Errorf("list repositories of installation %d: %w", installationID, classify(err))
		}
		for _, raw := range page.Repositories {
			var r Repository
			if err := json.Unmarshal(raw, &r); err != nil {
				return nil, fmt.Errorf("list repositories of installation %d: decode repository: %w", installationID, err)
			}
			r.Raw = raw
			out = append(out, r)
		}
		next, err := pg.next(resp, "")
		if err != nil {
			return nil, fmt.Errorf("list repositories of installation %d: %w", installationID, err)
		}
		if next == (cursor{}) {
			return out, nil
		}
		next.set(q)
	}
}
