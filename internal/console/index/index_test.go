package index

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
)

var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// doc is a finding document as the processor stores it.
type doc struct {
	key, typ, repo, owner, source, name, rule, status, sev string
	score                                                  int
	noPriority                                             bool
	first, last, fixed                                     time.Time
}

func (d doc) encode(t testing.TB) []byte {
	t.Helper()
	typeName := map[string]string{finding.SAST: finding.TypeSAST, finding.SCA: finding.TypeSCA, finding.Secret: finding.TypeSecret}[d.typ]
	ts := func(x time.Time) *string {
		if x.IsZero() {
			return nil
		}
		s := x.UTC().Format(time.RFC3339)
		return &s
	}
	f := finding.Finding{Name: d.name, RuleID: d.rule, FindingStatus: d.status, Severity: d.sev,
		FirstFoundOn: ts(d.first), LastFoundOn: ts(d.last), LastFixedOn: ts(d.fixed)}
	if !d.noPriority {
		f.Priority = &finding.Priority{Score: d.score, Factors: []finding.Factor{{Name: "severity", Value: d.sev, Points: d.score}}}
	}
	doc := finding.Document{SchemaVersion: 1, FindingKey: d.key, FindingTypeName: typeName, Source: d.source,
		AssetDetail: finding.AssetDetail{FullName: d.repo}, Findings: []finding.Finding{f}}
	if d.owner != "" {
		doc.AssetDetail.Ownership = &finding.Ownership{Owner: d.owner}
	}
	b, _, err := doc.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// putDoc applies d at revision rev as the KV watch does.
func putDoc(t testing.TB, ix *Index, d doc, rev uint64) {
	t.Helper()
	f, err := decode(d.encode(t))
	if err != nil {
		t.Fatal(err)
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if !ix.put(f, rev) {
		t.Fatalf("put %s refused", d.key)
	}
}

const ghSource = "GitHub Advanced Security - Code Security"

// world is a small, varied set of findings.
func world() []doc {
	return []doc{
		{key: "sast.1.1", typ: "sast", repo: "octo-org/api", owner: "team-api", source: ghSource, name: "SQL injection", rule: "js/sql-injection", status: "ACTIVE", sev: "CRITICAL", score: 95, first: t0.Add(-48 * time.Hour), last: t0.Add(-time.Hour)},
		{key: "sast.1.2", typ: "sast", repo: "octo-org/api", owner: "team-api", source: ghSource, name: "Reflected XSS", rule: "js/reflected-xss", status: "ACTIVE", sev: "HIGH", score: 70, first: t0.Add(-72 * time.Hour), last: t0.Add(-2 * time.Hour)},
		{key: "sast.1.3", typ: "sast", repo: "octo-org/api", owner: "team-api", source: ghSource, name: "Zip slip", rule: "js/zipslip", status: "FIXED", sev: "HIGH", score: 0, first: t0.Add(-96 * time.Hour), last: t0.Add(-3 * time.Hour), fixed: t0.Add(-3 * time.Hour)},
		{key: "sca.2.1", typ: "sca", repo: "octo-org/web", owner: "team-web", source: "GitHub Advanced Security - Code Security", name: "lodash prototype pollution", rule: "GHSA-1", status: "ACTIVE", sev: "MEDIUM", score: 48, first: t0.Add(-24 * time.Hour), last: t0.Add(-4 * time.Hour)},
		{key: "sca.2.2", typ: "sca", repo: "octo-org/web", owner: "team-web", source: ghSource, name: "minimist", rule: "GHSA-2", status: "DISMISSED", sev: "LOW", score: 0, first: t0.Add(-24 * time.Hour), last: t0.Add(-5 * time.Hour)},
		{key: "secret.3.1", typ: "secret", repo: "octo-org/infra", owner: "", source: "GitHub Advanced Security - Secret Protection", name: "AWS key", rule: "aws_access_key_id", status: "ACTIVE", sev: "CRITICAL", score: 100, first: t0.Add(-12 * time.Hour), last: t0.Add(-6 * time.Hour)},
		{key: "sast.3.tool.a1", typ: "sast", repo: "octo-org/infra", owner: "", source: "Anthropic - Claude Security", name: "Command injection", rule: "cmd-injection", status: "ACTIVE", sev: "HIGH", score: 75, first: t0.Add(-10 * time.Hour), last: t0.Add(-7 * time.Hour)},
		{key: "sast.4.tool.a2", typ: "sast", repo: "octo-org/lab", owner: "team-lab", source: "Anthropic - Claude Security", name: "Path traversal", rule: "path-traversal", status: "ACTIVE", sev: "LOW", noPriority: true, first: t0.Add(-10 * time.Hour), last: t0.Add(-8 * time.Hour)},
		{key: "sca.2.3", typ: "sca", repo: "octo-org/web", owner: "team-web", source: ghSource, name: "old removed", rule: "GHSA-3", status: "REMOVED", sev: "HIGH", score: 0, first: t0.Add(-200 * time.Hour), last: t0.Add(-100 * time.Hour)},
	}
}

func loaded(t testing.TB, docs []doc) *Index {
	t.Helper()
	ix := New()
	ix.SetClock(func() time.Time { return t0 })
	for i, d := range docs {
		putDoc(t, ix, d, uint64(i+1))
	}
	ix.finishLoad()
	return ix
}

func keys(items []Item) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, it.FindingKey)
	}
	return out
}

