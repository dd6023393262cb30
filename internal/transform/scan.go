package transform

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/ghas-relay/ghas-relay/internal/jsonobject"
)

// The scanner reads only the parts of a payload the maps name. GitHub
// payloads are mostly repository URLs nobody maps; decoding all of them
// into map[string]any costs about twice the per-alert budget, so the
// scanner validates and skips what no path wants and decodes the rest.
// Nesting is bounded by jsonobject.MaxDepth, the receiver's limit, so a
// hostile payload cannot exhaust the stack and a stored delivery is never
// refused here for its depth.

var errSyntax = errors.New("invalid json")

// trie is the set of object paths a compiled map reads. A node either
// wants its whole value (slot >= 0) or descends into an object (children).
type trie struct {
	children map[string]*trie
	slot     int // index into the value slots, or -1
	seen     int // index into the seen flags of a descended object, or -1
}

func newTrie() *trie { return &trie{slot: -1, seen: -1} }

// scanner is one pass over one payload.
type scanner struct {
	data []byte
	pos  int
	vals []any
	seen []bool
}

func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("%w at offset %d: %s", errSyntax, s.pos, fmt.Sprintf(format, args...))
}

func (s *scanner) ws() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// run scans a whole document whose root must be an object described by t.
func (s *scanner) run(t *trie) error {
	s.ws()
	if s.pos >= len(s.data) || s.data[s.pos] != '{' {
		return s.errorf("want a JSON object")
	}
	if err := s.object(t, 0); err != nil {
		return err
	}
	s.ws()
	if s.pos != len(s.data) {
		return s.errorf("data after the top-level value")
	}
	return nil
}

// object scans an object at s.pos (which holds '{') following t; a nil t
// skips it.
func (s *scanner) object(t *trie, depth int) error {
	if depth >= jsonobject.MaxDepth { // this object would be one level too deep
		return s.errorf("nesting deeper than %d", jsonobject.MaxDepth)
	}
	if t != nil && t.seen >= 0 {
		s.seen[t.seen] = true
	}
	s.pos++ // '{'
	s.ws()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return nil
	}
	for {
		s.ws()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return s.errorf("want an object key")
		}
		raw, escaped, err := s.rawString()
		if err != nil {
			return err
		}
		var child *trie
		if t != nil && t.children != nil {
			if escaped {
				child = t.children[unescape(raw)]
			} else {
				child = t.children[string(raw)] // no allocation for a map lookup
			}
		}
		s.ws()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return s.errorf("want ':'")
		}
		s.pos++
		s.ws()
		switch {
		case child == nil:
			err = s.skip(depth + 1)
		case child.slot >= 0:
			s.vals[child.slot], err = s.value(depth + 1)
		default:
			err = s.descend(child, depth+1)
		}
		if err != nil {
			return err
		}
		s.ws()
		if s.pos >= len(s.data) {
			return s.errorf("unterminated object")
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
		case '}':
			s.pos++
			return nil
		default:
			return s.errorf("want ',' or '}'")
		}
	}
}

// descend scans a value the maps look into: an object, or null (absent).
// Anything else is a type error, reported as invalid input.
func (s *scanner) descend(t *trie, depth int) error {
	if s.pos >= len(s.data) {
		return s.errorf("unexpected end")
	}
	switch s.data[s.pos] {
	case '{':
		return s.object(t, depth)
	case 'n':
		return s.literal("null")
	}
	start := s.pos
	if err := s.skip(depth); err != nil {
		return err
	}
	return &typeError{offset: start, want: "object"}
}

type typeError struct {
	offset int
	want   string
}

func (e *typeError) Error() string {
	return fmt.Sprintf("value at offset %d: want %s", e.offset, e.want)
}

func (s *scanner) literal(lit string) error {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		return s.errorf("invalid literal")
	}
	s.pos += len(lit)
	return nil
}

// rawString reads a string at s.pos (which holds '"') and returns its
// bytes without quotes, validated, and whether it holds escapes.
func (s *scanner) rawString() ([]byte, bool, error) {
	s.pos++
	start := s.pos
	escaped := false
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			raw := s.data[start:s.pos]
			s.pos++
			return raw, escaped, nil
		case c == '\\':
			escaped = true
			s.pos++
			if s.pos >= len(s.data) {
				return nil, false, s.errorf("unterminated string")
			}
			switch s.data[s.pos] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos++
			case 'u':
				if len(s.data)-s.pos < 5 {
					return nil, false, s.errorf("short \\u escape")
				}
				for _, h := range s.data[s.pos+1 : s.pos+5] {
					if !isHex(h) {
						return nil, false, s.errorf("bad \\u escape")
					}
				}
				s.pos += 5
			default:
				return nil, false, s.errorf("bad escape")
			}
		case c < 0x20:
			return nil, false, s.errorf("control character in string")
		default:
			s.pos++
		}
	}
	return nil, false, s.errorf("unterminated string")
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// unescape decodes a validated raw string with escapes. Invalid UTF-8
// and lone surrogates become U+FFFD, as encoding/json does.
func unescape(raw []byte) string {
	b := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			if c < utf8.RuneSelf {
				b = append(b, c)
				i++
				continue
			}
			r, size := utf8.DecodeRune(raw[i:])
			b = utf8.AppendRune(b, r)
			i += size
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r := hex4(raw[i+1 : i+5])
			i += 4
			if utf16.IsSurrogate(r) {
				if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					if r2 := hex4(raw[i+3 : i+7]); utf16.DecodeRune(r, r2) != utf8.RuneError {
						r = utf16.DecodeRune(r, r2)
						i += 6
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			b = utf8.AppendRune(b, r)
		default: // '"', '\\', '/'
			b = append(b, raw[i])
		}
		i++
	}
	return string(b)
}

