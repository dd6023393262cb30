package webhook

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/webhook/webhooktest"
)

// reference is the definition validJSONObject must match.
func reference(b []byte) bool {
	t := bytes.TrimLeft(b, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && json.Valid(b)
}

var jsonCases = []string{
	`{}`, ` {} `, "\t{\n}\r\n", `{"a":1}`, `{"a":[1,2,{"b":null}],"c":"d"}`, `{"a":-0.5e+10}`,
	`{"a":1E3}`, `{"a":"\u00e9\n\"\\\/\b\f\r\t"}`, `{"a":"é ☃ \xff"}`, `{"a":true,"b":false}`,
	``, ` `, `[]`, `"s"`, `1`, `null`, `{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{,}`, `{"a":1}}`,
	`{"a":1} x`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":1e}`, `{"a":-}`, `{"a":+1}`, `{"a":tru}`,
	`{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"\u12g4"}`, "{\"a\":\"\x01\"}", `{"a":[1,]}`, `{"a":[,1]}`,
	`{"a":nul}`, `{"a" 1}`, `{a:1}`, `{"a":1 "b":2}`, `{"a":"unterminated}`, `{"a":[}`, "\v{}",
	`{"a":1}` + "\x00",
}

func TestValidJSONObject(t *testing.T) {
	for _, c := range jsonCases {
		if got, want := validJSONObject([]byte(c)), reference([]byte(c)); got != want {
			t.Errorf("validJSONObject(%q) = %v, json.Valid says %v", c, got, want)
		}
	}
	for _, depth := range []int{maxDepth - 1, maxDepth, maxDepth + 1} {
		c := []byte(strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth))
		if got, want := validJSONObject(c), reference(c); got != want {
			t.Errorf("depth %d: validJSONObject = %v, json.Valid says %v", depth, got, want)
		}
		c = []byte(`{"a":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + "}")
		if got, want := validJSONObject(c), reference(c); got != want {
			t.Errorf("array depth %d: validJSONObject = %v, json.Valid says %v", depth, got, want)
		}
	}
	// Every special byte at every offset of a word, next to plain ASCII and
	// to bytes over 0x7f (which the word check must not take for special).
	for _, fill := range []string{"x", "\xe9", "\x7f", "!"} {
		for _, special := range []string{`"`, `\\`, `\n`, `\"`, "\x00", "\x01", "\x1f", "\t", `\u00e9`, `\q`, " ", "\x21", "\x5b", "\x5d"} {
			for off := range 20 {
				c := []byte(`{"k":"` + strings.Repeat(fill, off) + special + strings.Repeat(fill, 19-off) + `"}`)
				if got, want := validJSONObject(c), reference(c); got != want {
					t.Errorf("validJSONObject(%q) = %v, json.Valid says %v", c, got, want)
				}
			}
		}
	}
	for _, s := range webhooktest.Load(t) {
		if !validJSONObject(s.Body) {
			t.Errorf("%s/%s rejected", s.Event, s.Name)
		}
	}
}

// FuzzValidJSONObject: the fast validator agrees with encoding/json.
func FuzzValidJSONObject(f *testing.F) {
	for _, c := range jsonCases {
		f.Add([]byte(c))
	}
	for _, b := range webhooktest.Seeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSONObject(b), reference(b); got != want {
			t.Fatalf("validJSONObject(%q) = %v, json.Valid says %v", b, got, want)
		}
	})
}

func BenchmarkValidJSONObject(b *testing.B) {
	body := paddedObject(8 << 10)
	for _, s := range webhooktest.Load(b) {
		if s.Event == "code_scanning_alert" {
			body = s.Body
			break
		}
	}
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for i := 0; i < b.N; i++ {
			validJSONObject(body)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for i := 0; i < b.N; i++ {
			json.Valid(body)
		}
	})
}