func TestFindingsSortAndFilters(t *testing.T) {
	ix := loaded(t, world())
	for _, c := range []struct {
		name string
		q    Query
		want []string
	}{
		{"priority", Query{}, []string{"secret.3.1", "sast.1.1", "sast.3.tool.a1", "sast.1.2", "sca.2.1", "sast.1.3", "sca.2.2", "sca.2.3", "sast.4.tool.a2"}},
		{"lastFoundOn", Query{Sort: "lastFoundOn"}, []string{"sast.1.1", "sast.1.2", "sast.1.3", "sca.2.1", "sca.2.2", "secret.3.1", "sast.3.tool.a1", "sast.4.tool.a2", "sca.2.3"}},
		{"type", Query{Filter: Filter{Type: "sca"}}, []string{"sca.2.1", "sca.2.2", "sca.2.3"}},
		{"status", Query{Filter: Filter{Status: "ACTIVE"}}, []string{"secret.3.1", "sast.1.1", "sast.3.tool.a1", "sast.1.2", "sca.2.1", "sast.4.tool.a2"}},
		{"severity", Query{Filter: Filter{Severity: "HIGH"}}, []string{"sast.3.tool.a1", "sast.1.2", "sast.1.3", "sca.2.3"}},
		{"owner", Query{Filter: Filter{Owner: "team-web"}}, []string{"sca.2.1", "sca.2.2", "sca.2.3"}},
		{"unknown owner", Query{Filter: Filter{Owner: "nobody"}}, []string{}},
		{"source", Query{Filter: Filter{Source: "Anthropic - Claude Security"}}, []string{"sast.3.tool.a1", "sast.4.tool.a2"}},
		{"repository", Query{Filter: Filter{Repository: "OCTO-ORG/API"}}, []string{"sast.1.1", "sast.1.2", "sast.1.3"}},
		{"repository and status", Query{Filter: Filter{Repository: "octo-org/api", Status: "ACTIVE"}}, []string{"sast.1.1", "sast.1.2"}},
		{"q in the name", Query{Filter: Filter{Q: "injection"}}, []string{"sast.1.1", "sast.3.tool.a1"}},
		{"q in the rule", Query{Filter: Filter{Q: "GHSA-"}}, []string{"sca.2.1", "sca.2.2", "sca.2.3"}},
		{"q in the repository", Query{Filter: Filter{Q: "infra"}}, []string{"secret.3.1", "sast.3.tool.a1"}},
	} {
		q := c.q
		q.Limit = 100
		p, err := ix.Findings(q)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := keys(p.Findings); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
		if p.Next != "" {
			t.Errorf("%s: a next cursor after the last page", c.name)
		}
	}
}

