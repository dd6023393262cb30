package finding

import (
	"encoding/json"
	"testing"
)

func TestKeyRoundTrip(t *testing.T) {
	k := Key(SAST, 1296269, 42)
	if k != "sast.1296269.42" {
		t.Fatalf("Key = %q", k)
	}
	ds, repo, n, err := ParseKey(k)
	if err != nil || ds != SAST || repo != 1296269 || n != 42 {
		t.Fatalf("ParseKey = %q %d %d %v", ds, repo, n, err)
	}
	for _, bad := range []string{"", "sast.1", "sast.x.1", "sast.1.y", "a.b.c.d"} {
		if _, _, _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}

func TestContentHashIgnoresObservedAtAndOrigin(t *testing.T) {
	d := Document{SchemaVersion: 1, FindingKey: "sca.1.2", Origin: "webhook", ObservedAt: "2026-01-01T00:00:00Z",
		Findings: []Finding{{ExternalFindingID: "2", FindingStatus: StatusActive, Severity: SeverityHigh}}}
	e := d
	e.Origin, e.ObservedAt = "reconcile", "2026-02-02T00:00:00Z"
	if d.ContentHash() != e.ContentHash() {
		t.Error("observedAt/origin changed the content hash")
	}
	e.Findings = []Finding{{ExternalFindingID: "2", FindingStatus: StatusFixed, Severity: SeverityHigh}}
	if d.ContentHash() == e.ContentHash() {
		t.Error("a status change kept the content hash")
	}
	if d.Origin != "webhook" {
		t.Error("ContentHash changed the document")
	}
}

func TestEncodeEqualsMarshalAndContentHash(t *testing.T) {
	for _, d := range []Document{
		{SchemaVersion: 1, FindingKey: "sast.1.2", Origin: "webhook", ObservedAt: "2026-01-01T00:00:00Z",
			AssetDetail: AssetDetail{Name: `we"ird`}, Findings: []Finding{{ExternalFindingID: "2", FindingStatus: StatusActive, Severity: SeverityHigh}}},
		{FindingKey: "sca.1.3", Origin: `a"b\c<>`, ObservedAt: ""},
		{},
	} {
		data, hash, err := d.Encode()
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(d)
		if string(data) != string(want) {
			t.Errorf("Encode = %s\nMarshal = %s", data, want)
		}
		if hash != d.ContentHash() {
			t.Errorf("Encode hash %s, ContentHash %s", hash, d.ContentHash())
		}
	}
}
