package api

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/console/index"
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
	var want bytes.Buffer
	if err := json.NewEncoder(&want).Encode(c); err != nil {
		t.Fatal(err)
	}
	if got := appendChanges(nil, c); !bytes.Equal(got, want.Bytes()) {
		t.Errorf("got\n%s\nwant\n%s", got, want.Bytes())
	}
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