// pageAll pages through q with limit, calling between after each page.
func pageAll(t *testing.T, ix *Index, q Query, between func(page int)) []string {
	t.Helper()
	var all []string
	for page := 0; ; page++ {
		p, err := ix.Findings(q)
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		all = append(all, keys(p.Findings)...)
		if p.Next == "" {
			return all
		}
		q.Cursor = p.Next
		if between != nil {
			between(page)
		}
	}
}

// Paging while findings change: every finding that existed at the first
// page and still matches is listed exactly once, whatever moved.
func TestPagingUnderConcurrentUpdates(t *testing.T) {
	for _, sort := range Sorts {
		// The three ways to a page: walking an order, the repository's
		// findings, an owner's repositories (others own most findings).
		for _, filter := range []string{"none", "repository", "owner"} {
			t.Run(fmt.Sprintf("%s/%s", sort, filter), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(1, 2))
				var docs []doc
				for i := range 300 {
					docs = append(docs, doc{key: fmt.Sprintf("sast.7.%d", i), typ: "sast", repo: "o/r", owner: "team-a", source: ghSource, name: "n", status: "ACTIVE", sev: "HIGH",
						score: rng.IntN(5) * 20, last: t0.Add(-time.Duration(rng.IntN(50)) * time.Hour)})
				}
				var others []doc
				if filter == "owner" {
					for i := range 3000 {
						others = append(others, doc{key: fmt.Sprintf("sca.%d.%d", 8+i%30, i), typ: "sca", repo: fmt.Sprintf("o/other-%d", i%30), owner: "team-b", source: ghSource, name: "m", status: "ACTIVE", sev: "LOW", score: i % 100})
					}
				}
				ix := loaded(t, append(slices.Clone(docs), others...))
				rev := uint64(len(docs) + len(others))
				q := Query{Sort: sort, Limit: 7}
				switch filter {
				case "repository":
					q.Repository = "o/r"
				case "owner":
					q.Owner = "team-a"
					c := ix.compile(q.Filter)
					if _, ok := ix.candidates(&c); !ok {
						t.Fatal("the owner filter does not take its repositories' findings")
					}
				}
				next := len(docs)
				seen := pageAll(t, ix, q, func(int) {
					for range 10 {
						rev++
						i := rng.IntN(len(docs))
						d := docs[i]
						switch rng.IntN(3) {
						case 0: // fixed: to the end of the priority order
							d.status, d.score = "FIXED", 0
						case 1: // a new score and time
							d.score, d.last = rng.IntN(5)*20+1, t0.Add(-time.Duration(rng.IntN(50))*time.Hour)
						default: // a new finding
							d = doc{key: fmt.Sprintf("sast.7.%d", next), typ: "sast", repo: "o/r", owner: "team-a", source: ghSource, name: "n", status: "ACTIVE", sev: "LOW",
								score: rng.IntN(100), last: t0.Add(-time.Duration(rng.IntN(50)) * time.Hour)}
							next++
						}
						docs = append(docs[:i:i], docs[i+1:]...)
						docs = append(docs, d)
						putDoc(t, ix, d, rev)
					}
				})
				count := map[string]int{}
				for _, k := range seen {
					count[k]++
				}
				for k, n := range count {
					if n > 1 {
						t.Errorf("%s listed %d times", k, n)
					}
				}
				for i := range 300 {
					if k := fmt.Sprintf("sast.7.%d", i); count[k] != 1 {
						t.Errorf("%s listed %d times, want once", k, count[k])
					}
				}
			})
		}
	}
}

