package docscheck

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/config"
)

// Binary is a binary's name (as the docs say it: "receiver") and the
// settings its flag set registers.
type Binary struct {
	Name     string
	Settings []config.Setting
}

const commonTable = "Settings every binary has"

// contractTables names the settings tables of docs/contract.md, by their
// headings, that hold a binary's settings.
func contractTables(binary string) []string {
	const (
		app   = "GitHub App (processor and reconciler)"
		scope = "Scope, ownership and tags (processor and reconciler)"
	)
	switch binary {
	case "receiver":
		return []string{commonTable, "Receiver (`cmd/receiver`)"}
	case "processor":
		return []string{commonTable, "Processor (`cmd/processor`)", app, scope}
	case "reconciler":
		return []string{commonTable, "Reconciler (`cmd/reconciler`)", app, scope}
	case "ghas-import":
		return []string{"Import command (`cmd/ghas-import`)"}
	case "console":
		return []string{commonTable, "Console (`cmd/console`)"}
	}
	return nil
}

// binaries are the binaries whose settings the docs list. cmd/demo is not
// one: its few flags are not settings (no environment variable).
func binaries() []string {
	return []string{"receiver", "processor", "reconciler", "ghas-import", "console"}
}

// readmeUsers are the words of README.md's "used by" column that mean the
// binary. The README lists the settings of the four services; the
// ghas-import command's are in docs/contract.md only.
func readmeUsers(binary string) []string {
	switch binary {
	case "receiver", "processor", "reconciler", "console":
		return []string{binary, "all"}
	}
	return nil
}

// prose are the defaults documented in words rather than as the value the
// code registers (code); anything else must be the value itself.
func prose(env string) (docs []string, code string, ok bool) {
	switch env {
	case "ENRICH": // chosen at start: whether App credentials are set
		return []string{"auto when App credentials are set, else never", "auto with App credentials, else never"}, "", true
	case "INCLUDE_REPOS": // empty: every repository
		return []string{"all"}, "", true
	case "INCLUDE_TYPES": // empty: sast, sca and secret
		return []string{"all three"}, "", true
	}
	return nil, "", false
}

func key(s config.Setting) string {
	if s.Env == "" {
		return "-" + s.Flag
	}
	return s.Env
}

// Contract returns every disagreement between docs/contract.md (md) and
// b's settings, one line each.
func Contract(md string, b Binary) []string {
	want := contractTables(b.Name)
	known := []string{}
	for _, n := range binaries() {
		known = append(known, contractTables(n)...)
	}
	var problems []string
	var rows []row
	seen := map[string]bool{}
	for _, r := range tables(md, contractHead()) {
		if !slices.Contains(known, r.table) && !seen[r.table] {
			seen[r.table] = true
			problems = append(problems, fmt.Sprintf("docs/contract.md:%d: %s: a settings table no binary claims (name it in docscheck)", r.line, r.table))
		}
		if slices.Contains(want, r.table) {
			rows = append(rows, r)
		}
	}
	return append(problems, compare("docs/contract.md", rows, b, true, want)...)
}

// README returns every disagreement between README.md's settings table
// (md) and b's settings; nothing for a binary the README does not list.
func README(md string, b Binary) []string {
	users := readmeUsers(b.Name)
	if users == nil {
		return nil
	}
	var problems []string
	var rows []row
	for _, r := range tables(md, readmeHead()) {
		mine := false
		for _, u := range r.users {
			if u != "all" && !slices.Contains(binaries(), u) {
				problems = append(problems, fmt.Sprintf("README.md:%d: %s: used by %q, which is no binary", r.line, strings.Join(r.keys(), ", "), u))
			}
			mine = mine || slices.Contains(users, u)
		}
		if mine {
			rows = append(rows, r)
		}
	}
	return append(problems, compare("README.md", rows, b, false, []string{"the settings table"})...)
}

// Operations returns the "`SETTING` (default X)" phrases of
// docs/operations.md (md) whose X is not b's default of SETTING.
func Operations(md string, b Binary) []string {
	var problems []string
	for _, p := range phrases(md) {
		for _, e := range p.envs {
			i := slices.IndexFunc(b.Settings, func(s config.Setting) bool { return s.Env == e })
			if i < 0 {
				continue
			}
			if s := b.Settings[i]; !sameDefault(e, normal(p.value), s.Default) {
				problems = append(problems, fmt.Sprintf("docs/operations.md:%d: %s: documented default %q, the code's is %q", p.line, e, p.value, s.Default))
			}
		}
	}
	return problems
}

