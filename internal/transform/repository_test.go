package transform

import (
	"errors"
	"reflect"
	"testing"
)

func TestRepositoryOf(t *testing.T) {
	f, err := RepositoryOf([]byte(`{"alert":{"number":1,"repository":{"full_name":"not/this"}},"repository":{"id":7,"full_name":"o/r","archived":true,"fork":true,
		"topics":["a",1,"b"],"custom_properties":{"team":"x","langs":["go"],"none":null}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := RepositoryFacts{ID: 7, FullName: "o/r", Archived: true, Fork: true, Topics: []string{"a", "b"},
		Properties: map[string]any{"team": "x", "langs": []any{"go"}, "none": nil}, HasProperties: true}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("RepositoryOf = %+v, want %+v", f, want)
	}
	f, err = RepositoryOf([]byte(`{"repository":{"id":7,"full_name":"o/r"}}`))
	if err != nil || f.HasProperties || f.Properties != nil {
		t.Errorf("without custom_properties: %+v, %v", f, err)
	}
	for _, bad := range []string{`{"alert":{}}`, `{"repository":`, `[]`} {
		if _, err := RepositoryOf([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("RepositoryOf(%s) = %v, want ErrInvalid", bad, err)
		}
	}
}

func FuzzRepositoryOf(f *testing.F) {
	f.Add([]byte(`{"repository":{"id":1,"full_name":"a/b","topics":["x"],"custom_properties":{"a":"b","c":["d"]}}}`))
	f.Add([]byte(`{"repository":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := RepositoryOf(b)
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("error not ErrInvalid: %v", err)
		}
		if err == nil && r.HasProperties != (r.Properties != nil) {
			t.Fatalf("HasProperties %v with Properties %v", r.HasProperties, r.Properties)
		}
	})
}