func TestBadAndExpiredCursors(t *testing.T) {
	ix := loaded(t, world())
	p, err := ix.Findings(Query{Limit: 2})
	if err != nil || p.Next == "" {
		t.Fatalf("%v %+v", err, p)
	}
	for _, c := range []string{"x", "Zm9v", "!!", "YzF8OXwwfDF8aw"} {
		if _, err := ix.Findings(Query{Limit: 2, Cursor: c}); err != ErrBadCursor {
			t.Errorf("cursor %q: %v, want ErrBadCursor", c, err)
		}
	}
	if _, err := ix.Findings(Query{Limit: 2, Cursor: p.Next, Sort: "lastFoundOn"}); err != ErrBadCursor {
		t.Errorf("a priority cursor for lastFoundOn: %v", err)
	}
	// More moves than are kept: the cursor expired.
	d := world()[0]
	for i := range maxMoves + 10 {
		d.score = i % 100
		putDoc(t, ix, d, uint64(100+i))
	}
	if _, err := ix.Findings(Query{Limit: 2, Cursor: p.Next}); err != ErrCursorExpired {
		t.Errorf("old cursor: %v, want ErrCursorExpired", err)
	}
}

func TestSummaryAndAssets(t *testing.T) {
	ix := loaded(t, world())
	s, err := ix.Summary()
	if err != nil {
		t.Fatal(err)
	}
	if s.Open != 6 || s.Findings != 9 || s.Repositories != 4 {
		t.Errorf("open %d findings %d repositories %d", s.Open, s.Findings, s.Repositories)
	}
	if c := s.OpenByType["sast"]; c.Critical != 1 || c.High != 2 || c.Low != 1 || c.Total != 4 {
		t.Errorf("open sast %+v", c)
	}
	if got := keys(s.TopExposures); !slices.Equal(got, []string{"secret.3.1", "sast.1.1", "sast.3.tool.a1", "sast.1.2", "sca.2.1", "sast.4.tool.a2"}) {
		t.Errorf("top exposures %v", got)
	}
	if s.TopExposures[0].Priority == nil || s.TopExposures[0].Priority.Score != 100 || len(s.TopExposures[0].Priority.Factors) != 1 {
		t.Errorf("top exposure priority %+v", s.TopExposures[0].Priority)
	}
	if len(s.OpenByOwner) != 4 || s.OpenByOwner[0].Owner != "" || s.OpenByOwner[0].Total != 2 || s.OpenByOwner[1].Owner != "team-api" {
		t.Errorf("owners %+v", s.OpenByOwner)
	}
	if len(s.TimeToFix) != 1 || s.TimeToFix[0].Type != "sast" || s.TimeToFix[0].Severity != "HIGH" || s.TimeToFix[0].MedianSeconds != 93*3600 {
		t.Errorf("time to fix %+v", s.TimeToFix)
	}

	all, _ := ix.Assets(AssetQuery{})
	if len(all) != 4 || all[0].Repository != "octo-org/api" || all[0].Open.Total != 2 || all[0].Owner != "team-api" {
		t.Errorf("assets %+v", all)
	}
	alone, _ := ix.Assets(AssetQuery{Source: "Anthropic - Claude Security", Only: true})
	if len(alone) != 1 || alone[0].Repository != "octo-org/lab" {
		t.Errorf("Claude alone %+v", alone)
	}
	with, _ := ix.Assets(AssetQuery{Source: "Anthropic - Claude Security"})
	if len(with) != 2 {
		t.Errorf("with Claude %+v", with)
	}
	single, _ := ix.Assets(AssetQuery{Only: true})
	if len(single) != 3 { // api, web (GitHub only), lab (Claude only)
		t.Errorf("one source %+v", single)
	}
	for _, sa := range ix.AssetsBySource() {
		if sa.Source == "Anthropic - Claude Security" && (sa.Repositories != 2 || sa.Alone != 1) {
			t.Errorf("by source %+v", sa)
		}
	}
}

