package index

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// ref is fields as strings, for comparing.
type ref struct {
	key, typeName, source, fullName, owner, name, status, severity, rule, first, last, fixed string
	hasPriority                                                                              bool
	score                                                                                    int
	factors                                                                                  []finding.Factor
	findingOK                                                                                bool
}

func (f fields) ref() ref {
	r := ref{key: string(f.key), typeName: string(f.typeName), source: string(f.source), fullName: string(f.fullName), owner: string(f.owner),
		name: string(f.name), status: string(f.status), severity: string(f.severity), rule: string(f.rule),
		first: string(f.first), last: string(f.last), fixed: string(f.fixed), hasPriority: f.hasPriority, score: f.score, findingOK: f.findingOK}
	if f.factors != nil {
		r.factors = []finding.Factor{}
		for _, x := range f.factors {
			r.factors = append(r.factors, finding.Factor{Name: string(x.name), Value: string(x.value), Points: x.points})
		}
	}
	return r
}

// reference reads the same paths as decode with encoding/json.
func reference(b []byte) (ref, bool) {
	var d finding.Document
	if err := json.Unmarshal(b, &d); err != nil || d.FindingKey == "" || len(d.Findings) == 0 {
		return ref{}, false
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(b, &top) != nil {
		return ref{}, false
	}
	var arr []json.RawMessage
	if json.Unmarshal(top["findings"], &arr) != nil || len(arr) == 0 || len(arr[0]) == 0 || arr[0][0] != '{' {
		// encoding/json matched "findings" ignoring case: look for it so.
		found := false
		for k, v := range top {
			if strings.EqualFold(k, "findings") && json.Unmarshal(v, &arr) == nil && len(arr) > 0 && len(arr[0]) > 0 && arr[0][0] == '{' {
				found = true
			}
		}
		if !found {
			return ref{}, false
		}
	}
	f := d.Findings[0]
	out := ref{key: d.FindingKey, typeName: d.FindingTypeName, source: d.Source, fullName: d.AssetDetail.FullName,
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
			if !reflect.DeepEqual(got.ref(), want) {
				t.Errorf("%s:\n got %+v\nwant %+v", d.FindingKey, got.ref(), want)
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
		case ok && !reflect.DeepEqual(got.ref(), want):
			t.Fatalf("%q:\n got %+v\nwant %+v", b, got.ref(), want)
		case err == nil && !json.Valid(b):
			// decode may read a document whose skipped fields have types
			// encoding/json would refuse, never one that is not JSON.
			t.Fatalf("decode accepted invalid JSON: %q", b)
		}
	})
}
