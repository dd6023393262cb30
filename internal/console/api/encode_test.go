package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/console/index"
	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// appendChanges writes what encoding/json writes, for any text.
func TestAppendChangesIsEncodingJSON(t *testing.T) {
	c := index.Changes{Since: "2026-01-01T00:00:00Z", Until: "2026-01-02T00:00:00Z", Counts: map[string]int{}, Total: 3, Truncated: true,
		Changes: []index.Change{
			{Kind: "new", FindingKey: "sast.1.1", Type: "sast", Name: `<script>"x" & y</script>`, Repository: "o/r", To: "ACTIVE", When: "2026-01-01T01:00:00Z"},
			{Kind: "priorityChanged", FindingKey: "sast.1.2", Type: "sast", Name: "tab\there\nnew\u2028line \x01 \xff é ☃", Repository: "o/r", Owner: "team", From: 3, To: 70, When: "w"},
			{Kind: "severityChanged", FindingKey: "k", Type: "sca", Name: "", Repository: "", From: "LOW", To: "HIGH", When: "w"},
		}}
	for _, k := range index.Kinds {
		c.Counts[k] = len(k)
	}
	want, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	got := appendChanges(nil, c)
	if !sameJSON(t, got, want) {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// A view writes what its Change does.
	for _, ch := range c.Changes {
		v := index.ChangeView{Kind: ch.Kind, FindingKey: ch.FindingKey, Type: ch.Type, Name: ch.Name, Repository: ch.Repository, Owner: ch.Owner, AtMillis: 1767229200123}
		switch from := ch.From.(type) {
		case int:
			v.Scores, v.FromScore, v.ToScore = true, from, ch.To.(int)
		case string:
			v.From, v.To = from, ch.To.(string)
		default:
			v.To = ch.To.(string)
		}
		ch.When = "2026-01-01T01:00:00.123Z"
		want, _ := json.Marshal(ch)
		if got := appendChangeView(nil, &v); !sameJSON(t, got, want) {
			t.Errorf("view\n%s\nwant\n%s", got, want)
		}
	}
}

// sameJSON reports whether a and b are equal JSON values; a must be valid.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, a)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "<>&", "\x00\x1f\"\\", "\xff\xfe", "\u2028\u2029", "é☃"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s want %s", s, got, want)
		}
	})
}

// appendChanges writes c as the API does (a test's way to compare the
// head, the tail and the values with encoding/json).
func appendChanges(b []byte, c index.Changes) []byte {
	b = appendChangesHead(b, c.Since, c.Until)
	for i, ch := range c.Changes {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendChange(b, ch.Kind, ch.FindingKey, ch.Type, ch.Name, ch.Repository, ch.Owner)
		b = append(b, `,"from":`...)
		b = appendValue(b, ch.From)
		b = append(b, `,"to":`...)
		b = appendValue(b, ch.To)
		b = append(b, `,"when":`...)
		b = appendString(b, ch.When)
		b = append(b, '}')
	}
	return appendChangesTail(b, c.Counts, c.Total, c.Truncated)
}

// appendPage writes what encoding/json writes.
func TestAppendPageIsEncodingJSON(t *testing.T) {
	p := index.Page{Next: "abc", Findings: []index.Item{
		{FindingKey: "sast.1.1", Type: "sast", Name: `<b>"x"</b>`, Repository: "o/r", Owner: "team", Source: "s", Status: "ACTIVE", Severity: "HIGH", RuleID: "js/x",
			Priority:     &finding.Priority{Score: 80, Factors: []finding.Factor{{Name: "severity", Value: "HIGH", Points: 70}, {Name: "exposure", Value: "public", Points: 10}}},
			FirstFoundOn: 1767225600, LastFoundOn: 1767229200},
		{FindingKey: "sca.1.2", Type: "sca", Name: "", Repository: "", Source: "", Status: "FIXED", Severity: "LOW", Priority: &finding.Priority{Score: 0, Factors: []finding.Factor{}}, LastFixedOn: 1767229200},
		{FindingKey: "secret.1.3", Type: "secret", Status: "ACTIVE", Severity: "CRITICAL"},
	}}
	for _, page := range []index.Page{p, {Findings: []index.Item{}}} {
		want, err := json.Marshal(page)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendPage(nil, page); !bytes.Equal(bytes.TrimSpace(got), want) {
			t.Errorf("got\n%s\nwant\n%s", got, want)
		}
	}
}