// compare holds rows (the documented settings of b) and b's settings to
// each other: both directions, the flags when withFlags, the defaults.
func compare(file string, rows []row, b Binary, withFlags bool, where []string) []string {
	var problems []string
	add := func(line int, k, format string, a ...any) {
		at := file
		if line > 0 {
			at = fmt.Sprintf("%s:%d", file, line)
		}
		problems = append(problems, fmt.Sprintf("%s: %s: %s", at, k, fmt.Sprintf(format, a...)))
	}
	envs, flags := map[string]bool{}, map[string]bool{}
	for _, s := range b.Settings {
		envs[s.Env] = s.Env != ""
		flags[s.Flag] = s.Flag != ""
	}
	for _, r := range rows {
		for _, w := range r.bad {
			add(r.line, w, "neither a variable nor a flag")
		}
		if len(r.keys()) == 0 {
			add(r.line, "row", "names no setting")
		}
		for _, e := range r.envs {
			if !envs[e] {
				add(r.line, e, "documented for %s, which has no such setting", b.Name)
			}
		}
		for _, f := range r.flags {
			if withFlags && !flags[f] {
				add(r.line, "-"+f, "documented for %s, which has no such flag", b.Name)
			}
		}
	}
	for _, s := range b.Settings {
		k := key(s)
		if !withFlags && s.Env == "" {
			continue // the README's table lists variables only
		}
		var at []row
		for _, r := range rows {
			if slices.Contains(r.keys(), k) {
				at = append(at, r)
			}
		}
		switch len(at) {
		case 0:
			add(0, k, "a setting of %s, not documented in %s", b.Name, strings.Join(where, "; "))
			continue
		case 1:
		default:
			lines := []string{}
			for _, r := range at {
				lines = append(lines, fmt.Sprint(r.line))
			}
			add(0, k, "documented %d times for %s (lines %s)", len(at), b.Name, strings.Join(lines, ", "))
			continue
		}
		r := at[0]
		if withFlags && s.Env != "" && s.Flag != "" && !slices.Contains(r.flags, s.Flag) {
			add(r.line, k, "its flag -%s is not in its row", s.Flag)
		}
		if s.Secret && !slices.Contains(r.envs, s.Env+"_FILE") {
			add(r.line, k, "a secret: its row must name %s_FILE with it", s.Env)
		}
		doc, err := defaultOf(r, k, b.Name)
		switch {
		case err != nil:
			add(r.line, k, "%v", err)
		case !sameDefault(s.Env, doc, s.Default):
			add(r.line, k, "documented default %q, the code's is %q", doc, s.Default)
		}
	}
	return problems
}

var (
	// perBinary is a default given per binary: "receiver `:9090`, processor `:9091`".
	perBinary = regexp.MustCompile("(receiver|processor|reconciler|ghas-import|console) `([^`]*)`")
	// annotated is a value with a remark: "`26214400` (25 MiB)".
	annotated = regexp.MustCompile(`^(.+?)\s+\([^()]*\)$`)
	// quoted is a value alone: "`json`".
	quoted = regexp.MustCompile("^`([^`]*)`$")
	// spelled is a duration in words: "2 min".
	spelled = regexp.MustCompile(`^(\d+) ?(s|min|h)$`)
)

// defaultOf is the documented default of the setting k of row r for the
// binary: one value for the row, or one per setting of the row, in order
// ("`info`, `json`", "`1h` / `10m`"), or one per binary.
func defaultOf(r row, k, binary string) (string, error) {
	if m := perBinary.FindAllStringSubmatch(r.def, -1); m != nil {
		for _, x := range m {
			if x[1] == binary {
				return x[2], nil
			}
		}
		return "", fmt.Errorf("default %q gives no value for %s", r.def, binary)
	}
	keys := r.keys()
	if len(keys) == 1 {
		return normal(r.def), nil
	}
	parts := splitTop(r.def)
	switch len(parts) {
	case 1:
		return normal(parts[0]), nil
	case len(keys):
		return normal(parts[slices.Index(keys, k)]), nil
	}
	return "", fmt.Errorf("default %q: %d values for %d settings", r.def, len(parts), len(keys))
}

// splitTop splits a default cell on the commas and slashes outside
// backquotes and parentheses.
func splitTop(cell string) []string {
	var parts []string
	quote, depth, from := false, 0, 0
	for i, c := range cell {
		switch {
		case c == '`':
			quote = !quote
		case quote:
		case c == '(':
			depth++
		case c == ')':
			depth--
		case depth == 0 && (c == ',' || c == '/'):
			parts = append(parts, strings.TrimSpace(cell[from:i]))
			from = i + 1
		}
	}
	return append(parts, strings.TrimSpace(cell[from:]))
}

// normal is a documented default as the code would print it: a value in
// backquotes is itself; unquoted "none" and "—" are empty, "off" is false;
// other words stay (they must be one of prose's).
func normal(v string) string {
	v = strings.TrimSpace(v)
	if m := annotated.FindStringSubmatch(v); m != nil {
		v = m[1]
	}
	if m := quoted.FindStringSubmatch(v); m != nil {
		return m[1]
	}
	switch v {
	case "none", "—", "-", "":
		return ""
	case "off":
		return "false"
	}
	return strings.ReplaceAll(v, "`", "")
}

// sameDefault reports whether doc (normalised) documents code, the
// registered default of env: equal, the same duration ("5m", "5m0s",
// "5 min"), or one of prose's words for it.
func sameDefault(env, doc, code string) bool {
	if doc == code {
		return true
	}
	if words, c, ok := prose(env); ok && slices.Contains(words, doc) {
		return code == c
	}
	if m := spelled.FindStringSubmatch(doc); m != nil {
		doc = m[1] + strings.TrimSuffix(m[2], "in")
	}
	d, err1 := time.ParseDuration(doc)
	c, err2 := time.ParseDuration(code)
	return err1 == nil && err2 == nil && d == c
}
