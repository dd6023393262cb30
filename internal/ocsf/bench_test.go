package ocsf_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ocsf"
)

// BenchmarkEncode measures one finding revision to OCSF JSON (decode of
// the stored document not included; the sink decodes it once per message).
func BenchmarkEncode(b *testing.B) {
	for _, c := range []struct{ name, path string }{
		{"sast", filepath.Join(transformGolden, "code_scanning_alert", "rest", "code-scanning-get-alert.json")},
		{"sca", filepath.Join(transformGolden, "dependabot_alert", "rest", "dependabot-get-alert.json")},
		{"secret", filepath.Join("testdata", "documents", "secret-fixed.json")},
	} {
		doc := readDoc(b, c.path)
		rev := ocsf.Revision{PreviousStatus: finding.StatusActive, Time: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ocsf.Encode(doc, rev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeEncode adds the decode of the stored document: the whole
// per-message cost of OCSF mode in the sink.
func BenchmarkDecodeEncode(b *testing.B) {
	raw := readFile(b, filepath.Join(transformGolden, "dependabot_alert", "rest", "dependabot-get-alert.json"))
	rev := ocsf.Revision{PreviousStatus: finding.StatusActive, Time: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
	b.ReportAllocs()
	for b.Loop() {
		doc, err := finding.Decode(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ocsf.Encode(doc, rev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConvert measures the conversion alone: document to Event.
func BenchmarkConvert(b *testing.B) {
	doc := readDoc(b, filepath.Join(transformGolden, "dependabot_alert", "rest", "dependabot-get-alert.json"))
	rev := ocsf.Revision{PreviousStatus: finding.StatusActive, Time: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ocsf.Convert(doc, rev); err != nil {
			b.Fatal(err)
		}
	}
}
