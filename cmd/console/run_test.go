package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/console/api"
	"github.com/ghas-relay/ghas-relay/internal/console/index"
	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

const (
	ghCode   = "GitHub Advanced Security - Code Security"
	ghSecret = "GitHub Advanced Security - Secret Protection"
	claude   = "Anthropic - Claude Security"
)

// seeded is a world with the golden findings and a varied set of our own.
func seeded(t *testing.T) *world {
	w := newWorld(t)
	for _, d := range goldenDocs(t) {
		w.put(d)
	}
	sev := func(s string, p int) finding.Factor { return finding.Factor{Name: "severity", Value: s, Points: p} }
	for _, d := range []finding.Document{
		mkDoc("sast.9001.1", "acme/payments", "team-pay", ghCode, "SQL injection in checkout", "ACTIVE", "CRITICAL", 97, sev("CRITICAL", 90), finding.Factor{Name: "exposure", Value: "public", Points: 10}, finding.Factor{Name: "criticality", Value: "low", Points: -3}),
		mkDoc("sast.9001.2", "acme/payments", "team-pay", ghCode, "Reflected XSS", "ACTIVE", "HIGH", 70, sev("HIGH", 70)),
		mkDoc("secret.9001.3", "acme/payments", "team-pay", ghSecret, "Stripe key", "ACTIVE", "CRITICAL", 90, sev("CRITICAL", 90)),
		mkDoc("sca.9002.1", "acme/web", "team-web", ghCode, "lodash", "ACTIVE", "MEDIUM", 45, sev("MEDIUM", 45)),
		mkDoc("sast.9003.claude.c1", "acme/ml", "team-ml", claude, `<script>alert("x")</script> in notebook`, "ACTIVE", "HIGH", 72, sev("HIGH", 70)),
		mkDoc("sast.9002.claude.c2", "acme/web", "team-web", claude, "Open redirect", "ACTIVE", "LOW", 20, sev("LOW", 20)),
	} {
		w.put(d)
	}
	return w
}

// want lists the keys of w's current documents that keep holds, by
// priority as the list sorts them (score, then lastFoundOn, then key).
func (w *world) want(keep func(d finding.Document) bool) []string {
	var docs []finding.Document
	for _, d := range w.doc {
		if keep(d) {
			docs = append(docs, d)
		}
	}
	score := func(d finding.Document) int {
		if p := d.Findings[0].Priority; p != nil {
			return p.Score
		}
		return -1
	}
	last := func(d finding.Document) string {
		if l := d.Findings[0].LastFoundOn; l != nil {
			t, _ := time.Parse(time.RFC3339, *l)
			return t.UTC().Format(time.RFC3339)
		}
		return ""
	}
	slices.SortFunc(docs, func(a, b finding.Document) int {
		if score(a) != score(b) {
			return score(b) - score(a)
		}
		if c := strings.Compare(last(b), last(a)); c != 0 {
			return c
		}
		return strings.Compare(a.FindingKey, b.FindingKey)
	})
	var out []string
	for _, d := range docs {
		out = append(out, d.FindingKey)
	}
	return out
}

func itemKeys(p index.Page) []string {
	var out []string
	for _, it := range p.Findings {
		out = append(out, it.FindingKey)
	}
	return out
}

