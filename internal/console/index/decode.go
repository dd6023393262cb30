package index

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ghas-relay/ghas-relay/internal/jsonobject"
)

// fields are what the index keeps of a finding document: the facts the
// questions filter, sort and count by, not the document (KV holds that).
// The texts are slices of the document (a decoded copy where the JSON
// escapes something): decoding allocates next to nothing, and the index
// copies only the strings it has not seen yet.
type fields struct {
	key, typeName, source  []byte
	fullName, owner        []byte
	name, status, severity []byte
	rule                   []byte
	first, last, fixed     []byte // RFC 3339 or empty
	hasPriority            bool
	score                  int
	factors                []rawFactor
	findingOK              bool
}

// rawFactor is a priority factor as the document writes it.
type rawFactor struct {
	name, value []byte
	points      int
}

var errNotDocument = errors.New("not a finding document")

// decode reads the fields of a stored finding document. It walks the JSON
// once and skips (validating) every value it does not keep: an index of a
// million findings decodes each of them at start, and the document's
// descriptions, references and locations are most of its bytes. The
// result is what encoding/json would give for the same paths (keys match
// exactly, else ignoring case; the last of repeated keys wins);
// FuzzDecode holds it to that.
func decode(b []byte) (fields, error) {
	var f fields
	i := skipSpace(b, 0)
	end, err := object(b, i, func(key []byte, i int) (int, error) {
		switch fold(key, "findingKey", "findingTypeName", "source", "assetDetail", "findings") {
		case "findingKey":
			return str(b, i, &f.key)
		case "findingTypeName":
			return str(b, i, &f.typeName)
		case "source":
			return str(b, i, &f.source)
		case "assetDetail":
			return f.assetDetail(b, i)
		case "findings":
			return f.findings(b, i)
		}
		return skip(b, i, 1)
	})
	if err != nil {
		return fields{}, err
	}
	if skipSpace(b, end) != len(b) {
		return fields{}, errNotDocument
	}
	if len(f.key) == 0 || !f.findingOK {
		return fields{}, errNotDocument
	}
	return f, nil
}

func (f *fields) assetDetail(b []byte, i int) (int, error) {
	if isNull(b, i) {
		f.fullName, f.owner = nil, nil
		return i + 4, nil
	}
	return object(b, i, func(key []byte, i int) (int, error) {
		switch fold(key, "fullName", "ownership") {
		case "fullName":
			return str(b, i, &f.fullName)
		case "ownership":
			f.owner = nil
			if isNull(b, i) {
				return i + 4, nil
			}
			return object(b, i, func(key []byte, i int) (int, error) {
				if fold(key, "owner") == "owner" {
					return str(b, i, &f.owner)
				}
				return skip(b, i, 3)
			})
		}
		return skip(b, i, 2)
	})
}

// findings reads the first element of the findings array.
func (f *fields) findings(b []byte, i int) (int, error) {
	f.findingOK = false
	if isNull(b, i) {
		return i + 4, nil
	}
	if i >= len(b) || b[i] != '[' {
		return i, errNotDocument
	}
	f.name, f.status, f.severity, f.rule, f.first, f.last, f.fixed = nil, nil, nil, nil, nil, nil, nil
	f.hasPriority, f.score, f.factors = false, 0, nil
	first := true
	return array(b, i, func(i int) (int, error) {
		if first {
			first = false
			return f.finding(b, i)
		}
		return skip(b, i, 2)
	})
}

func (f *fields) finding(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '{' {
		return skip(b, i, 2)
	}
	f.findingOK = true
	return object(b, i, func(key []byte, i int) (int, error) {
		switch fold(key, "name", "findingStatus", "severity", "ruleId", "firstFoundOn", "lastFoundOn", "lastFixedOn", "priority") {
		case "name":
			return str(b, i, &f.name)
		case "findingStatus":
			return str(b, i, &f.status)
		case "severity":
			return str(b, i, &f.severity)
		case "ruleId":
			return str(b, i, &f.rule)
		case "firstFoundOn":
			return str(b, i, &f.first)
		case "lastFoundOn":
			return str(b, i, &f.last)
		case "lastFixedOn":
			return str(b, i, &f.fixed)
		case "priority":
			return f.priority(b, i)
		}
		return skip(b, i, 3)
	})
}

func (f *fields) priority(b []byte, i int) (int, error) {
	if isNull(b, i) {
		f.hasPriority, f.score, f.factors = false, 0, nil
		return i + 4, nil
	}
	f.hasPriority, f.score, f.factors = true, 0, nil
	return object(b, i, func(key []byte, i int) (int, error) {
		switch fold(key, "score", "factors") {
		case "score":
			return integer(b, i, &f.score)
		case "factors":
			f.factors = nil
			if isNull(b, i) {
				return i + 4, nil
			}
			if i >= len(b) || b[i] != '[' {
				return i, errNotDocument
			}
			f.factors = make([]rawFactor, 0, 4)
			return array(b, i, func(i int) (int, error) {
				var x rawFactor
				if isNull(b, i) {
					f.factors = append(f.factors, x)
					return i + 4, nil
				}
				end, err := object(b, i, func(key []byte, i int) (int, error) {
					switch fold(key, "name", "value", "points") {
					case "name":
						return str(b, i, &x.name)
					case "value":
						return str(b, i, &x.value)
					case "points":
						return integer(b, i, &x.points)
					}
					return skip(b, i, 6)
				})
				f.factors = append(f.factors, x)
				return end, err
			})
		}
		return skip(b, i, 4)
	})
}

