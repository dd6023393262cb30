package docscheck

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/config"
)

// Settings are the settings a binary's parseConfig answered -h with
// (err): a *config.Help.
func Settings(t testing.TB, err error) []config.Setting {
	t.Helper()
	var h *config.Help
	if !errors.As(err, &h) || len(h.Settings) == 0 {
		t.Fatalf("-h answered %v, not the settings", err)
	}
	return h.Settings
}

// Docs are the three documents that list settings.
type Docs struct{ Contract, README, Operations string }

// Read reads the docs of the repository at root.
func Read(t testing.TB, root string) Docs {
	t.Helper()
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return Docs{read("docs/contract.md"), read("README.md"), read("docs/operations.md")}
}

// Run holds the docs of the repository at root to b, one subtest per
// document, and shows on copies of them broken one setting at a time that
// each check would notice.
func Run(t *testing.T, root string, b Binary) {
	d := Read(t, root)
	checks := []struct {
		name string
		f    func(string, Binary) []string
		md   string
	}{{"contract", Contract, d.Contract}, {"readme", README, d.README}, {"operations", Operations, d.Operations}}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			for _, p := range c.f(c.md, b) {
				t.Error(p)
			}
		})
	}
	t.Run("bites", func(t *testing.T) { Bites(t, d, b) })
}

// Bites breaks copies of d one way at a time — a setting's row removed, its
// default changed, a row for a setting that does not exist added, an
// operations phrase's default changed — and fails unless the check of the
// copy names the setting broken.
func Bites(t *testing.T, d Docs, b Binary) {
	rowsOf := func(rows []row, users []string) []row {
		var out []row
		for _, r := range rows {
			if slices.Contains(contractTables(b.Name), r.table) || slices.ContainsFunc(r.users, func(u string) bool { return slices.Contains(users, u) }) {
				out = append(out, r)
			}
		}
		return out
	}
	docs := []struct {
		name, md string
		check    func(string, Binary) []string
		rows     []row
		falseRow string
	}{
		{"docs/contract.md", d.Contract, Contract, rowsOf(tables(d.Contract, contractHead()), nil),
			"| `NO_SUCH_SETTING` | `-no-such-setting` | a setting no binary has | none | implemented |"},
		{"README.md", d.README, README, rowsOf(tables(d.README, readmeHead()), readmeUsers(b.Name)),
			"| `NO_SUCH_SETTING` | " + b.Name + " | a setting no binary has | — |"},
	}
	for _, doc := range docs {
		if len(doc.rows) == 0 {
			continue // README.md for a binary it does not list
		}
		for _, s := range b.Settings {
			k := key(s)
			i := slices.IndexFunc(doc.rows, func(r row) bool { return slices.Contains(r.keys(), k) })
			if i < 0 {
				continue // undocumented: Run's check says so
			}
			line := doc.rows[i].line
			expect(t, doc.name+" without the row of "+k, doc.check(edit(doc.md, line, nil), b), k)
			c := cells(strings.Split(doc.md, "\n")[line-1])
			c[3] = "`no-such-default`"
			expect(t, doc.name+" with a wrong default for "+k, doc.check(edit(doc.md, line, c), b), k)
		}
		at := doc.rows[0].line
		added := strings.Join(slices.Insert(strings.Split(doc.md, "\n"), at, doc.falseRow), "\n")
		expect(t, doc.name+" with a row of a setting that does not exist", doc.check(added, b), "NO_SUCH_SETTING")
	}
	for _, p := range phrases(d.Operations) {
		for _, e := range p.envs {
			if slices.ContainsFunc(b.Settings, func(s config.Setting) bool { return s.Env == e }) {
				broken := d.Operations[:p.start] + "no-such-default" + d.Operations[p.end:]
				expect(t, "docs/operations.md with a wrong default for "+e, Operations(broken, b), e)
			}
		}
	}
}

// edit replaces the 1-based line of md by the table row of cells c, or
// removes it when c is nil.
func edit(md string, line int, c []string) string {
	lines := strings.Split(md, "\n")
	if c == nil {
		return strings.Join(slices.Delete(lines, line-1, line), "\n")
	}
	lines[line-1] = "| " + strings.Join(c, " | ") + " |"
	return strings.Join(lines, "\n")
}

// expect fails unless a problem names the setting k.
func expect(t *testing.T, what string, problems []string, k string) {
	t.Helper()
	for _, p := range problems {
		if strings.Contains(p, ": "+k+": ") {
			return
		}
	}
	t.Errorf("%s: no problem names %s (got %q)", what, k, problems)
}
