package index

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/jsonobject"
)

// fields are what the index keeps of a finding document: the facts the
// questions filter, sort and count by, not the document (KV holds that).
type fields struct {
	key, typeName, source  string
	fullName, owner        string
	name, status, severity string
	rule                   string
	first, last, fixed     string // RFC 3339 or ""
	hasPriority            bool
	score                  int
	factors                []finding.Factor
	findingOK              bool
}

var errNotDocument = errors.New("not a finding document")

// decode reads the fields of a stored finding document. It walks the JSON
// once and skips (validating) every value it does not keep: an index of a
// million findings decodes each of them at start, and the document's
// descriptions, references and locations are most of its bytes. The
// result is what encoding/json would give for the same paths (the last of
// repeated keys wins); FuzzDecode holds it to that.
func decode(b []byte) (fields, error) {
	var f fields
	i := skipSpace(b, 0)
	end, err := object(b, i, func(key string, i int) (int, error) {
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
	if f.key == "" || !f.findingOK {
		return fields{}, errNotDocument
	}
	return f, nil
}

func (f *fields) assetDetail(b []byte, i int) (int, error) {
	if isNull(b, i) {
		f.fullName, f.owner = "", ""
		return i + 4, nil
	}
	return object(b, i, func(key string, i int) (int, error) {
		switch fold(key, "fullName", "ownership") {
		case "fullName":
			return str(b, i, &f.fullName)
		case "ownership":
			if isNull(b, i) {
				f.owner = ""
				return i + 4, nil
			}
			f.owner = ""
			return object(b, i, func(key string, i int) (int, error) {
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
	if isNull(b, i) {
		f.findingOK = false
		return i + 4, nil
	}
	if i >= len(b) || b[i] != '[' {
		return i, errNotDocument
	}
	first := true
	f.findingOK = false
	f.name, f.status, f.severity, f.rule, f.first, f.last, f.fixed = "", "", "", "", "", "", ""
	f.hasPriority, f.score, f.factors = false, 0, nil
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		var err error
		if first {
			i, err = f.finding(b, i)
			first = false
		} else {
			i, err = skip(b, i, 2)
		}
		if err != nil {
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

func (f *fields) finding(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '{' {
		return skip(b, i, 2)
	}
	f.findingOK = true
	return object(b, i, func(key string, i int) (int, error) {
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
	return object(b, i, func(key string, i int) (int, error) {
		switch fold(key, "score", "factors") {
		case "score":
			return integer(b, i, &f.score)
		case "factors":
			end, err := skip(b, i, 4)
			if err != nil {
				return end, err
			}
			// Factors are few and small: encoding/json reads them.
			var fs []finding.Factor
			if err := json.Unmarshal(b[i:end], &fs); err != nil {
				return end, errNotDocument
			}
			f.factors = fs
			return end, nil
		}
		return skip(b, i, 4)
	})
}

// fold is the name of known that key stands for, as encoding/json matches
// keys to fields (exactly, else ignoring case); "" for none.
func fold(key string, known ...string) string {
	for _, k := range known {
		if key == k {
			return k
		}
	}
	for _, k := range known {
		if strings.EqualFold(key, k) {
			return k
		}
	}
	return ""
}

// object walks the object at b[i], calling member with each key and the index of its value (after white
// space); member returns the index after the value.
func object(b []byte, i int, member func(key string, i int) (int, error)) (int, error) {
	if i >= len(b) || b[i] != '{' {
		return i, errNotDocument
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		var key string
		var err error
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

// str reads the string (or null: "") at b[i] into s.
func str(b []byte, i int, s *string) (int, error) {
	if isNull(b, i) {
		*s = ""
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
		if c == '\\' {
			plain = false
			break
		}
	}
	if plain && utf8.Valid(raw) {
		*s = string(raw)
		return end, nil
	}
	if err := json.Unmarshal(b[i:end], s); err != nil {
		return end, errNotDocument
	}
	return end, nil
}

// integer reads the number at b[i] as an int (a fraction is truncated, as
// the priority score never has one).
func integer(b []byte, i int, n *int) (int, error) {
	end, ok := jsonobject.Skip(b, i, 0)
	if !ok || i >= len(b) || !(b[i] == '-' || b[i] >= '0' && b[i] <= '9') {
		return end, errNotDocument
	}
	v, err := strconv.ParseFloat(string(b[i:end]), 64)
	if err != nil {
		return end, errNotDocument
	}
	*n = int(v)
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