func hex4(h []byte) rune {
	var r rune
	for _, c := range h {
		r <<= 4
		switch {
		case c <= '9':
			r |= rune(c - '0')
		case c >= 'a':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

func (s *scanner) str() (string, error) {
	raw, escaped, err := s.rawString()
	if err != nil {
		return "", err
	}
	if escaped || !utf8.Valid(raw) {
		return unescape(raw), nil
	}
	return string(raw), nil
}

// number reads a number and returns its text, validated against the
// JSON grammar.
func (s *scanner) number() (string, error) {
	start := s.pos
	d := s.data
	if s.pos < len(d) && d[s.pos] == '-' {
		s.pos++
	}
	if s.pos >= len(d) {
		return "", s.errorf("bad number")
	}
	switch {
	case d[s.pos] == '0':
		s.pos++
	case '1' <= d[s.pos] && d[s.pos] <= '9':
		for s.pos < len(d) && '0' <= d[s.pos] && d[s.pos] <= '9' {
			s.pos++
		}
	default:
		return "", s.errorf("bad number")
	}
	if s.pos < len(d) && d[s.pos] == '.' {
		s.pos++
		if s.pos >= len(d) || d[s.pos] < '0' || d[s.pos] > '9' {
			return "", s.errorf("bad number")
		}
		for s.pos < len(d) && '0' <= d[s.pos] && d[s.pos] <= '9' {
			s.pos++
		}
	}
	if s.pos < len(d) && (d[s.pos] == 'e' || d[s.pos] == 'E') {
		s.pos++
		if s.pos < len(d) && (d[s.pos] == '+' || d[s.pos] == '-') {
			s.pos++
		}
		if s.pos >= len(d) || d[s.pos] < '0' || d[s.pos] > '9' {
			return "", s.errorf("bad number")
		}
		for s.pos < len(d) && '0' <= d[s.pos] && d[s.pos] <= '9' {
			s.pos++
		}
	}
	return string(d[start:s.pos]), nil
}

// skip validates and passes over one value, with the validator the
// receiver uses (one rule, one depth limit).
func (s *scanner) skip(depth int) error {
	end, ok := jsonobject.Skip(s.data, s.pos, depth)
	if !ok {
		s.pos = end
		return s.errorf("invalid value, or nesting deeper than %d", jsonobject.MaxDepth)
	}
	s.pos = end
	return nil
}

// value decodes one value generically: nil, bool, string, json.Number,
// []any or map[string]any.
func (s *scanner) value(depth int) (any, error) {
	if s.pos >= len(s.data) {
		return nil, s.errorf("unexpected end")
	}
	if c := s.data[s.pos]; (c == '{' || c == '[') && depth >= jsonobject.MaxDepth {
		return nil, s.errorf("nesting deeper than %d", jsonobject.MaxDepth)
	}
	switch c := s.data[s.pos]; {
	case c == '"':
		return s.str()
	case c == '{':
		s.pos++
		m := map[string]any{}
		s.ws()
		if s.pos < len(s.data) && s.data[s.pos] == '}' {
			s.pos++
			return m, nil
		}
		for {
			s.ws()
			if s.pos >= len(s.data) || s.data[s.pos] != '"' {
				return nil, s.errorf("want an object key")
			}
			k, err := s.str()
			if err != nil {
				return nil, err
			}
			s.ws()
			if s.pos >= len(s.data) || s.data[s.pos] != ':' {
				return nil, s.errorf("want ':'")
			}
			s.pos++
			s.ws()
			v, err := s.value(depth + 1)
			if err != nil {
				return nil, err
			}
			m[k] = v
			s.ws()
			if s.pos >= len(s.data) {
				return nil, s.errorf("unterminated object")
			}
			if s.data[s.pos] == '}' {
				s.pos++
				return m, nil
			}
			if s.data[s.pos] != ',' {
				return nil, s.errorf("want ',' or '}'")
			}
			s.pos++
		}
	case c == '[':
		s.pos++
		a := []any{}
		s.ws()
		if s.pos < len(s.data) && s.data[s.pos] == ']' {
			s.pos++
			return a, nil
		}
		for {
			s.ws()
			v, err := s.value(depth + 1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
			s.ws()
			if s.pos >= len(s.data) {
				return nil, s.errorf("unterminated array")
			}
			if s.data[s.pos] == ']' {
				s.pos++
				return a, nil
			}
			if s.data[s.pos] != ',' {
				return nil, s.errorf("want ',' or ']'")
			}
			s.pos++
		}
	case c == 't':
		return true, s.literal("true")
	case c == 'f':
		return false, s.literal("false")
	case c == 'n':
		return nil, s.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		n, err := s.number()
		return json.Number(n), err
	}
	return nil, s.errorf("unexpected character %q", s.data[s.pos])
}

// intOf returns v as an int64 when it is an integral JSON number.
func intOf(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return i, true
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || f != float64(int64(f)) {
		return 0, false
	}
	return int64(f), true
}
