// Package tokens owns the bearer tokens of the receiver's API routes
// (IMPORT_TOKENS, later DECISION_TOKENS): their two written forms, the
// lookup of a request's bearer token in constant time, and the repositories
// each token may act on. A token has a name, which logs and records carry
// in its place; the token itself is kept only as a SHA-256 digest and never
// appears in an error.
//
// The comma form (an environment variable, or a file of one line without
// spaces: the form such files had before names) is a list of unscoped
// tokens named token-1, token-2, … in order. The file form is one token a
// line:
//
//	<name> <token> [<repository glob> ...]
//
// fields separated by spaces or tabs, a field that starts with # starting
// a comment to the end of the line, blank lines ignored. Globs are
// owner/name path.Match patterns, case-insensitive, as in INCLUDE_REPOS;
// a token without globs may act on every repository.
package tokens

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strconv"
	"strings"

	"github.com/ghas-relay/ghas-relay/internal/scope"
)

// maxName bounds a token's name (it goes into logs and records).
const maxName = 64

// Token is one configured token: its name and the repositories it may act
// on.
type Token struct {
	// Name identifies the token in logs and records (never the token).
	Name string
	// globs are lower-case owner/name globs; none: every repository.
	globs []string
}

// Allows reports whether the token may act on the repository fullName
// (owner/name).
func (t Token) Allows(fullName string) bool {
	return len(t.globs) == 0 || scope.MatchRepo(t.globs, fullName)
}

// Globs returns the token's repository globs (lower case; none: every
// repository).
func (t Token) Globs() []string { return append([]string(nil), t.globs...) }

// Set is the configured tokens. The zero value holds none.
type Set struct {
	tokens  []Token
	digests [][sha256.Size]byte
}

// Len is the number of tokens.
func (s Set) Len() int { return len(s.tokens) }

// Names lists the tokens' names in the order written.
func (s Set) Names() []string {
	out := make([]string, len(s.tokens))
	for i, t := range s.tokens {
		out[i] = t.Name
	}
	return out
}

// Lookup finds the token a request presented. Every configured token is
// compared, each in constant time over digests of equal length, so neither
// the time taken nor the lengths compared tell which token came close.
func (s Set) Lookup(bearer string) (Token, bool) {
	if bearer == "" {
		return Token{}, false
	}
	d := sha256.Sum256([]byte(bearer))
	found, at := 0, 0
	for i := range s.digests {
		eq := subtle.ConstantTimeCompare(d[:], s.digests[i][:])
		at = subtle.ConstantTimeSelect(eq, i, at)
		found |= eq
	}
	if found == 0 {
		return Token{}, false
	}
	return s.tokens[at], true
}

// Error is a token list that cannot be used: Line is its line in the file
// form (0 in the comma form). The message never holds a token.
type Error struct {
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// Parse reads a token list. fileForm is true for the contents of a file
// (…_FILE): the line form, or the comma form when the file's only line
// holds no space; false for an environment variable: the comma form.
func Parse(text string, fileForm bool) (Set, error) {
	if !fileForm {
		return parseComma(text), nil
	}
	lines := contentLines(text)
	if len(lines) == 1 && len(lines[0].fields) == 1 {
		// A file written before tokens had names: tok1,tok2.
		return parseComma(lines[0].fields[0]), nil
	}
	var s Set
	names := map[string]int{}
	digests := map[[sha256.Size]byte]string{}
	for _, l := range lines {
		// Until a line is known to be well formed its first field may be
		// a token written in the wrong place: errors do not quote it.
		name := l.fields[0]
		if len(l.fields) < 2 {
			return Set{}, &Error{Line: l.n, Msg: "a name and no token (want: <name> <token> [<repository glob> ...])"}
		}
		if err := checkName(name); err != nil {
			return Set{}, &Error{Line: l.n, Msg: err.Error()}
		}
		if at, dup := names[name]; dup {
			return Set{}, &Error{Line: l.n, Msg: fmt.Sprintf("the name is taken by line %d", at)}
		}
		names[name] = l.n
		tok := l.fields[1]
		if strings.IndexFunc(tok, func(r rune) bool { return r < 0x21 || r == 0x7f }) >= 0 {
			return Set{}, &Error{Line: l.n, Msg: fmt.Sprintf("the token of %s holds a control character", name)}
		}
		d := sha256.Sum256([]byte(tok))
		if other, dup := digests[d]; dup {
			return Set{}, &Error{Line: l.n, Msg: fmt.Sprintf("the token of %s is the token of %s", name, other)}
		}
		digests[d] = name
		t := Token{Name: name}
		for _, g := range l.fields[2:] {
			lg, err := scope.RepoGlob(g)
			if err != nil {
				return Set{}, &Error{Line: l.n, Msg: fmt.Sprintf("%s: %v", name, err)}
			}
			t.globs = append(t.globs, lg)
		}
		s.tokens = append(s.tokens, t)
		s.digests = append(s.digests, d)
	}
	return s, nil
}

// parseComma is the comma form: blanks dropped, names by position.
// Repeated tokens are kept (harmless), as before names.
func parseComma(text string) Set {
	var s Set
	for _, t := range strings.Split(text, ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		s.tokens = append(s.tokens, Token{Name: "token-" + strconv.Itoa(len(s.tokens)+1)})
		s.digests = append(s.digests, sha256.Sum256([]byte(t)))
	}
	return s
}

type line struct {
	n      int
	fields []string
}

// contentLines are the lines with fields, comments removed.
func contentLines(text string) []line {
	var out []line
	for i, l := range strings.Split(text, "\n") {
		var fields []string
		for _, f := range strings.Fields(l) {
			if strings.HasPrefix(f, "#") {
				break
			}
			fields = append(fields, f)
		}
		if len(fields) > 0 {
			out = append(out, line{n: i + 1, fields: fields})
		}
	}
	return out
}

// checkName accepts names that are safe in a log line and a JSON record.
func checkName(name string) error {
	if len(name) > maxName {
		return fmt.Errorf("the name is longer than %d characters", maxName)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._@-", r)) {
			return fmt.Errorf("the name holds characters other than letters, digits and . _ @ -")
		}
	}
	return nil
}
