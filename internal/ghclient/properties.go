package ghclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
)

// RepositoryProperties is one repository's custom property values as
// GET /orgs/{org}/properties/values lists them.
type RepositoryProperties struct {
	RepositoryID       int64  `json:"repository_id"`
	RepositoryName     string `json:"repository_name"`
	RepositoryFullName string `json:"repository_full_name"`
	// Properties are GitHub's list of {"property_name", "value"} (a
	// string, an array of strings for a multi-select property, or null),
	// raw.
	Properties json.RawMessage `json:"properties"`
}

// PropertiesPage is one page of an organisation's custom property values.
type PropertiesPage struct {
	// Items are the repositories of the page; empty when NotModified.
	Items []RepositoryProperties
	// NotModified: the page is unchanged since its stored ETag (304).
	NotModified bool
	// URL is the page's URL (its ETagKey names its validator); Number its
	// 1-based position.
	URL    string
	Number int
}

// ListPropertyValues walks the custom property values of every repository
// of org (GET /orgs/{org}/properties/values, 100 repositories a page) as
// installation installationID, calling visit for each page until it says
// stop. With etags every page is a conditional request (a 304 costs no rate
// limit); a page's validator is stored only after visit returned. Without
// the organisation permission "custom properties: read" GitHub answers 403
// (ErrForbidden).
func (a *App) ListPropertyValues(ctx context.Context, installationID int64, org string, etags ETagStore, visit func(PropertiesPage) (more bool, err error)) error {
	if err := a.listPropertyValues(ctx, installationID, org, etags, visit); err != nil {
		return fmt.Errorf("list custom property values of %s: %w", org, err)
	}
	return nil
}

func (a *App) listPropertyValues(ctx context.Context, installationID int64, org string, etags ETagStore, visit func(PropertiesPage) (bool, error)) error {
	segs := []string{"orgs", org, "properties", "values"}
	q := url.Values{"per_page": {strconv.Itoa(PerPage)}}
	return walkPages(ctx, a, a.installation(installationID), segs, q, etags, func(fp *fetchedPage[RepositoryProperties]) (bool, error) {
		return visit(PropertiesPage{URL: fp.URL, Number: fp.Number, NotModified: fp.NotModified, Items: fp.Items})
	})
}
