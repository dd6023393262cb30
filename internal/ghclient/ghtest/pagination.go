package ghtest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Pagination: page-number and cursor pages with GitHub's Link headers.

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
