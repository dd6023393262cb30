package transform

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzAlert: for any payload the transform returns a document or an
// ErrInvalid error, never panics, and gives the same output twice.
// Seeds: every webhook and REST alert sample.
func FuzzAlert(f *testing.F) {
	for ev, files := range webhookSamples(f) {
		for _, p := range files {
			f.Add(ev, readFile(f, p))
		}
	}
	repo := listedRepository(f)
	for _, s := range restSamples(f) {
		f.Add(s.event, envelope(f, ActionReconcile, s.alert, repo))
	}
	f.Add(EventSecretScanning, []byte(`{"action":"reconcile_removed","alert":{"number":3},"repository":{"id":1}}`))
	maps := Defaults()
	f.Fuzz(func(t *testing.T, event string, payload []byte) {
		ev := Event{Name: event, Payload: payload, Origin: "webhook", ReceivedAt: testReceived, RuleSeverity: "high"}
		d1, err1 := maps.Alert(ev, testNow)
		d2, err2 := maps.Alert(ev, testNow)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("not deterministic: %v / %v", err1, err2)
		}
		meta, ierr := Inspect(ev)
		if err1 != nil {
			if !errors.Is(err1, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err1)
			}
			return
		}
		b1, err := json.Marshal(d1)
		if err != nil {
			t.Fatal(err)
		}
		b2, _ := json.Marshal(d2)
		if !bytes.Equal(b1, b2) {
			t.Fatalf("not deterministic:\n%s\n%s", b1, b2)
		}
		// A payload good enough for a document is good enough for
		// Inspect, and both agree on the key.
		if ierr != nil {
			t.Fatalf("Alert ok but Inspect: %v", ierr)
		}
		if meta.Key() != d1.FindingKey {
			t.Fatalf("keys differ: %s / %s", meta.Key(), d1.FindingKey)
		}
		// Whatever we read, encoding/json must agree it is JSON.
		if !json.Valid(payload) {
			t.Fatalf("accepted invalid JSON")
		}
	})
}

// FuzzScanner: the scanner agrees with encoding/json on validity and on
// the decoded value.
func FuzzScanner(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":"\u00e9\ud83d\ude00\n"}`, `{"a":[1,-2.5e3,true,null,{"b":"c"}]}`, `{"a":"\ud800"}`, `{"a":01}`, `{"a":"x` + "\x01" + `"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		root := newTrie()
		root.children = map[string]*trie{"a": {slot: 0, seen: -1}}
		s := scanner{data: data, vals: make([]any, 1)}
		err := s.run(root)
		var m map[string]any
		var jerr error
		if !json.Valid(data) {
			jerr = errors.New("invalid")
		} else {
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.UseNumber()
			jerr = dec.Decode(&m)
		}
		if (err == nil) != (jerr == nil && m != nil) {
			t.Fatalf("scanner err %v, encoding/json err %v (%q)", err, jerr, data)
		}
		if err != nil {
			return
		}
		got, _ := json.Marshal(s.vals[0])
		want, _ := json.Marshal(m["a"])
		if !bytes.Equal(got, want) {
			t.Fatalf("value %s, encoding/json %s", got, want)
		}
	})
}