// An update moves every aggregate: the fix leaves the open counts and
// the top exposures and joins the time to fix.
func TestUpdatesKeepAggregates(t *testing.T) {
	docs := world()
	ix := loaded(t, docs)
	d := docs[5] // the secret, top exposure
	d.status, d.score, d.fixed, d.last = "FIXED", 0, t0.Add(-time.Hour), t0.Add(-time.Hour)
	putDoc(t, ix, d, 100)
	putDoc(t, ix, docs[5], 50) // an older revision arriving late changes nothing
	s, _ := ix.Summary()
	if s.Open != 5 || s.OpenByType["secret"].Total != 0 || s.TopExposures[0].FindingKey != "sast.1.1" {
		t.Errorf("after the fix: open %d, secret %+v, top %s", s.Open, s.OpenByType["secret"], s.TopExposures[0].FindingKey)
	}
	if len(s.TimeToFix) != 2 {
		t.Errorf("time to fix %+v", s.TimeToFix)
	}
	ix.mu.Lock()
	ix.del("sast.1.1", 101)
	ix.mu.Unlock()
	if _, ok := ix.Get("sast.1.1"); ok {
		t.Error("a deleted finding is listed")
	}
	s, _ = ix.Summary()
	if s.Findings != 8 || s.Open != 4 {
		t.Errorf("after the deletion: %d findings, %d open", s.Findings, s.Open)
	}
}

func TestChanges(t *testing.T) {
	ix := loaded(t, world())
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	st := func(s string) uint8 { v, _ := lookup(Statuses, s); return v }
	sv := func(s string) uint8 { v, _ := lookup(Severities, s); return v }
	revs := []struct {
		h  histFields
		at time.Time
	}{
		{histFields{key: []byte("sast.1.1"), status: st("ACTIVE"), sev: sv("HIGH"), score: 70, prevRev: "0"}, at(-30)},
		{histFields{key: []byte("sast.1.1"), status: st("ACTIVE"), sev: sv("CRITICAL"), score: 95, prevRev: "1"}, at(-20)},
		{histFields{key: []byte("sast.1.3"), status: st("FIXED"), sev: sv("HIGH"), score: 0, prevRev: "3", prevStat: "ACTIVE"}, at(-10)},
		{histFields{key: []byte("sca.2.2"), status: st("DISMISSED"), sev: sv("LOW"), score: 0, prevRev: "0"}, at(-9)},
		{histFields{key: []byte("sast.1.3"), status: st("ACTIVE"), sev: sv("HIGH"), score: 70, prevRev: "4"}, at(-5)},
		{histFields{key: []byte("sast.1.3"), status: st("REMOVED"), sev: sv("HIGH"), score: 0, prevRev: "5"}, at(-1)},
		// Without the processor's headers, the first revision read is the
		// finding's first.
		{histFields{key: []byte("sast.4.tool.a2"), status: st("ACTIVE"), sev: sv("LOW"), score: -1}, t0.Add(-30 * time.Minute)},
	}
	for i, r := range revs {
		ix.addRevision(r.h, uint64(i+1), r.at)
	}
	ix.addRevision(revs[0].h, 1, at(0)) // read again: ignored
	c := ix.Changes(at(-24), t0, 100)
	// sca.2.2, first stored DISMISSED, is not new but dismissed from none.
	want := []string{"new sast.4.tool.a2 <nil>→ACTIVE", "removed sast.1.3 ACTIVE→REMOVED", "reopened sast.1.3 FIXED→ACTIVE", "dismissed sca.2.2 <nil>→DISMISSED", "fixed sast.1.3 ACTIVE→FIXED",
		"severityChanged sast.1.1 HIGH→CRITICAL", "priorityChanged sast.1.1 70→95"}
	var got []string
	for _, ch := range c.Changes {
		got = append(got, fmt.Sprintf("%s %s %v→%v", ch.Kind, ch.FindingKey, ch.From, ch.To))
	}
	if !slices.Equal(got, want) {
		t.Errorf("changes:\n%v\nwant\n%v", got, want)
	}
	if c.Counts[KindNew] != 1 || c.Counts[KindFixed] != 1 || c.Counts[KindDismissed] != 1 || c.Total != 7 || c.Truncated {
		t.Errorf("counts %+v total %d truncated %v", c.Counts, c.Total, c.Truncated)
	}
	all := ix.Changes(at(-48), t0, 2)
	if all.Counts[KindNew] != 2 || len(all.Changes) != 2 || !all.Truncated || all.Changes[1].Kind != KindRemoved {
		t.Errorf("48 h, limit 2: %+v", all)
	}
	if revs := ix.Revisions("sast.1.3"); len(revs) != 3 || revs[0].Status != "FIXED" || revs[2].Changes[0] != KindRemoved {
		t.Errorf("revisions of sast.1.3: %+v", revs)
	}
	// 31 days later the log is empty.
	ix.SetClock(func() time.Time { return t0.Add(31 * 24 * time.Hour) })
	ix.Maintain()
	if n := ix.Stats().Revisions; n != 0 {
		t.Errorf("%d revisions after 31 days", n)
	}
}

