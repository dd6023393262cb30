package ghclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// Kind is a GitHub Advanced Security alert kind, spelled as in the REST paths.
type Kind string

// Alert kinds.
const (
	CodeScanning   Kind = "code-scanning"
	Dependabot     Kind = "dependabot"
	SecretScanning Kind = "secret-scanning"
)

// Kinds returns every alert kind.
func Kinds() []Kind { return []Kind{CodeScanning, Dependabot, SecretScanning} }

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	return k == CodeScanning || k == Dependabot || k == SecretScanning
}

// ListRequest selects one alert listing: the organisation endpoint when Org
// is set, else the repository endpoint of Owner/Repo.
type ListRequest struct {
	Kind  Kind
	Org   string
	Owner string
	Repo  string
	// State filters by GitHub's state ("open", "fixed", ...); empty lists
	// every state.
	State string
	// Sort and Direction order the listing; a delta pull uses "updated",
	// "desc" and stops at its watermark. Empty keeps GitHub's default
	// (created, desc).
	Sort      string
	Direction string
	// ETags, if set, makes every page a conditional request (a 304 costs no
	// rate limit). Leave it nil when the caller needs every item, e.g. a full
	// pull that marks absent alerts REMOVED.
	ETags ETagStore
}

// Page is one page of an alert listing.
type Page struct {
	// Items are the alerts of the page, raw JSON as GitHub sent them (but
	// without secret values). Empty when NotModified.
	Items []json.RawMessage
	// NotModified: the page is unchanged since its stored ETag (304).
	NotModified bool
	// UnchangedItems is, for a NotModified page, the number of alerts the page
	// had when it was last fetched in full.
	UnchangedItems int
	// ETag is the page's entity tag.
	ETag string
	// URL is the page's URL; Number its 1-based position in the listing.
	URL    string
	Number int
}

// path returns the endpoint path segments of r.
func (r ListRequest) path() ([]string, error) {
	if !r.Kind.Valid() {
		return nil, fmt.Errorf("unknown alert kind %q", r.Kind)
	}
	switch {
	case r.Org != "" && r.Owner == "" && r.Repo == "":
		return []string{"orgs", r.Org, string(r.Kind), "alerts"}, nil
	case r.Org == "" && r.Owner != "" && r.Repo != "":
		return []string{"repos", r.Owner, r.Repo, string(r.Kind), "alerts"}, nil
	}
	return nil, errors.New("list request needs Org, or Owner and Repo")
}

// target names the listing in errors.
func (r ListRequest) target() string {
	if r.Org != "" {
		return "org " + r.Org
	}
	return r.Owner + "/" + r.Repo
}

// ListAlerts walks one alert listing page by page as installation
// installationID through go-github: per_page=100, every state unless
// r.State, following the Link header (page numbers for code and secret
// scanning, the `after` cursor for Dependabot, which refuses `page`),
// hide_secret=true for secret scanning, whose items lose any secret value
// the server sent anyway. visit gets each page as it arrives and returns
// false to stop (a delta pull at its watermark). Errors unwrap to
// go-github's error and to ErrFeatureOff, ErrForbidden, ErrNotFound,
// ErrUnauthorized, ErrRateLimited or ErrPagination where they apply.
func (a *App) ListAlerts(ctx context.Context, installationID int64, r ListRequest, visit func(Page) (more bool, err error)) error {
	if err := a.listAlerts(ctx, installationID, r, visit); err != nil {
		return fmt.Errorf("list %s alerts of %s: %w", r.Kind, r.target(), err)
	}
	return nil
}

func (a *App) listAlerts(ctx context.Context, installationID int64, r ListRequest, visit func(Page) (bool, error)) error {
	segs, err := r.path()
	if err != nil {
		return err
	}
	q := url.Values{"per_page": {strconv.Itoa(PerPage)}}
	if r.State != "" {
		q.Set("state", r.State)
	}
	if r.Sort != "" {
		q.Set("sort", r.Sort)
	}
	if r.Direction != "" {
		q.Set("direction", r.Direction)
	}
	if r.Kind == SecretScanning {
		q.Set("hide_secret", "true")
	}
	return walkPages(ctx, a, a.installation(installationID), segs, q, r.ETags, func(fp *fetchedPage[json.RawMessage]) (bool, error) {
		page := Page{URL: fp.URL, Number: fp.Number, NotModified: fp.NotModified, ETag: fp.ETag}
		if fp.NotModified {
			page.UnchangedItems = fp.Stored.Items
		} else {
			if r.Kind == SecretScanning {
				for i := range fp.Items {
					fp.Items[i] = dropSecret(fp.Items[i])
				}
			}
			page.Items = fp.Items
		}
		return visit(page)
	})
}

// GetAlert fetches one alert of a repository as installation
// installationID and returns it as raw JSON (secret values removed).
func (a *App) GetAlert(ctx context.Context, installationID int64, kind Kind, owner, repo string, number int64) (json.RawMessage, error) {
	if !kind.Valid() {
		return nil, fmt.Errorf("get alert: unknown alert kind %q", kind)
	}
	var q url.Values
	if kind == SecretScanning {
		q = url.Values{"hide_secret": {"true"}}
	}
	c := a.installation(installationID)
	req, err := c.gh.NewRequest(http.MethodGet, relPath(q, "repos", owner, repo, string(kind), "alerts", strconv.FormatInt(number, 10)), nil)
	if err != nil {
		return nil, fmt.Errorf("get %s alert %s/%s#%d: %w", kind, owner, repo, number, err)
	}
	var body json.RawMessage
	if _, err := a.do(ctx, c, req, &body); err != nil {
		return nil, fmt.Errorf("get %s alert %s/%s#%d: %w", kind, owner, repo, number, classify(err))
	}
	if kind == SecretScanning {
		body = dropSecret(body)
	}
	return body, nil
}

// GetCodeScanningAlert fetches one code scanning alert (GET
// /repos/{owner}/{repo}/code-scanning/alerts/{number}) as raw JSON; unlike
// webhooks, it carries rule.security_severity_level (the processor's
// enrichment).
func (a *App) GetCodeScanningAlert(ctx context.Context, installationID int64, owner, repo string, number int64) (json.RawMessage, error) {
	return a.GetAlert(ctx, installationID, CodeScanning, owner, repo, number)
}