// TestAPI: the API over the golden findings and our own, loaded from KV.
func TestAPI(t *testing.T) {
	w := seeded(t)
	base, _ := startConsole(t, w, nil)

	var s index.Summary
	if code, body := get(t, base+"/api/summary", &s); code != http.StatusOK {
		t.Fatalf("summary: %d %s", code, body)
	}
	if len(s.TopExposures) == 0 || s.TopExposures[0].FindingKey != "sast.9001.1" || s.TopExposures[0].Priority.Score != 97 || len(s.TopExposures[0].Priority.Factors) != 3 {
		t.Errorf("top exposure %+v", s.TopExposures)
	}
	var open int64
	for _, d := range w.doc {
		if d.Findings[0].FindingStatus == finding.StatusActive {
			open++
		}
	}
	if s.Open != open || s.Findings != int64(len(w.doc)) {
		t.Errorf("summary: %d open of %d, want %d of %d", s.Open, s.Findings, open, len(w.doc))
	}
	if c := s.OpenByType["secret"]; c.Critical < 1 {
		t.Errorf("open secrets %+v", c)
	}

	for _, c := range []struct {
		query string
		keep  func(d finding.Document) bool
	}{
		{"", func(finding.Document) bool { return true }},
		{"severity=CRITICAL", func(d finding.Document) bool { return d.Findings[0].Severity == "CRITICAL" }},
		{"status=ACTIVE&type=sast", func(d finding.Document) bool {
			return d.Findings[0].FindingStatus == "ACTIVE" && d.FindingTypeName == finding.TypeSAST
		}},
		{"owner=team-web", func(d finding.Document) bool {
			return d.AssetDetail.Ownership != nil && d.AssetDetail.Ownership.Owner == "team-web"
		}},
		{"source=" + url.QueryEscape(claude), func(d finding.Document) bool { return d.Source == claude }},
		{"repository=acme/payments", func(d finding.Document) bool { return d.AssetDetail.FullName == "acme/payments" }},
		{"q=xss", func(d finding.Document) bool { return strings.Contains(strings.ToLower(d.Findings[0].Name), "xss") }},
	} {
		var p index.Page
		if code, body := get(t, base+"/api/findings?limit=1000&"+c.query, &p); code != http.StatusOK {
			t.Fatalf("%s: %d %s", c.query, code, body)
		}
		if got, want := itemKeys(p), w.want(c.keep); !slices.Equal(got, want) {
			t.Errorf("findings?%s:\n got %v\nwant %v", c.query, got, want)
		}
	}

	// A finding with its revisions, each with its document.
	golden := "sast.337911632.10"
	var f api.FindingAnswer
	if code, body := get(t, base+"/api/findings/"+golden, &f); code != http.StatusOK {
		t.Fatalf("finding: %d %s", code, body)
	}
	var doc finding.Document
	if err := json.Unmarshal(f.Document, &doc); err != nil || doc.FindingKey != golden || doc.Findings[0].FindingStatus != w.doc[golden].Findings[0].FindingStatus {
		t.Errorf("document %v %+v", err, doc)
	}
	puts := 0
	for _, d := range goldenDocs(t) {
		if d.FindingKey == golden {
			puts++
		}
	}
	if len(f.Revisions) != puts || puts < 2 {
		t.Errorf("%d revisions, want %d", len(f.Revisions), puts)
	}
	for _, r := range f.Revisions {
		if len(r.Document) == 0 || r.Sequence == 0 {
			t.Errorf("revision without its document: %+v", r.Revision)
		}
	}
	if code, body := get(t, base+"/api/findings/sast.1.404", nil); code != http.StatusNotFound || !strings.Contains(body, `"error"`) {
		t.Errorf("unknown finding: %d %s", code, body)
	}

	var assets struct {
		Assets   []index.Asset        `json:"assets"`
		BySource []index.SourceAssets `json:"bySource"`
	}
	if code, body := get(t, base+"/api/assets?only=true&source="+url.QueryEscape(claude), &assets); code != http.StatusOK {
		t.Fatalf("assets: %d %s", code, body)
	}
	if len(assets.Assets) != 1 || assets.Assets[0].Repository != "acme/ml" || assets.Assets[0].Owner != "team-ml" {
		t.Errorf("assets only Claude sees: %+v", assets.Assets)
	}
	get(t, base+"/api/assets", &assets)
	for _, a := range assets.Assets {
		if a.Repository == "acme/web" && !slices.Equal(a.Sources, []string{claude, ghCode}) {
			t.Errorf("acme/web sources %v", a.Sources)
		}
	}

	var ch index.Changes
	if code, body := get(t, base+"/api/changes?since=1h", &ch); code != http.StatusOK {
		t.Fatalf("changes: %d %s", code, body)
	}
	if ch.Counts[index.KindNew] == 0 || ch.Total == 0 {
		t.Errorf("changes since an hour: %+v", ch.Counts)
	}
}