// The orders' per-chunk counts stay what their elements are through
// inserts, removals and splits; a filtered walk finds every match.
func TestOrderMixStaysTrue(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var docs []doc
	for i := range 3000 {
		docs = append(docs, doc{key: fmt.Sprintf("sast.9.%d", i), typ: Types[i%3], repo: "o/r", source: ghSource, name: "n", status: Statuses[i%4], sev: Severities[i%5],
			score: rng.IntN(100), last: t0.Add(-time.Duration(rng.IntN(500)) * time.Hour)})
	}
	for i := range docs {
		docs[i].key = fmt.Sprintf("%s.9.%d", docs[i].typ, i)
	}
	ix := loaded(t, docs)
	for rev := range 5000 {
		d := docs[rng.IntN(len(docs))]
		d.sev, d.status, d.score = Severities[rng.IntN(5)], Statuses[rng.IntN(4)], rng.IntN(100)
		putDoc(t, ix, d, uint64(len(docs)+rev+1))
	}
	for _, o := range []*order{&ix.prio, &ix.recent} {
		if len(o.mix) != len(o.chunks) {
			t.Fatalf("%d counts for %d chunks", len(o.mix), len(o.chunks))
		}
		for i, c := range o.chunks {
			if *o.mix[i] != *mixOf(c) {
				t.Fatalf("chunk %d: counts differ from its elements", i)
			}
		}
	}
	for _, sev := range Severities {
		var want int
		for i := range ix.entries {
			if e := &ix.entries[i]; e.live && Severities[e.sev] == sev && e.typ == 1 {
				want++
			}
		}
		p, err := ix.Findings(Query{Filter: Filter{Severity: sev, Type: "sca"}, Limit: 100000})
		if err != nil || len(p.Findings) != want {
			t.Errorf("sca %s: %d listed, %d held (%v)", sev, len(p.Findings), want, err)
		}
	}
}

// The median time to fix is the middle one of an odd count and the mean
// of the two middle ones of an even count, as a person (or a spreadsheet)
// computes it.
func TestMedianTimeToFix(t *testing.T) {
	fixedAfter := func(n int, hours int) doc {
		return doc{key: fmt.Sprintf("sca.5.%d", n), typ: "sca", repo: "octo-org/fix", source: ghSource, name: "fixed", rule: "GHSA-f",
			status: "FIXED", sev: "MEDIUM", first: t0.Add(-time.Duration(hours+1) * time.Hour), last: t0.Add(-time.Hour), fixed: t0.Add(-time.Hour)}
	}
	for _, c := range []struct {
		hours []int
		want  time.Duration
	}{
		{[]int{1}, time.Hour},
		{[]int{1, 3}, 2 * time.Hour},
		{[]int{10, 1, 4}, 4 * time.Hour},
		{[]int{1, 2, 5, 100}, 3*time.Hour + 30*time.Minute},
	} {
		var docs []doc
		for i, h := range c.hours {
			docs = append(docs, fixedAfter(i, h))
		}
		s, err := loaded(t, docs).Summary()
		if err != nil {
			t.Fatal(err)
		}
		if len(s.TimeToFix) != 1 || s.TimeToFix[0].MedianSeconds != int64(c.want/time.Second) || s.TimeToFix[0].Fixes != len(c.hours) {
			t.Errorf("fixes after %v hours: %+v, want a median of %s", c.hours, s.TimeToFix, c.want)
		}
	}
}