// fold is the name of known that key stands for, as encoding/json matches
// keys to fields (exactly, else ignoring case); "" for none.
func fold(key []byte, known ...string) string {
	for _, k := range known {
		if string(key) == k {
			return k
		}
	}
	ascii := true
	for _, c := range key {
		if c >= 0x80 {
			ascii = false
			break
		}
	}
	for _, k := range known {
		switch {
		case ascii && len(key) == len(k):
			if asciiFold(key, k) {
				return k
			}
		case !ascii && len(key) >= len(k) && len(key) <= 3*len(k):
			// Unicode folds (the Kelvin sign is a k) take the slow way.
			if strings.EqualFold(string(key), k) {
				return k
			}
		}
	}
	return ""
}

// asciiFold reports whether ASCII key equals k ignoring case.
func asciiFold(key []byte, k string) bool {
	for i, c := range key {
		d := k[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// object walks the object at b[i], calling member with each key and the
// index of its value (after white space); member returns the index after
// the value.
func object(b []byte, i int, member func(key []byte, i int) (int, error)) (int, error) {
	if i >= len(b) || b[i] != '{' {
		return i, errNotDocument
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		var key []byte
		var err error
		if i >= len(b) || b[i] != '"' {
			return i, errNotDocument
		}
		if i, err = str(b, i, &key); err != nil {
			return i, err
		}
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != ':' {
			return i, errNotDocument
		}
		if i, err = member(key, skipSpace(b, i+1)); err != nil {
			return i, err
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return i, errNotDocument
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return i + 1, nil
		default:
			return i, errNotDocument
		}
	}
}

// array walks the array at b[i], calling elem with the index of each
// element; elem returns the index after it.
func array(b []byte, i int, elem func(i int) (int, error)) (int, error) {
	if i >= len(b) || b[i] != '[' {
		return i, errNotDocument
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		var err error
		if i, err = elem(i); err != nil {
			return i, err
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return i, errNotDocument
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return i + 1, nil
		default:
			return i, errNotDocument
		}
	}
}

// str reads the string (or null: empty) at b[i] into s: a slice of b, or a
// decoded copy when the string escapes a character or is not UTF-8.
func str(b []byte, i int, s *[]byte) (int, error) {
	if isNull(b, i) {
		*s = nil
		return i + 4, nil
	}
	if i >= len(b) || b[i] != '"' {
		return i, errNotDocument
	}
	end, ok := jsonobject.Skip(b, i, 0)
	if !ok {
		return end, errNotDocument
	}
	raw := b[i+1 : end-1]
	plain := true
	for _, c := range raw {
		if c == '\\' || c >= 0x80 {
			plain = false
			break
		}
	}
	if plain || utf8.Valid(raw) && !containsBackslash(raw) {
		*s = raw
		return end, nil
	}
	var v string
	if err := json.Unmarshal(b[i:end], &v); err != nil {
		return end, errNotDocument
	}
	*s = []byte(v)
	return end, nil
}

func containsBackslash(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

// integer reads the number at b[i] as an int (a fraction is truncated, as
// the priority score never has one).
func integer(b []byte, i int, n *int) (int, error) {
	end, ok := jsonobject.Skip(b, i, 0)
	if !ok || i >= len(b) || !(b[i] == '-' || b[i] >= '0' && b[i] <= '9') {
		return end, errNotDocument
	}
	num := b[i:end]
	v, err := strconv.Atoi(string(num))
	if err != nil {
		f, ferr := strconv.ParseFloat(string(num), 64)
		if ferr != nil {
			return end, errNotDocument
		}
		v = int(f)
	}
	*n = v
	return end, nil
}

func skip(b []byte, i, depth int) (int, error) {
	end, ok := jsonobject.Skip(b, i, depth)
	if !ok {
		return end, errNotDocument
	}
	return end, nil
}

func isNull(b []byte, i int) bool {
	return len(b)-i >= 4 && string(b[i:i+4]) == "null"
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// parseTime is an RFC 3339 time in Unix seconds, clamped to what an entry
// holds; 0 when absent or not a time. The common form
// (2006-01-02T15:04:05Z) is read without allocating.
func parseTime(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	var sec int64
	if len(b) == 20 && b[4] == '-' && b[7] == '-' && b[10] == 'T' && b[13] == ':' && b[16] == ':' && b[19] == 'Z' {
		num := func(from, to int) int {
			n := 0
			for _, c := range b[from:to] {
				if c < '0' || c > '9' {
					return -1
				}
				n = n*10 + int(c-'0')
			}
			return n
		}
		y, mo, d, h, mi, s := num(0, 4), num(5, 7), num(8, 10), num(11, 13), num(14, 16), num(17, 19)
		if y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 59 {
			return 0
		}
		t := time.Date(y, time.Month(mo), d, h, mi, s, 0, time.UTC)
		if t.Day() != d {
			return 0 // 31 February
		}
		sec = t.Unix()
	} else {
		t, err := time.Parse(time.RFC3339, string(b))
		if err != nil {
			return 0
		}
		sec = t.Unix()
	}
	return uint32(min(max(sec, 0), 1<<32-1))
}
