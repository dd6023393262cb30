// Package yamldoc reads the YAML the deployment files are written in, for
// their tests, so that they need no YAML library.
package yamldoc

import (
	"fmt"
	"strconv"
	"strings"
)

// A reader of the YAML the deployment files are written in, so that the
// tests need no YAML library: block mappings and sequences (a sequence may sit
// at its key's indentation), one-line flow collections ({a: b}, [a, b]),
// plain and quoted scalars, literal and folded block scalars, comments, and
// documents separated by "---". Anything else (anchors, tags, multi-line
// flow collections, tabs) is an error, as are indentation that fits no
// parent and a key repeated in one mapping: the slips that make a manifest
// mean something else than it reads. Scalars stay strings.

// Parse parses the documents of src.
func Parse(src string) ([]any, error) {
	var docs []any
	var cur []string
	flush := func(first int) error {
		p := &yamlParser{lines: cur, first: first}
		v, err := p.document()
		if err != nil {
			return err
		}
		if v != nil {
			docs = append(docs, v)
		}
		cur = nil
		return nil
	}
	first := 1
	for i, l := range strings.Split(src, "\n") {
		if strings.TrimRight(l, " ") == "---" {
			if err := flush(first); err != nil {
				return nil, err
			}
			first = i + 2
			continue
		}
		cur = append(cur, l)
	}
	return docs, flush(first)
}

type yamlParser struct {
	lines []string
	first int // line number of lines[0]
	i     int
}

func (p *yamlParser) errorf(format string, a ...any) error {
	return fmt.Errorf("line %d: %s", p.first+p.i, fmt.Sprintf(format, a...))
}

// next skips blank and comment lines and returns the next line's
// indentation and text (without a trailing comment); ok is false at the
// end.
func (p *yamlParser) next() (indent int, text string, ok bool, err error) {
	for ; p.i < len(p.lines); p.i++ {
		l := p.lines[p.i]
		if strings.Contains(l, "\t") {
			return 0, "", false, p.errorf("tab")
		}
		t := strings.TrimLeft(l, " ")
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		return len(l) - len(t), stripComment(t), true, nil
	}
	return 0, "", false, nil
}

func (p *yamlParser) document() (any, error) {
	indent, _, ok, err := p.next()
	if err != nil || !ok {
		return nil, err
	}
	v, err := p.node(indent)
	if err != nil {
		return nil, err
	}
	if _, _, ok, err := p.next(); err != nil || ok {
		return nil, firstErr(err, p.errorf("indentation fits no parent"))
	}
	return v, nil
}

func firstErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// node parses the block node whose first line is indented indent.
func (p *yamlParser) node(indent int) (any, error) {
	_, text, _, err := p.next()
	if err != nil {
		return nil, err
	}
	if text == "-" || strings.HasPrefix(text, "- ") {
		return p.sequence(indent)
	}
	return p.mapping(indent, "")
}

func (p *yamlParser) sequence(indent int) ([]any, error) {
	var seq []any
	for {
		ind, text, ok, err := p.next()
		if err != nil {
			return nil, err
		}
		if !ok || ind < indent || !(text == "-" || strings.HasPrefix(text, "- ")) {
			return seq, nil
		}
		if ind > indent {
			return nil, p.errorf("indentation fits no parent")
		}
		item := strings.TrimLeft(strings.TrimPrefix(text, "-"), " ")
		switch {
		case item == "":
			p.i++
			ind, _, ok, err := p.next()
			if err != nil || !ok || ind <= indent {
				return nil, firstErr(err, p.errorf("empty sequence item"))
			}
			v, err := p.node(ind)
			if err != nil {
				return nil, err
			}
			seq = append(seq, v)
		case isMappingEntry(item):
			// "- key: value": a mapping whose keys line up with key.
			v, err := p.mapping(indent+len(text)-len(item), item)
			if err != nil {
				return nil, err
			}
			seq = append(seq, v)
		default:
			v, err := blockValue(item)
			if err != nil {
				return nil, p.errorf("%v", err)
			}
			p.i++
			seq = append(seq, v)
		}
	}
}

// mapping parses a block mapping at indent; first, if not "", is its first
// entry, already read from a sequence item's line.
func (p *yamlParser) mapping(indent int, first string) (map[string]any, error) {
	m := map[string]any{}
	for {
		text := first
		if first == "" {
			ind, t, ok, err := p.next()
			if err != nil {
				return nil, err
			}
			if !ok || ind < indent || strings.HasPrefix(t, "- ") || t == "-" {
				return m, nil
			}
			if ind > indent {
				return nil, p.errorf("indentation fits no parent")
			}
			text = t
		}
		first = ""
		key, rest, ok := splitEntry(text)
		if !ok {
			return nil, p.errorf("not a key: value entry: %q", text)
		}
		if _, dup := m[key]; dup {
			return nil, p.errorf("key %q repeated", key)
		}
		p.i++
		switch {
		case rest == "|" || rest == "|-" || rest == ">" || rest == ">-":
			var b strings.Builder
			for ; p.i < len(p.lines); p.i++ {
				l := p.lines[p.i]
				if t := strings.TrimLeft(l, " "); t != "" && len(l)-len(t) <= indent {
					break
				}
				b.WriteString(strings.TrimSpace(l) + "\n")
			}
			m[key] = b.String()
		case rest != "":
			v, err := blockValue(rest)
			if err != nil {
				p.i--
				return nil, p.errorf("%v", err)
			}
			m[key] = v
		default:
			ind, t, ok, err := p.next()
			if err != nil {
				return nil, err
			}
			switch {
			case ok && ind > indent:
				v, err := p.node(ind)
				if err != nil {
					return nil, err
				}
				m[key] = v
			case ok && ind == indent && (t == "-" || strings.HasPrefix(t, "- ")):
				v, err := p.sequence(ind)
				if err != nil {
					return nil, err
				}
				m[key] = v
			default:
				m[key] = nil
			}
		}
	}
}

