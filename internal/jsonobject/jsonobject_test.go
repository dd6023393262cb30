package jsonobject

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/webhook/webhooktest"
)

// reference is the definition Valid must match: encoding/json's validity,
// an object at the top, and the nesting limit.
func reference(b []byte) bool {
	t := bytes.TrimLeft(b, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && json.Valid(b) && nesting(b) <= MaxDepth
}

// nesting is the deepest nesting of objects and arrays of valid JSON b.
func nesting(b []byte) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

var cases = []string{
	`{}`, ` {} `, "\t{\n}\r\n", `{"a":1}`, `{"a":[1,2,{"b":null}],"c":"d"}`, `{"a":-0.5e+10}`,
	`{"a":1E3}`, `{"a":"\u00e9\n\"\\\/\b\f\r\t"}`, `{"a":"é ☃ \xff"}`, `{"a":true,"b":false}`,
	``, ` `, `[]`, `"s"`, `1`, `null`, `{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{,}`, `{"a":1}}`,
	`{"a":1} x`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":1e}`, `{"a":-}`, `{"a":+1}`, `{"a":tru}`,
	`{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"\u12g4"}`, "{\"a\":\"\x01\"}", `{"a":[1,]}`, `{"a":[,1]}`,
	`{"a":nul}`, `{"a" 1}`, `{a:1}`, `{"a":1 "b":2}`, `{"a":"unterminated}`, `{"a":[}`, "\v{}",
	`{"a":1}` + "\x00", `{"a":"[[[{{{"}`, `{"a":"\"[["}`,
}

func TestValid(t *testing.T) {
	for _, c := range cases {
		if got, want := Valid([]byte(c)), reference([]byte(c)); got != want {
			t.Errorf("Valid(%q) = %v, want %v", c, got, want)
		}
	}
	// At the limit, one over it, and as deep as encoding/json goes.
	for _, depth := range []int{MaxDepth - 1, MaxDepth, MaxDepth + 1, 5000, 10000} {
		c := []byte(strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth))
		if got, want := Valid(c), depth <= MaxDepth; got != want {
			t.Errorf("%d nested objects: Valid = %v, want %v", depth, got, want)
		}
		c = []byte(`{"a":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + "}")
		if got, want := Valid(c), depth <= MaxDepth; got != want {
			t.Errorf("an object around %d nested arrays: Valid = %v, want %v", depth-1, got, want)
		}
	}
	// Every special byte at every offset of a word, next to plain ASCII and
	// to bytes over 0x7f (which the word check must not take for special).
	for _, fill := range []string{"x", "\xe9", "\x7f", "!"} {
		for _, special := range []string{`"`, `\\`, `\n`, `\"`, "\x00", "\x01", "\x1f", "\t", `\u00e9`, `\q`, " ", "\x21", "\x5b", "\x5d"} {
			for off := range 20 {
				c := []byte(`{"k":"` + strings.Repeat(fill, off) + special + strings.Repeat(fill, 19-off) + `"}`)
				if got, want := Valid(c), reference(c); got != want {
					t.Errorf("Valid(%q) = %v, want %v", c, got, want)
				}
			}
		}
	}
	for _, s := range webhooktest.Load(t) {
		if !Valid(s.Body) {
			t.Errorf("%s/%s rejected", s.Event, s.Name)
		}
	}
}

func TestSkip(t *testing.T) {
	for _, tc := range []struct {
		in    string
		depth int
		end   int
		ok    bool
	}{
		{`1, 2`, 0, 1, true},
		{`"a\"b" x`, 0, 6, true},
		{`[1,{"a":[]}]]`, 0, 12, true},
		{`[1,`, 0, 3, false},
		{`[]`, MaxDepth - 1, 2, true},
		{`[]`, MaxDepth, 0, false},
		{`1`, MaxDepth, 1, true}, // a scalar adds no nesting
	} {
		end, ok := Skip([]byte(tc.in), 0, tc.depth)
		if ok != tc.ok || (ok && end != tc.end) {
			t.Errorf("Skip(%q, depth %d) = %d, %v; want %d, %v", tc.in, tc.depth, end, ok, tc.end, tc.ok)
		}
	}
}

// FuzzValid: the fast validator agrees with encoding/json and the limit.
func FuzzValid(f *testing.F) {
	for _, c := range cases {
		f.Add([]byte(c))
	}
	for _, b := range webhooktest.Seeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Valid(b), reference(b); got != want {
			t.Fatalf("Valid(%q) = %v, want %v", b, got, want)
		}
	})
}

func BenchmarkValid(b *testing.B) {
	body := []byte(`{"pad":"` + strings.Repeat("a", 8<<10-len(`{"pad":""}`)) + `"}`)
	for _, s := range webhooktest.Load(b) {
		if s.Event == "code_scanning_alert" {
			body = s.Body
			break
		}
	}
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for i := 0; i < b.N; i++ {
			Valid(body)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for i := 0; i < b.N; i++ {
			json.Valid(body)
		}
	})
}
