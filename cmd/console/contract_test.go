package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/console/api"
)

// do sends method to url with the test token; it returns the answer with
// its body read.
func do(t *testing.T, method, url string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp, b.String()
}

// The API only reads: another method than GET or HEAD on one of its
// routes is 405 with Allow, in JSON like every API answer; a path that is
// no route stays 404.
func TestAPIMethods(t *testing.T) {
	base, _ := startConsole(t, seeded(t), nil)
	for _, path := range []string{"/api/summary", "/api/findings", "/api/findings/sast.9001.1", "/api/changes", "/api/assets"} {
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
			resp, body := do(t, m, base+path)
			var e api.ErrorBody
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" ||
				!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
				t.Errorf("%s %s: %d Allow %q %q %s", m, path, resp.StatusCode, resp.Header.Get("Allow"), resp.Header.Get("Content-Type"), body)
			}
		}
		if resp, body := do(t, http.MethodHead, base+path); resp.StatusCode != http.StatusOK || body != "" {
			t.Errorf("HEAD %s: %d %q", path, resp.StatusCode, body)
		}
	}
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		if resp, body := do(t, m, base+"/api/nothing"); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"error"`) {
			t.Errorf("%s /api/nothing: %d %s", m, resp.StatusCode, body)
		}
	}
	if _, body := do(t, http.MethodGet, base+"/api/summary?x=1"); !strings.Contains(body, "takes no parameters") {
		t.Errorf("an unknown parameter of /api/summary: %s", body)
	}
}

// Every list item, change and asset names its owner, "" when the
// repository names none: a client reads the field without first asking
// whether it is there.
func TestOwnerAlwaysThere(t *testing.T) {
	base, _ := startConsole(t, seeded(t), nil)
	var list struct{ Findings []map[string]any }
	get(t, base+"/api/findings?limit=1000", &list)
	var changes struct{ Changes []map[string]any }
	get(t, base+"/api/changes?since=1h&limit=100000", &changes)
	var assets struct{ Assets []map[string]any }
	get(t, base+"/api/assets", &assets)
	var summary struct{ TopExposures []map[string]any }
	get(t, base+"/api/summary", &summary)
	for name, objs := range map[string][]map[string]any{"findings": list.Findings, "changes": changes.Changes, "assets": assets.Assets, "topExposures": summary.TopExposures} {
		none := 0
		for _, o := range objs {
			owner, ok := o["owner"].(string)
			if !ok {
				t.Errorf("%s: no owner in %v", name, o)
				break
			}
			if owner == "" {
				none++
			}
		}
		if len(objs) == 0 || name != "topExposures" && none == 0 {
			t.Errorf("%s: %d of them, %d without an owner: the golden findings have none", name, len(objs), none)
		}
	}
}

// since and until: RFC 3339 (a "+" of the zone left unescaped in the URL
// is read as meant, a date alone is its midnight UTC) or a duration back
// from now; without until the window reaches now and is written so; until
// before since is 400 naming until.
func TestChangesWindow(t *testing.T) {
	w := seeded(t)
	start := time.Now()
	base, _ := startConsole(t, w, nil)
	total := func(query string) (int, changesHead) {
		t.Helper()
		var ch changesHead
		code, body := get(t, base+"/api/changes?"+query, &ch)
		if code != http.StatusOK {
			t.Errorf("changes?%s: %d %s", query, code, body)
		}
		return ch.Total, ch
	}
	all, _ := total("since=2h")
	if all == 0 {
		t.Fatal("no changes in the last two hours")
	}
	plus := start.Add(-time.Hour).In(time.FixedZone("", 3600)).Format(time.RFC3339)
	for _, q := range []string{
		"since=" + plus, // the + arrives as a space
		"since=" + strings.Replace(plus, "+", "%2B", 1),
		"since=" + start.UTC().Format(time.DateOnly),
		"since=2h&until=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339),
	} {
		if n, _ := total(q); n != all {
			t.Errorf("changes?%s: %d changes, want %d", q, n, all)
		}
	}
	sub := start.Add(-time.Hour).UTC().Format("2006-01-02T15:04:05") + ".123Z"
	before := time.Now()
	_, head := total("since=" + sub)
	if head.Since != sub {
		t.Errorf("since %q written back as %q", sub, head.Since)
	}
	if until, err := time.Parse(time.RFC3339, head.Until); err != nil || until.Before(before.Add(-time.Second)) || until.After(time.Now()) {
		t.Errorf("until without until: %q, want the moment of the answer", head.Until)
	}
	code, body := get(t, base+"/api/changes?since=1h&until=2h", nil)
	var e api.ErrorBody
	if _ = json.Unmarshal([]byte(body), &e); code != http.StatusBadRequest || e.Parameter != "until" {
		t.Errorf("until before since: %d %s", code, body)
	}
}

type changesHead struct {
	Since, Until string
	Total        int
}

// A finding first stored closed is a change to that status from none (a
// fix GitHub reports of an alert the relay had not seen); a document put
// in the bucket by another writer, without the processor's headers, is
// new at its first revision.
func TestChangesOfFirstRevisions(t *testing.T) {
	w := newWorld(t)
	w.put(mkDoc("sast.9100.1", "acme/first", "team-first", ghCode, "fixed before we saw it", "FIXED", "HIGH", 0))
	plain := mkDoc("sast.9100.2", "acme/first", "team-first", ghCode, "put by hand", "ACTIVE", "HIGH", 70)
	data, _, err := plain.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.kv.Put(t.Context(), plain.FindingKey, data); err != nil {
		t.Fatal(err)
	}
	base, _ := startConsole(t, w, nil)
	var ch struct {
		Changes []map[string]any
	}
	get(t, base+"/api/changes?since=1h", &ch)
	got := map[string]string{}
	for _, c := range ch.Changes {
		got[c["findingKey"].(string)] = fmt.Sprintf("%v %v→%v", c["kind"], c["from"], c["to"])
	}
	if got["sast.9100.1"] != "fixed <nil>→FIXED" || got["sast.9100.2"] != "new <nil>→ACTIVE" {
		t.Errorf("changes %v", got)
	}
}

// The overview's since takes what /api/changes takes: a duration or an
// RFC 3339 time; anything else is 400 naming it.
func TestOverviewSince(t *testing.T) {
	base, _ := startConsole(t, seeded(t), nil)
	for _, since := range []string{"24h", "7d", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)} {
		code, page := get(t, base+"/?since="+since, nil)
		if code != http.StatusOK || !strings.Contains(page, "What changed") || strings.Contains(page, ">0 changes from") {
			t.Errorf("/?since=%s: %d, changes shown: %v", since, code, !strings.Contains(page, ">0 changes from"))
		}
	}
	if code, page := get(t, base+"/?since=yesterday", nil); code != http.StatusBadRequest || !strings.Contains(page, "<code>since</code>") {
		t.Errorf("/?since=yesterday: %d", code)
	}
}