// stripComment drops a " #" comment outside quotes.
func stripComment(s string) string {
	var quote byte
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quote != 0:
			if c == quote {
				quote = 0
			} else if c == '\\' && quote == '"' {
				i++
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' && i > 0 && s[i-1] == ' ':
			return strings.TrimRight(s[:i], " ")
		}
	}
	return strings.TrimRight(s, " ")
}

// isMappingEntry reports whether s is "key: ..." rather than a scalar or a
// flow collection.
func isMappingEntry(s string) bool {
	if strings.HasPrefix(s, "{") || strings.HasPrefix(s, "[") || strings.HasPrefix(s, `"`) || strings.HasPrefix(s, "'") {
		return false
	}
	_, _, ok := splitEntry(s)
	return ok
}

// splitEntry splits "key: value" (or "key:") at the first ": " outside
// quotes.
func splitEntry(s string) (key, value string, ok bool) {
	k, rest, err := scalarToken(s, ": ")
	if err != nil {
		return "", "", false
	}
	switch {
	case strings.HasPrefix(rest, ": "):
		return k, strings.TrimSpace(rest[2:]), k != ""
	case rest == ":":
		return k, "", k != ""
	}
	return "", "", false
}

// flowValue parses a whole value: a scalar or a one-line flow collection.
func flowValue(s string) (any, error) {
	v, rest, err := flowNode(s)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(rest) != "" {
		return nil, fmt.Errorf("unexpected %q after a value", rest)
	}
	return v, nil
}

func flowNode(s string) (any, string, error) {
	s = strings.TrimLeft(s, " ")
	switch {
	case strings.HasPrefix(s, "{"):
		m := map[string]any{}
		s = strings.TrimLeft(s[1:], " ")
		for !strings.HasPrefix(s, "}") {
			k, rest, err := scalarToken(s, ":,}")
			if err != nil {
				return nil, "", err
			}
			if !strings.HasPrefix(rest, ": ") {
				return nil, "", fmt.Errorf("flow mapping entry without \": \" in %q", s)
			}
			if _, dup := m[k]; dup {
				return nil, "", fmt.Errorf("key %q repeated", k)
			}
			v, rest, err := flowNode(rest[2:])
			if err != nil {
				return nil, "", err
			}
			m[k] = v
			if s, err = flowSeparator(rest, "}"); err != nil {
				return nil, "", err
			}
		}
		return m, s[1:], nil
	case strings.HasPrefix(s, "["):
		l := []any{}
		s = strings.TrimLeft(s[1:], " ")
		for !strings.HasPrefix(s, "]") {
			v, rest, err := flowNode(s)
			if err != nil {
				return nil, "", err
			}
			l = append(l, v)
			if s, err = flowSeparator(rest, "]"); err != nil {
				return nil, "", err
			}
		}
		return l, s[1:], nil
	case strings.HasPrefix(s, "&") || strings.HasPrefix(s, "*") || strings.HasPrefix(s, "!"):
		return nil, "", fmt.Errorf("anchors, aliases and tags are not used here: %q", s)
	}
	return scalarToken(s, ",]}")
}

// flowSeparator expects ", " or the closing bracket after an item.
func flowSeparator(s, closing string) (string, error) {
	s = strings.TrimLeft(s, " ")
	switch {
	case strings.HasPrefix(s, ","):
		s = strings.TrimLeft(s[1:], " ")
		if strings.HasPrefix(s, closing) {
			return "", fmt.Errorf("empty item before %q", closing)
		}
		return s, nil
	case strings.HasPrefix(s, closing):
		return s, nil
	}
	return "", fmt.Errorf("expected \",\" or %q at %q", closing, s)
}

// scalarToken reads a quoted scalar, or a plain one that ends before any
// of stops (a ": " stop is the two characters), and returns it and the rest.
func scalarToken(s, stops string) (string, string, error) {
	if s == "" {
		return "", "", fmt.Errorf("missing value")
	}
	switch s[0] {
	case '"':
		for i := 1; i < len(s); i++ {
			if s[i] == '\\' {
				i++
				continue
			}
			if s[i] == '"' {
				v, err := strconv.Unquote(s[:i+1])
				return v, s[i+1:], err
			}
		}
		return "", "", fmt.Errorf("unterminated string %q", s)
	case '\'':
		for i := 1; i < len(s); i++ {
			if s[i] == '\'' {
				if i+1 < len(s) && s[i+1] == '\'' {
					i++
					continue
				}
				return strings.ReplaceAll(s[1:i], "''", "'"), s[i+1:], nil
			}
		}
		return "", "", fmt.Errorf("unterminated string %q", s)
	}
	end := len(s)
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune(stops, rune(s[i])) {
			continue
		}
		if s[i] == ':' && i+1 < len(s) && s[i+1] != ' ' {
			continue // "a:b" in a plain scalar (a URL, a port) ends nothing
		}
		if s[i] == ' ' {
			continue // only in ": "
		}
		end = i
		break
	}
	return strings.TrimRight(s[:end], " "), s[end:], nil
}

// blockValue parses the value after "key: " or "- ": a flow collection,
// a quoted scalar, or a plain scalar that runs to the end of the line.
func blockValue(s string) (any, error) {
	switch s[0] {
	case '{', '[', '"', '\'', '&', '*', '!':
		return flowValue(s)
	}
	return s, nil
}
