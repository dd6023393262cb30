package finding

import (
	"encoding/json"
	"testing"
)

func TestCorrelationKey(t *testing.T) {
	// echo -n '1296269|src/db.js|42|89' | sha256sum | cut -c1-16
	const want = "0698a1dfe5e58285"
	if got := CorrelationKey("1296269", "src/db.js", 42, []string{"CWE-943", "CWE-089", "CWE-564"}); got != want {
		t.Errorf("CorrelationKey = %q, want %q", got, want)
	}
	for _, c := range []struct {
		path string
		line int
		cwes []string
	}{{"", 42, []string{"CWE-89"}}, {"a.js", 0, []string{"CWE-89"}}, {"a.js", 1, nil}, {"a.js", 1, []string{"x"}}} {
		if got := CorrelationKey("1", c.path, c.line, c.cwes); got != "" {
			t.Errorf("CorrelationKey(%q,%d,%v) = %q, want empty", c.path, c.line, c.cwes, got)
		}
	}
}

func TestPropertyValueJSON(t *testing.T) {
	in := `{"a":"x","b":["y","z"],"c":null}`
	var m map[string]PropertyValue
	if err := json.Unmarshal([]byte(in), &m); err != nil {
		t.Fatal(err)
	}
	if !m["b"].Multi || len(m["b"].Values) != 2 || m["a"].Multi || m["a"].Values[0] != "x" {
		t.Fatalf("decoded %+v", m)
	}
	out, err := json.Marshal(map[string]PropertyValue{"a": m["a"], "b": m["b"]})
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"a":"x","b":["y","z"]}` {
		t.Errorf("encoded %s", out)
	}
}