// Bad parameters are 400 naming the parameter.
func TestBadParameters(t *testing.T) {
	w := seeded(t)
	base, _ := startConsole(t, w, nil)
	for path, param := range map[string]string{
		"/api/findings?severity=BAD":                  "severity",
		"/api/findings?type=dast":                     "type",
		"/api/findings?status=OPEN":                   "status",
		"/api/findings?sort=name":                     "sort",
		"/api/findings?limit=0":                       "limit",
		"/api/findings?limit=abc":                     "limit",
		"/api/findings?limit=100000":                  "limit",
		"/api/findings?cursor=nonsense":               "cursor",
		"/api/findings?repository=justaname":          "repository",
		"/api/findings?sevrity=HIGH":                  "sevrity",
		"/api/findings?type=sast&type=sca":            "type",
		"/api/changes?since=yesterday":                "since",
		"/api/changes?until=later":                    "until",
		"/api/changes?since=1h&until=2h":              "until",
		"/api/changes?limit=-1":                       "limit",
		"/api/assets?only=maybe":                      "only",
		"/api/summary?x=1":                            "x",
		"/api/findings?q=" + strings.Repeat("a", 201): "q",
	} {
		code, body := get(t, base+path, nil)
		var e api.ErrorBody
		_ = json.Unmarshal([]byte(body), &e)
		if code != http.StatusBadRequest || e.Parameter != param || e.Error == "" {
			t.Errorf("%s: %d %s, want 400 naming %s", path, code, body, param)
		}
	}
}

