package tokens

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

const file = `# tokens of /imports
ci-main   s3cr3t-main   octo-org/*  other-org/app   # the CI of two organisations
   
scanner	tok-scanner
legacy-bot tok,with,commas OCTO-ORG/Legacy
`

// TestFileForm: names, tokens, globs (case-insensitive), comments and
// blank lines.
func TestFileForm(t *testing.T) {
	s, err := Parse(file, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Names(); !slices.Equal(got, []string{"ci-main", "scanner", "legacy-bot"}) {
		t.Fatalf("names %v", got)
	}
	for _, c := range []struct {
		bearer, name, repo string
		found, allowed     bool
	}{
		{"s3cr3t-main", "ci-main", "octo-org/hello", true, true},
		{"s3cr3t-main", "ci-main", "Octo-Org/Hello", true, true},
		{"s3cr3t-main", "ci-main", "other-org/app", true, true},
		{"s3cr3t-main", "ci-main", "other-org/app2", true, false},
		{"s3cr3t-main", "ci-main", "evil/octo-org", true, false},
		{"tok-scanner", "scanner", "anyone/anything", true, true},
		{"tok,with,commas", "legacy-bot", "octo-org/legacy", true, true},
		{"tok,with,commas", "legacy-bot", "octo-org/other", true, false},
		{"s3cr3t-mai", "", "", false, false},
		{"s3cr3t-main ", "", "", false, false},
		{"", "", "", false, false},
		{"ci-main", "", "", false, false},
		{"#", "", "", false, false},
	} {
		tok, ok := s.Lookup(c.bearer)
		if ok != c.found || tok.Name != c.name {
			t.Errorf("Lookup(%q) = %q %v, want %q %v", c.bearer, tok.Name, ok, c.name, c.found)
			continue
		}
		if ok && tok.Allows(c.repo) != c.allowed {
			t.Errorf("%s allows %s: %v, want %v", tok.Name, c.repo, !c.allowed, c.allowed)
		}
	}
}

// TestCommaForm: the environment's form, and a file of one line without
// spaces (a file written before names), are unscoped tokens named by
// position.
func TestCommaForm(t *testing.T) {
	for _, c := range []struct {
		text     string
		fileForm bool
	}{
		{" old-token, new-token ,", false},
		{"old-token,new-token", true},
		{"# rotated on Monday\nold-token,new-token\n\n", true},
	} {
		s, err := Parse(c.text, c.fileForm)
		if err != nil {
			t.Fatalf("%q: %v", c.text, err)
		}
		if got := s.Names(); !slices.Equal(got, []string{"token-1", "token-2"}) {
			t.Errorf("%q: names %v", c.text, got)
		}
		tok, ok := s.Lookup("new-token")
		if !ok || tok.Name != "token-2" || !tok.Allows("any/repo") {
			t.Errorf("%q: new-token is %+v %v", c.text, tok, ok)
		}
	}
	// The environment never holds the line form: a space is part of a
	// token there, as it was.
	s, _ := Parse("ci tok octo/*", false)
	if _, ok := s.Lookup("tok"); ok || s.Len() != 1 {
		t.Errorf("comma form read a line form")
	}
	if s, err := Parse("", true); err != nil || s.Len() != 0 {
		t.Errorf("empty file: %v, %d tokens", err, s.Len())
	}
	if s, err := Parse("# nothing yet\n", true); err != nil || s.Len() != 0 {
		t.Errorf("comments only: %v, %d tokens", err, s.Len())
	}
}

// TestInvalidFile: each mistake is refused with its line, and no error
// quotes a token.
func TestInvalidFile(t *testing.T) {
	for _, c := range []struct {
		name, text string
		line       int
		want       string
	}{
		{"duplicate name", "a tok-a\nb tok-b\na tok-c\n", 3, "taken by line 1"},
		{"duplicate token", "a tok-a\nb tok-a\n", 2, "the token of b is the token of a"},
		{"bad glob", "a tok-a octo/[\n", 1, "not a valid pattern"},
		{"glob without owner", "a tok-a octo\n", 1, "owner/name"},
		{"name without token", "a tok-a\nsecret-token-b\n", 2, "a name and no token"},
		{"name without token, comment after", "a tok-a\nb # later\n", 2, "a name and no token"},
		{"bad name", "a tok-a\nsecret!token b\n", 2, "characters other than"},
		{"long name", "a tok-a\n" + strings.Repeat("n", 65) + " tok-b\n", 2, "longer than 64"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.text, true)
			var te *Error
			if !errors.As(err, &te) || te.Line != c.line || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want line %d with %q", err, c.line, c.want)
			}
			for _, secret := range []string{"tok-", "secret"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q quotes a token", err)
				}
			}
		})
	}
}

// FuzzParse: the parser never panics; what it accepts looks every token
// up to its own name, and no error quotes a token of the text.
func FuzzParse(f *testing.F) {
	f.Add(file, true)
	f.Add("a,b,,c", false)
	f.Add("a,b", true)
	f.Add("x y\nx z\n", true)
	f.Add("n t o/[", true)
	f.Fuzz(func(t *testing.T, text string, fileForm bool) {
		s, err := Parse(text, fileForm)
		if err != nil {
			var te *Error
			if !errors.As(err, &te) {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		if len(s.Names()) != s.Len() {
			t.Fatalf("names %v for %d tokens", s.Names(), s.Len())
		}
		seen := map[string]bool{}
		for _, n := range s.Names() {
			if n == "" || seen[n] {
				t.Fatalf("names %v: empty or repeated", s.Names())
			}
			seen[n] = true
		}
		if fileForm {
			lines := contentLines(text)
			if len(lines) == 1 && len(lines[0].fields) == 1 {
				return // the comma form
			}
			for _, l := range lines {
				tok, ok := s.Lookup(l.fields[1])
				if !ok || tok.Name != l.fields[0] {
					t.Fatalf("line %d: token looks up %q %v, want %q", l.n, tok.Name, ok, l.fields[0])
				}
			}
		}
	})
}
