package imports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// How the SARIF parser reads its input: token by token, counting lines
// for its errors.

// line is the 1-based line of the decoder's position: the lines read so
// far less those still in the decoder's buffer.
func (p *sarifParser) line() int {
	rest, _ := io.ReadAll(p.dec.Buffered()) // a bytes.Reader: no error
	return 1 + p.lines.lines - bytes.Count(rest, []byte{'\n'})
}

// lineReader counts the newlines read through it.
type lineReader struct {
	r     io.Reader
	lines int
}

func (l *lineReader) Read(b []byte) (int, error) {
	n, err := l.r.Read(b)
	l.lines += bytes.Count(b[:n], []byte{'\n'})
	return n, err
}

// delim reads the next token and checks it is d.
func (p *sarifParser) delim(d json.Delim, what string) error {
	t, err := p.dec.Token()
	if err != nil {
		return p.errf("%s: %v", what, err)
	}
	if got, ok := t.(json.Delim); !ok || got != d {
		return p.errf("%s: want %q, got %v", what, d, t)
	}
	return nil
}

// key reads an object key.
func (p *sarifParser) key() (string, error) {
	t, err := p.dec.Token()
	if err != nil {
		return "", p.errf("%v", err)
	}
	k, ok := t.(string)
	if !ok {
		return "", p.errf("want an object key, got %v", t)
	}
	return k, nil
}

// decode decodes the next value into v, naming what on error.
func (p *sarifParser) decode(v any, what string) error {
	if err := p.dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return p.errf("%s: %s: want %s, got %s", what, te.Field, te.Type, te.Value)
		}
		return p.errf("%s: %v", what, err)
	}
	return nil
}

// skip passes over the next value token by token: a large part the
// mapping does not read (graphs, logical locations) is never held whole.
func (p *sarifParser) skip(what string) error {
	depth := 0
	for {
		t, err := p.dec.Token()
		if err != nil {
			return p.errf("%s: %v", what, err)
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// elements reads an array one element at a time (each decoded as raw
// JSON and handed to each, which keeps what it needs); a value that is
// not an array is skipped, as the mapping never needed it.
func (p *sarifParser) elements(what string, each func(i int, raw json.RawMessage)) error {
	t, err := p.dec.Token()
	if err != nil {
		return p.errf("%s: %v", what, err)
	}
	switch t {
	case json.Delim('['):
	case json.Delim('{'):
		// Not an array: pass over the object (its opening is read).
		for p.dec.More() {
			if _, err := p.key(); err != nil {
				return err
			}
			if err := p.skip(what); err != nil {
				return err
			}
		}
		return p.delim('}', what)
	default:
		return nil // a scalar
	}
	for i := 0; p.dec.More(); i++ {
		var raw json.RawMessage
		if err := p.decode(&raw, fmt.Sprintf("%s[%d]", what, i)); err != nil {
			return err
		}
		each(i, raw)
	}
	return p.delim(']', what)
}