// Tokens: a bearer token or the Basic password under any user name; no
// token, a wrong one: 401 with a Basic challenge a browser answers.
func TestTokens(t *testing.T) {
	w := newWorld(t)
	base, _ := startConsole(t, w, map[string]string{"CONSOLE_TOKENS": "first-token, " + testToken})
	do := func(path string, set func(r *http.Request)) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if set != nil {
			set(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, path := range []string{"/api/summary", "/", "/findings", "/style.css"} {
		for name, set := range map[string]func(*http.Request){
			"none":          nil,
			"wrong bearer":  func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") },
			"wrong basic":   func(r *http.Request) { r.SetBasicAuth("me", "nope") },
			"token as user": func(r *http.Request) { r.SetBasicAuth(testToken, "") },
		} {
			resp := do(path, set)
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Basic realm="ghas-relay console", charset="UTF-8"` {
				t.Errorf("%s, %s: %d %q", path, name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
		}
		for name, set := range map[string]func(*http.Request){
			"bearer":        func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testToken) },
			"other bearer":  func(r *http.Request) { r.Header.Set("Authorization", "bearer first-token") },
			"basic":         func(r *http.Request) { r.SetBasicAuth("anyone", testToken) },
			"basic no user": func(r *http.Request) { r.SetBasicAuth("", "first-token") },
		} {
			if resp := do(path, set); resp.StatusCode != http.StatusOK {
				t.Errorf("%s, %s: %d", path, name, resp.StatusCode)
			}
		}
	}
}

// A fix reaches the changes and the summary within seconds; a new finding
// reaches the list.
func TestLiveUpdate(t *testing.T) {
	w := seeded(t)
	base, _ := startConsole(t, w, nil)
	var before index.Summary
	get(t, base+"/api/summary", &before)

	fixed := w.doc["sast.9001.1"]
	fixed.Findings[0].FindingStatus = finding.StatusFixed
	fixed.Findings[0].LastFixedOn = ts(time.Now())
	fixed.Findings[0].Priority = &finding.Priority{Score: 0, Factors: []finding.Factor{{Name: "status", Value: "FIXED", Points: -97}}}
	w.put(fixed)
	w.put(mkDoc("sca.9004.1", "acme/new", "team-new", ghCode, "brand new", "ACTIVE", "HIGH", 66))
	start := time.Now()

	streamtest.WaitFor(t, 10*time.Second, "the fix in the changes and the summary", func() bool {
		var ch index.Changes
		get(t, base+"/api/changes?since=5m", &ch)
		var s index.Summary
		get(t, base+"/api/summary", &s)
		found := false
		for _, c := range ch.Changes {
			if c.Kind == index.KindFixed && c.FindingKey == "sast.9001.1" && c.From == "ACTIVE" && c.To == "FIXED" && c.Repository == "acme/payments" && c.Owner == "team-pay" {
				found = true
			}
		}
		return found && s.Open == before.Open && s.TopExposures[0].FindingKey != "sast.9001.1" && s.OpenByType["sast"].Critical == before.OpenByType["sast"].Critical-1
	})
	t.Logf("the fix showed within %s", time.Since(start).Round(time.Millisecond))
	var p index.Page
	get(t, base+"/api/findings?repository=acme/new", &p)
	if got := itemKeys(p); !slices.Equal(got, []string{"sca.9004.1"}) {
		t.Errorf("the new finding: %v", got)
	}
}

// Paging through the API while findings are written: no finding twice,
// none of those there at the first page missing.
func TestPagingWhileWriting(t *testing.T) {
	w := newWorld(t)
	for i := range 60 {
		w.put(mkDoc(fmt.Sprintf("sast.77.%d", i), "acme/big", "team-big", ghCode, fmt.Sprintf("finding %d", i), "ACTIVE", "HIGH", 10+i%50))
	}
	base, _ := startConsole(t, w, nil)
	seen := map[string]int{}
	cursor := ""
	for page := 0; ; page++ {
		var p index.Page
		if code, body := get(t, base+"/api/findings?limit=7&cursor="+url.QueryEscape(cursor), &p); code != http.StatusOK {
			t.Fatalf("page %d: %d %s", page, code, body)
		}
		for _, k := range itemKeys(p) {
			seen[k]++
		}
		if p.Next == "" {
			break
		}
		cursor = p.Next
		// Between pages: fix some, raise others, add new ones.
		for j := range 3 {
			i := (page*7 + j*13) % 60
			d := w.doc[fmt.Sprintf("sast.77.%d", i)]
			if j == 0 {
				d.Findings[0].FindingStatus = finding.StatusFixed
				d.Findings[0].Priority = &finding.Priority{Score: 0}
			} else {
				d.Findings[0].Priority = &finding.Priority{Score: 99 - page}
			}
			w.put(d)
			w.put(mkDoc(fmt.Sprintf("sast.77.%d", 1000+page*3+j), "acme/big", "team-big", ghCode, "new", "ACTIVE", "LOW", 50))
		}
		time.Sleep(50 * time.Millisecond) // let the index apply them
	}
	for i := range 60 {
		if k := fmt.Sprintf("sast.77.%d", i); seen[k] != 1 {
			t.Errorf("%s listed %d times, want once", k, seen[k])
		}
	}
	for k, n := range seen {
		if n > 1 {
			t.Errorf("%s listed %d times", k, n)
		}
	}
}

// The pages: the overview shows the top exposure with its score and
// factors, the changes, the filters; finding text is escaped; a finding
// page shows its history.
func TestPages(t *testing.T) {
	w := seeded(t)
	base, _ := startConsole(t, w, nil)
	code, home := get(t, base+"/", nil)
	if code != http.StatusOK {
		t.Fatalf("/: %d", code)
	}
	for _, want := range []string{"SQL injection in checkout", `<span class="score">97</span>`, "criticality low −3", "What changed", "Assets by source",
		`<select id="f-owner" name="owner">`, "team-pay", claude} {
		if !strings.Contains(home, want) {
			t.Errorf("the overview lacks %q", want)
		}
	}
	if strings.Contains(home, "<script>") || !strings.Contains(home, "&lt;script&gt;") {
		t.Error("a finding's name was not escaped")
	}
	code, list := get(t, base+"/findings?owner=team-ml", nil)
	if code != http.StatusOK || !strings.Contains(list, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; in notebook") || strings.Contains(list, "Reflected XSS") {
		t.Errorf("the list filtered by owner: %d", code)
	}
	code, detail := get(t, base+"/findings/sast.337911632.10", nil)
	if code != http.StatusOK || !strings.Contains(detail, "<h2>History</h2>") || strings.Count(detail, "<li><strong>") < 2 {
		t.Errorf("the finding page: %d\n%s", code, detail)
	}
	if code, body := get(t, base+"/findings?severity=nope", nil); code != http.StatusBadRequest || !strings.Contains(body, "severity") {
		t.Errorf("a bad filter on the page: %d", code)
	}
	if code, _ := get(t, base+"/findings/sast.0.0", nil); code != http.StatusNotFound {
		t.Errorf("an unknown finding's page: %d", code)
	}
}
