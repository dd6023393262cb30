package ghclient

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
)

// fetchedPage is one page of a conditional walk.
type fetchedPage[T any] struct {
	// URL is the page's URL (its ETagKey names its PageState); Number its
	// 1-based position.
	URL    string
	Number int
	// NotModified: GitHub answered 304 to the stored ETag; Items is empty
	// and Stored is what was remembered of the page.
	NotModified bool
	Stored      PageState
	// ETag is the answer's ETag (for a 304 without one, the stored one).
	ETag  string
	Items []T
}

// walkPages walks a paginated listing (relative path segs, query q) as
// installation client c, calling visit for each page until it returns
// false or the listing ends. With etags every page is a conditional
// request (a 304 costs no rate limit), and a page's state is stored only
// after visit returned, so a page whose processing failed is fetched in
// full next time.
func walkPages[T any](ctx context.Context, a *App, c *client, segs []string, q url.Values, etags ETagStore, visit func(*fetchedPage[T]) (bool, error)) error {
	pg := a.pager()
	for n := 1; ; n++ {
		req, err := c.gh.NewRequest(http.MethodGet, relPath(q, segs...), nil)
		if err != nil {
			return err
		}
		page := &fetchedPage[T]{URL: req.URL.String(), Number: n}
		var key string
		if etags != nil {
			key = ETagKey(page.URL)
			got, ok, err := etags.Get(ctx, key)
			if err != nil {
				return fmt.Errorf("etag get: %w", err)
			}
			if ok {
				page.Stored = got
				req.Header.Set("If-None-Match", got.ETag)
			}
		}
		var items []T
		resp, err := a.do(ctx, c, req, &items)
		page.NotModified = resp != nil && resp.Response != nil && resp.StatusCode == http.StatusNotModified
		if err != nil && !page.NotModified {
			return classify(err)
		}
		page.ETag = resp.Header.Get("ETag")
		stored := ""
		if page.NotModified {
			stored = page.Stored.Next
			if page.ETag == "" {
				page.ETag = page.Stored.ETag
			}
		} else {
			page.Items = items
		}
		next, err := pg.next(resp, stored)
		if err != nil {
			return err
		}
		more, err := visit(page)
		if err != nil {
			return err
		}
		if etags != nil && !page.NotModified && page.ETag != "" {
			nv := PageState{ETag: page.ETag, Items: len(items)}
			if next != (cursor{}) {
				nq := maps.Clone(q)
				next.set(nq)
				u, err := c.gh.BaseURL.Parse(relPath(nq, segs...))
				if err != nil {
					return err
				}
				nv.Next = u.String()
			}
			if err := etags.Put(ctx, key, nv); err != nil {
				return fmt.Errorf("etag put: %w", err)
			}
		}
		if !more || next == (cursor{}) {
			return nil
		}
		next.set(q)
	}
}
