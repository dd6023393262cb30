package api

import (
	"maps"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/ghas-relay/ghas-relay/internal/console/index"
)

// The changes of a window can be a hundred thousand: they are written by
// hand, without reflection, in the JSON encoding/json would write (the
// same escapes, HTML characters included).

// appendChangeView writes one change of EachChange.
func appendChangeView(b []byte, v *index.ChangeView) []byte {
	b = appendChange(b, v.Kind, v.FindingKey, v.Type, v.Name, v.Repository, v.Owner)
	b = append(b, `,"from":`...)
	switch {
	case v.Scores:
		b = strconv.AppendInt(b, int64(v.FromScore), 10)
		b = append(b, `,"to":`...)
		b = strconv.AppendInt(b, int64(v.ToScore), 10)
	default:
		if v.From == "" {
			b = append(b, "null"...)
		} else {
			b = appendString(b, v.From)
		}
		b = append(b, `,"to":`...)
		b = appendString(b, v.To)
	}
	b = append(b, `,"when":"`...)
	b = time.UnixMilli(v.AtMillis).UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}

// The head and tail of the answer: the window first, the changes, then
// the counts (known once the window was read) — the order encoding/json
// would not use, which clients do not depend on.
func appendChangesHead(b []byte, since, until string) []byte {
	b = append(b, `{"since":`...)
	b = appendString(b, since)
	b = append(b, `,"until":`...)
	b = appendString(b, until)
	return append(b, `,"changes":[`...)
}

func appendChangesTail(b []byte, counts map[string]int, total int, truncated bool) []byte {
	b = append(b, `],"counts":{`...)
	kinds := slices.Sorted(maps.Keys(counts))
	for i, k := range kinds {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(counts[k]), 10)
	}
	b = append(b, `},"total":`...)
	b = strconv.AppendInt(b, int64(total), 10)
	b = append(b, `,"truncated":`...)
	b = strconv.AppendBool(b, truncated)
	return append(b, "}\n"...)
}

func appendChange(b []byte, kind, key, typ, name, repo, owner string) []byte {
	b = append(b, `{"kind":`...)
	b = appendString(b, kind)
	b = append(b, `,"findingKey":`...)
	b = appendString(b, key)
	b = append(b, `,"type":`...)
	b = appendString(b, typ)
	b = append(b, `,"name":`...)
	b = appendString(b, name)
	b = append(b, `,"repository":`...)
	b = appendString(b, repo)
	b = append(b, `,"owner":`...)
	return appendString(b, owner)
}

// appendValue writes a change's from or to: null, a string or a number.
func appendValue(b []byte, v any) []byte {
	switch x := v.(type) {
	case string:
		return appendString(b, x)
	case int:
		return strconv.AppendInt(b, int64(x), 10)
	}
	return append(b, "null"...)
}

const hex = "0123456789abcdef"

// appendString writes s as a JSON string as encoding/json does: control
// characters, quotes, backslashes, <, > and & escaped, invalid UTF-8 as
// U+FFFD, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendPage writes a page of the finding list as encoding/json would.
func appendPage(b []byte, p index.Page) []byte {
	b = append(b, `{"findings":[`...)
	for i := range p.Findings {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendItem(b, &p.Findings[i])
	}
	b = append(b, ']')
	if p.Next != "" {
		b = append(b, `,"next":`...)
		b = appendString(b, p.Next)
	}
	return append(b, "}\n"...)
}

func appendItem(b []byte, it *index.Item) []byte {
	b = append(b, `{"findingKey":`...)
	b = appendString(b, it.FindingKey)
	b = append(b, `,"type":`...)
	b = appendString(b, it.Type)
	b = append(b, `,"name":`...)
	b = appendString(b, it.Name)
	b = append(b, `,"repository":`...)
	b = appendString(b, it.Repository)
	b = append(b, `,"owner":`...)
	b = appendString(b, it.Owner)
	b = append(b, `,"source":`...)
	b = appendString(b, it.Source)
	b = append(b, `,"findingStatus":`...)
	b = appendString(b, it.Status)
	b = append(b, `,"severity":`...)
	b = appendString(b, it.Severity)
	if it.RuleID != "" {
		b = append(b, `,"ruleId":`...)
		b = appendString(b, it.RuleID)
	}
	b = append(b, `,"priority":`...)
	if it.Priority == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"score":`...)
		b = strconv.AppendInt(b, int64(it.Priority.Score), 10)
		b = append(b, `,"factors":`...)
		if it.Priority.Factors == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, '[')
			for i, f := range it.Priority.Factors {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"name":`...)
				b = appendString(b, f.Name)
				b = append(b, `,"value":`...)
				b = appendString(b, f.Value)
				b = append(b, `,"points":`...)
				b = strconv.AppendInt(b, int64(f.Points), 10)
				b = append(b, '}')
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	for _, t := range []struct {
		name string
		t    index.Time
	}{{`,"firstFoundOn":`, it.FirstFoundOn}, {`,"lastFoundOn":`, it.LastFoundOn}, {`,"lastFixedOn":`, it.LastFixedOn}} {
		b = append(b, t.name...)
		if t.t.IsZero() {
			b = append(b, "null"...)
			continue
		}
		b = append(b, '"')
		b = t.t.AppendRFC3339(b)
		b = append(b, '"')
	}
	return append(b, '}')
}
