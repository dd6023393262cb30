// Package page owns the console's pages people read: the overview at /
// (open findings, the top exposures with their priority factors, what
// changed since a chosen moment, owners and fix times, assets by source,
// the filters), the finding list at /findings, a finding with its history
// at /findings/{key}, the assets at /assets, and the stylesheet. The pages
// are rendered on the server from html/template with one embedded
// stylesheet and nothing else: no script, no outside asset. Every text
// that comes from a finding is data to the templates (attacker-controlled
// names and descriptions of imports included) and is escaped as such.
package page

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/console/api"
	"github.com/ghas-relay/ghas-relay/internal/console/index"
	"github.com/ghas-relay/ghas-relay/internal/logging"
)

//go:embed templates
var files embed.FS

// PageLimit is how many findings a list page shows, MaxAssets how many
// repositories the assets page shows.
const (
	PageLimit = 50
	MaxAssets = 500
	// RecentChanges is how many changes the overview lists.
	RecentChanges = 50
)

// Pages serves the pages.
type Pages struct {
	logger *slog.Logger
	ix     *index.Index
	api    *api.API
	now    func() time.Time
	tpl    map[string]*template.Template
	css    []byte
}

// New parses the templates.
func New(logger *slog.Logger, ix *index.Index, a *api.API, now func() time.Time) (*Pages, error) {
	p := &Pages{logger: logger, ix: ix, api: a, now: now, tpl: map[string]*template.Template{}}
	for _, name := range []string{"home", "findings", "finding", "assets", "error"} {
		t, err := template.New(name).Funcs(funcs()).ParseFS(files, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("page %s: %w", name, err)
		}
		p.tpl[name] = t
	}
	css, err := files.ReadFile("templates/style.css")
	if err != nil {
		return nil, err
	}
	p.css = css
	return p, nil
}

// Register adds the routes to mux.
func (p *Pages) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", p.home)
	mux.HandleFunc("GET /findings", p.findings)
	mux.HandleFunc("GET /findings/{key}", p.finding)
	mux.HandleFunc("GET /assets", p.assets)
	mux.HandleFunc("GET /style.css", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "max-age=300")
		_, _ = w.Write(p.css)
	})
}

// TimeLayout is how the pages write times: one format, with the zone.
const TimeLayout = "2006-01-02 15:04 UTC"

func funcs() template.FuncMap {
	when := func(s string) string {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return s
		}
		return t.UTC().Format(TimeLayout)
	}
	return template.FuncMap{
		"num": func(n int64) string { return thousands(n) },
		"int64": func(v any) int64 {
			switch x := v.(type) {
			case int:
				return int64(x)
			case int64:
				return x
			}
			return 0
		},
		"when": when,
		"whenT": func(t index.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.Time().Format(TimeLayout)
		},
		"points": func(n int) string {
			if n >= 0 {
				return "+" + strconv.Itoa(n)
			}
			return "−" + strconv.Itoa(-n)
		},
		"findingPath": func(key string) string { return "/findings/" + url.PathEscape(key) },
		"link": func(path string, kv ...string) string {
			v := url.Values{}
			for i := 0; i+1 < len(kv); i += 2 {
				v.Set(kv[i], kv[i+1])
			}
			return path + "?" + v.Encode()
		},
		"join": strings.Join,
		"deref": func(p *int) int {
			if p == nil {
				return 0
			}
			return *p
		},
		"fromTo": func(from, to any) string {
			if from == nil {
				return fmt.Sprintf("→ %v", to)
			}
			return fmt.Sprintf("%v → %v", from, to)
		},
	}
}

// thousands writes n with a thin grouping comma: 1,234,567.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// base is what the layout needs.
type base struct {
	Title string
	Now   string
}

func (p *Pages) base(title string) base {
	return base{Title: title, Now: p.now().UTC().Format(TimeLayout)}
}

// choices of the filter form.
type choices struct {
	Filter                      index.Filter
	Owners, Sources             []string
	Types, Statuses, Severities []string
}

func (p *Pages) choices(f index.Filter) choices {
	return choices{Filter: f, Owners: p.ix.Owners(), Sources: p.ix.Sources(), Types: index.Types, Statuses: index.Statuses, Severities: index.Severities}
}

// SinceChoice is a choice of the overview's changes window.
type SinceChoice struct{ Value, Label string }

// SinceChoices are the windows the overview offers; the first is the
// default.
var SinceChoices = []SinceChoice{{"24h", "yesterday (24 hours)"}, {"1h", "the last hour"}, {"7d", "7 days"}, {"30d", "30 days"}}

func (p *Pages) home(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since := q.Get("since")
	if since == "" {
		since = SinceChoices[0].Value
	}
	now := p.now()
	from, err := api.ParseMoment(strings.TrimSpace(since), now)
	if err != nil {
		p.fail(w, &api.ParamError{Parameter: "since", Msg: fmt.Sprintf("%q is neither a duration such as 24h or 7d nor an RFC 3339 time", since)})
		return
	}
	s, err := p.ix.Summary()
	if err != nil {
		p.fail(w, err)
		return
	}
	// Every change stored since then (as /api/changes without until).
	changes := p.ix.Changes(from, api.OpenEnd(), RecentChanges)
	changes.Until = now.UTC().Format(time.RFC3339)
	openBySource := map[string]int64{}
	for _, sc := range s.OpenBySource {
		openBySource[sc.Source] = sc.Open
	}
	sinceChoices := slices.Clone(SinceChoices)
	if !slices.ContainsFunc(sinceChoices, func(c SinceChoice) bool { return c.Value == since }) {
		sinceChoices = append(sinceChoices, SinceChoice{since, since})
	}
	p.render(w, http.StatusOK, "home", struct {
		base
		choices
		Summary      index.Summary
		Changes      index.Changes
		Since        string
		SinceChoices []SinceChoice
		Kinds        []string
		BySource     []index.SourceAssets
		OpenBySource map[string]int64
		TopOwners    int
	}{p.base("Overview"), p.choices(index.Filter{}), s, changes, since, sinceChoices,
		index.Kinds, p.ix.AssetsBySource(), openBySource, index.TopOwners})
}

