// Package docscheck holds the documentation of the settings to the code
// (test-only): docs/contract.md's settings tables, README.md's settings
// table and docs/operations.md's "`SETTING` (default X)" phrases must
// list every setting a binary registers, nothing it does not, and its
// defaults. Each binary's docs_test.go reads its settings through its own
// parseConfig (-h answers a *config.Help) and calls Run.
package docscheck

import (
	"regexp"
	"strings"
)

// row is one row of a settings table.
type row struct {
	line  int      // 1-based line in its file
	table string   // the heading above the table
	envs  []string // environment variables named in the env cell
	flags []string // flags (without the dash) named in the flag cell
	users []string // README: the "used by" cell, split
	def   string   // the default cell as written
	bad   []string // backquoted words of the env or flag cell that are neither
}

// keys are what the row documents: its variables, or its flags when it
// has none (a flag-only switch such as -once).
func (r row) keys() []string {
	if len(r.envs) > 0 {
		return r.envs
	}
	k := make([]string, len(r.flags))
	for i, f := range r.flags {
		k[i] = "-" + f
	}
	return k
}

var (
	backquoted = regexp.MustCompile("`([^`]*)`")
	envName    = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	flagName   = regexp.MustCompile(`^-[a-z0-9][a-z0-9-]*$`)
)

// The column heads of the two kinds of settings tables.
func contractHead() []string { return []string{"env", "flag", "meaning", "default", "status"} }
func readmeHead() []string   { return []string{"env", "used by", "meaning", "default"} }

// cells splits a markdown table line on its unescaped bars.
func cells(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(line, "|")
	line = strings.TrimSuffix(line, "|")
	var out []string
	var b strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			b.WriteByte('|')
			i++
		case line[i] == '|':
			out = append(out, strings.TrimSpace(b.String()))
			b.Reset()
		default:
			b.WriteByte(line[i])
		}
	}
	return append(out, strings.TrimSpace(b.String()))
}

func equalHead(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if !strings.EqualFold(got[i], want[i]) {
			return false
		}
	}
	return true
}

// tables returns the rows of every table of md whose column heads are
// head, each with the heading it stands under.
func tables(md string, head []string) []row {
	lines := strings.Split(md, "\n")
	var rows []row
	heading := ""
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.HasPrefix(l, "#") {
			heading = strings.TrimSpace(strings.TrimLeft(l, "#"))
			continue
		}
		if !strings.HasPrefix(l, "|") || i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "|--") || !equalHead(cells(l), head) {
			continue
		}
		for i += 2; i < len(lines) && strings.HasPrefix(lines[i], "|"); i++ {
			rows = append(rows, parseRow(cells(lines[i]), i+1, heading, len(head) == len(readmeHead())))
		}
	}
	return rows
}

func parseRow(c []string, line int, table string, readme bool) row {
	for len(c) < 5 {
		c = append(c, "")
	}
	r := row{line: line, table: table}
	for _, m := range backquoted.FindAllStringSubmatch(c[0], -1) {
		if envName.MatchString(m[1]) {
			r.envs = append(r.envs, m[1])
		} else {
			r.bad = append(r.bad, m[1])
		}
	}
	if readme {
		for _, u := range strings.Split(c[1], ",") {
			r.users = append(r.users, strings.TrimSpace(u))
		}
		r.def = c[3]
		return r
	}
	for _, m := range backquoted.FindAllStringSubmatch(c[1], -1) {
		if flagName.MatchString(m[1]) {
			r.flags = append(r.flags, m[1][1:])
		} else {
			r.bad = append(r.bad, m[1])
		}
	}
	r.def = c[3]
	return r
}

// phrase is a "`SETTING` (default X" in prose.
type phrase struct {
	line       int
	envs       []string
	value      string
	start, end int // of value in the text
}

// opsDefault finds "`A` (default X", "`A`, `B` (default X" and
// "`A` word (default X" — X ends at , : ; or ).
var opsDefault = regexp.MustCompile("((?:`[A-Z][A-Z0-9_]*`,\\s*)*`[A-Z][A-Z0-9_]*`)(?:\\s+[a-z]+)?\\s+\\(default\\s+([^,:;)]+)")

func phrases(md string) []phrase {
	var out []phrase
	for _, m := range opsDefault.FindAllStringSubmatchIndex(md, -1) {
		p := phrase{
			line:  strings.Count(md[:m[0]], "\n") + 1,
			value: strings.TrimSpace(md[m[4]:m[5]]),
			start: m[4],
			end:   m[5],
		}
		for _, e := range backquoted.FindAllStringSubmatch(md[m[2]:m[3]], -1) {
			p.envs = append(p.envs, e[1])
		}
		out = append(out, p)
	}
	return out
}
