package ghclient

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/go-github/v62/github"
)

// cursor is where the next page of a listing starts, as go-github read it
// from the Link header: a page number, Dependabot's `after` cursor, or the
// `cursor` of hook deliveries. The zero value means no next page.
type cursor struct {
	page   int
	after  string
	cursor string
}

// set applies the cursor to a list query.
func (c cursor) set(q url.Values) {
	q.Del("page")
	q.Del("after")
	q.Del("cursor")
	switch {
	case c.page > 0:
		q.Set("page", strconv.Itoa(c.page))
	case c.after != "":
		q.Set("after", c.after)
	case c.cursor != "":
		q.Set("cursor", c.cursor)
	}
}

func (c cursor) String() string {
	switch {
	case c.page > 0:
		return "page=" + strconv.Itoa(c.page)
	case c.after != "":
		return "after=" + c.after
	case c.cursor != "":
		return "cursor=" + c.cursor
	}
	return ""
}

// cursorOf is the next page go-github found in an answer. NextPage alone
// is not enough: Dependabot's cursor-only lists have no page numbers, and
// a listing that read only NextPage would silently stop after one page.
func cursorOf(resp *github.Response) cursor {
	switch {
	case resp.NextPage > 0:
		return cursor{page: resp.NextPage}
	case resp.After != "":
		return cursor{after: resp.After}
	case resp.Cursor != "":
		return cursor{cursor: resp.Cursor}
	}
	return cursor{}
}

// cursorOfURL is the next page named by a stored next-page URL (a 304
// answer carries no Link header, so the URL remembered with the page's
// ETag says where the listing goes on).
func cursorOfURL(u *url.URL) cursor {
	q := u.Query()
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 0 {
		return cursor{page: n}
	}
	if a := q.Get("after"); a != "" {
		return cursor{after: a}
	}
	return cursor{cursor: q.Get("cursor")}
}

// pager guards one listing's walk: it stops with ErrPagination on a next
// link to another host, a next link go-github could not read, a page that
// was already visited, and after max pages.
type pager struct {
	app   *App
	max   int
	pages int
	seen  map[string]bool
}

func (a *App) pager() *pager {
	return &pager{app: a, max: a.cfg.MaxPages, seen: map[string]bool{"": true}}
}

// next checks an answer's next link and returns the cursor of the next
// page; the zero cursor ends the listing. stored is the next-page URL
// remembered with the page's ETag, used when the answer has no Link.
func (p *pager) next(resp *github.Response, stored string) (cursor, error) {
	p.pages++
	link := nextLinkTarget(resp.Header)
	c := cursorOf(resp)
	if link == "" && c == (cursor{}) && stored != "" {
		link = stored
		if u, err := url.Parse(stored); err == nil {
			c = cursorOfURL(u)
		}
	}
	if link == "" && c == (cursor{}) {
		return cursor{}, nil
	}
	if link != "" {
		u, err := url.Parse(link)
		if err != nil || !p.app.sameOrigin(u) {
			return cursor{}, fmt.Errorf("%w: next link %q is not on %s", ErrPagination, link, p.app.base.Host)
		}
		if c == (cursor{}) {
			return cursor{}, fmt.Errorf("%w: next link %q has no page or cursor", ErrPagination, link)
		}
	}
	if p.seen[c.String()] {
		return cursor{}, fmt.Errorf("%w: next link repeats %s", ErrPagination, c)
	}
	if p.pages >= p.max {
		return cursor{}, fmt.Errorf("%w: more than %d pages", ErrPagination, p.max)
	}
	p.seen[c.String()] = true
	return c, nil
}

// nextLinkTarget returns the target of the rel="next" link of the Link
// headers, or "". It reads only as much as the guards need: go-github
// already parsed the page and cursor out of the same header.
func nextLinkTarget(h http.Header) string {
	for _, v := range h.Values("Link") {
		for _, part := range strings.Split(v, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
			if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			for _, p := range strings.Split(params, ";") {
				name, val, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(strings.TrimSpace(name), "rel") && strings.EqualFold(strings.Trim(strings.TrimSpace(val), `"`), "next") {
					return target[1 : len(target)-1]
				}
			}
		}
	}
	return ""
}