// SortLink is a link to the other sort of the list.
type SortLink struct{ Href, Label string }

func (p *Pages) findings(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := api.ReadFilter(q)
	if err != nil {
		p.fail(w, err)
		return
	}
	sort := q.Get("sort")
	if sort != "" && !slices.Contains(index.Sorts, sort) {
		p.fail(w, &api.ParamError{Parameter: "sort", Msg: fmt.Sprintf("%q is not one of %s", sort, strings.Join(index.Sorts, ", "))})
		return
	}
	cursor := q.Get("cursor")
	page, err := p.ix.Findings(index.Query{Filter: f, Sort: sort, Limit: PageLimit, Cursor: cursor})
	if err != nil {
		p.fail(w, err)
		return
	}
	keep := url.Values{}
	for _, k := range append(slices.Clone(api.FilterParams), "sort") {
		if v := q.Get(k); v != "" {
			keep.Set(k, v)
		}
	}
	first := "/findings?" + keep.Encode()
	next := ""
	if page.Next != "" {
		nv := url.Values{}
		for k, v := range keep {
			nv[k] = v
		}
		nv.Set("cursor", page.Next)
		next = "/findings?" + nv.Encode()
	}
	other := url.Values{}
	for k, v := range keep {
		other[k] = v
	}
	label, otherLabel := "priority", "last found"
	if sort == "lastFoundOn" {
		label, otherLabel = "last found", "priority"
		other.Del("sort")
	} else {
		other.Set("sort", "lastFoundOn")
	}
	p.render(w, http.StatusOK, "findings", struct {
		base
		choices
		Page      index.Page
		Cursor    string
		First     string
		Next      string
		SortLabel string
		SortOther SortLink
	}{p.base("Findings"), p.choices(f), page, cursor, first, next, label, SortLink{"/findings?" + other.Encode(), otherLabel}})
}

func (p *Pages) finding(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	ans, ok, err := p.api.Finding(r.Context(), key)
	if err != nil {
		p.fail(w, err)
		return
	}
	if !ok {
		p.render(w, http.StatusNotFound, "error", errorData{p.base("Not found"), "There is no finding " + key + ".", ""})
		return
	}
	var doc struct {
		Findings []struct {
			Description string `json:"description"`
			FindingURL  string `json:"findingURL"`
		} `json:"findings"`
	}
	_ = json.Unmarshal(ans.Document, &doc)
	var pretty bytes.Buffer
	if json.Indent(&pretty, ans.Document, "", "  ") != nil {
		pretty.Write(ans.Document)
	}
	var description, link string
	if len(doc.Findings) > 0 {
		description = doc.Findings[0].Description
		// Only web links are shown as links (html/template would defuse
		// any other scheme, too).
		if u, err := url.Parse(doc.Findings[0].FindingURL); err == nil && (u.Scheme == "https" || u.Scheme == "http") {
			link = u.String()
		}
	}
	revs := slices.Clone(ans.Revisions)
	slices.Reverse(revs)
	p.render(w, http.StatusOK, "finding", struct {
		base
		Key         string
		Summary     *index.Item
		Description string
		Link        string
		Revisions   []api.RevisionWithDoc
		Document    string
	}{p.base(key), key, ans.Summary, description, link, revs, pretty.String()})
}

func (p *Pages) assets(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	only := false
	switch v := q.Get("only"); v {
	case "", "false":
	case "true":
		only = true
	default:
		p.fail(w, &api.ParamError{Parameter: "only", Msg: fmt.Sprintf("%q is not true or false", v)})
		return
	}
	source := q.Get("source")
	list, err := p.ix.Assets(index.AssetQuery{Source: source, Only: only})
	if err != nil {
		p.fail(w, err)
		return
	}
	total := len(list)
	truncated := total > MaxAssets
	if truncated {
		list = list[:MaxAssets]
	}
	p.render(w, http.StatusOK, "assets", struct {
		base
		Source    string
		Only      bool
		Sources   []string
		Assets    []index.Asset
		Total     int
		Truncated bool
	}{p.base("Assets"), source, only, p.ix.Sources(), list, total, truncated})
}

type errorData struct {
	base
	Message   string
	Parameter string
}

func (p *Pages) fail(w http.ResponseWriter, err error) {
	var pe *api.ParamError
	switch {
	case errors.As(err, &pe):
		p.render(w, http.StatusBadRequest, "error", errorData{p.base("Bad request"), pe.Msg, pe.Parameter})
	case errors.Is(err, index.ErrBadCursor), errors.Is(err, index.ErrCursorExpired):
		p.render(w, http.StatusBadRequest, "error", errorData{p.base("Bad request"), err.Error(), "cursor"})
	case errors.Is(err, index.ErrNotLoaded):
		w.Header().Set("Retry-After", "5")
		p.render(w, http.StatusServiceUnavailable, "error", errorData{p.base("Loading"), "The console is still loading the findings; try again in a few seconds.", ""})
	default:
		p.logger.Error("console page failed", logging.Err(err))
		p.render(w, http.StatusInternalServerError, "error", errorData{p.base("Error"), "Something went wrong; the console's log says what.", ""})
	}
}

func (p *Pages) render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := p.tpl[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		p.logger.Error("render page", slog.String(logging.KeyReason, name), logging.Err(err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
