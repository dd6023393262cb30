package ocsf_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ocsf"
)

// FuzzConvert: any document that decodes converts to an event that
// validates against the schema, or fails with ErrUnconvertible.
func FuzzConvert(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join(transformGolden, "*", "*.json"))
	rest, _ := filepath.Glob(filepath.Join(transformGolden, "*", "rest", "*.json"))
	own, _ := filepath.Glob(filepath.Join("testdata", "documents", "*.json"))
	for _, p := range append(append(seeds, rest...), own...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false, finding.StatusActive)
		f.Add(b, true, "")
	}
	imported, _ := filepath.Glob(filepath.Join(importsGolden, "*.json"))
	for _, p := range imported {
		var docs []json.RawMessage
		if err := json.Unmarshal(readFile(f, p), &docs); err != nil {
			f.Fatal(err)
		}
		for _, d := range docs {
			f.Add([]byte(d), true, "")
		}
	}
	s := loadSchema(f)
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte, first bool, prev string) {
		doc, err := finding.Decode(data)
		if err != nil {
			return
		}
		b, err := ocsf.Encode(doc, ocsf.Revision{First: first, PreviousStatus: prev, Time: at})
		if err != nil {
			if !errors.Is(err, ocsf.ErrUnconvertible) {
				t.Fatalf("error does not wrap ErrUnconvertible: %v", err)
			}
			return
		}
		if err := s.Validate(b); err != nil {
			t.Fatalf("event does not validate: %v\nevent: %s", err, b)
		}
	})
}
