package index

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// reference reads the same paths as decode with encoding/json.
func reference(b []byte) (fields, bool) {
	var d finding.Document
	if err := json.Unmarshal(b, &d); err != nil || d.FindingKey == "" || len(d.Findings) == 0 {
		return fields{}, false
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(b, &top) != nil {
		return fields{}, false
	}
	var arr []json.RawMessage
	if json.Unmarshal(top["findings"], &arr) != nil || len(arr) == 0 || len(arr[0]) == 0 || arr[0][0] != '{' {
		return fields{}, false
	}
	f := d.Findings[0]
	out := fields{key: d.FindingKey, typeName: d.FindingTypeName, source: d.Source, fullName: d.AssetDetail.FullName,
		name: f.Name, status: f.FindingStatus, severity: f.Severity, rule: f.RuleID, findingOK: true}
	if d.AssetDetail.Ownership != nil {
		out.owner = d.AssetDetail.Ownership.Owner
	}
	for _, p := range []struct {
		dst *string
		src *string
	}{{&out.first, f.FirstFoundOn}, {&out.last, f.LastFoundOn}, {&out.fixed, f.LastFixedOn}} {
		if p.src != nil {
			*p.dst = *p.src
		}
	}
	if f.Priority != nil {
		out.hasPriority, out.score, out.factors = true, f.Priority.Score, f.Priority.Factors
	}
	return out, true
}

func goldenDocs(t testing.TB) [][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "transform", "testdata", "golden", "*", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	rest, _ := filepath.Glob(filepath.Join("..", "..", "transform", "testdata", "golden", "*", "rest", "*.json"))
	files = append(files, rest...)
	if len(files) == 0 {
		t.Fatal("no golden findings")
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// The golden documents decode as encoding/json reads them, with a
// priority added.
func TestDecodeGolden(t *testing.T) {
	for _, b := range goldenDocs(t) {
		var d finding.Document
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		d.Findings[0].Priority = &finding.Priority{Score: 77, Factors: []finding.Factor{{Name: "severity", Value: "HIGH", Points: 70}, {Name: "exposure", Value: "public", Points: 7}}}
		withPrio, _, err := d.Encode()
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range [][]byte{b, withPrio} {
			got, err := decode(doc)
			want, ok := reference(doc)
			if err != nil || !ok {
				t.Fatalf("%s: decode %v, reference %v", d.FindingKey, err, ok)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s:\n got %+v\nwant %+v", d.FindingKey, got, want)
			}
		}
	}
}

// FuzzDecode: decode reads every document encoding/json reads, the same
// way, and never accepts what is not JSON.
func FuzzDecode(f *testing.F) {
	for _, b := range goldenDocs(f) {
		f.Add(b)
	}
	f.Add([]byte(`{"findingKey":"sast.1.1","findings":[{"name":"a\"b","priority":{"score":5,"factors":[]}}],"assetDetail":{"ownership":null}}`))
	f.Add([]byte(`{"findingKey":"x","findings":[{},1],"findingKey":"y"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decode(b)
		want, ok := reference(b)
		switch {
		case ok && err != nil:
			t.Fatalf("decode refused a document encoding/json reads: %v: %q", err, b)
		case ok && !reflect.DeepEqual(got, want):
			t.Fatalf("%q:\n got %+v\nwant %+v", b, got, want)
		case err == nil && !json.Valid(b):
			// decode may read a document whose skipped fields have types
			// encoding/json would refuse, never one that is not JSON.
			t.Fatalf("decode accepted invalid JSON: %q", b)
		}
	})
}
