package transform

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// program is a map compiled for one kind of input: the trie of payload
// paths to extract and the rows to evaluate on the extracted values.
type program struct {
	root   *trie
	nslots int
	nseen  int
	rows   []compiledRow

	// Alert programs only: where the facts the code itself needs live.
	alertSeen, repoSeen int
	number, repoID      *compiledPath
	action              *compiledPath
	times               map[string]*compiledPath // alert timestamps by field name
}

type compiledRow struct {
	target   string
	set      setter
	fn       function
	args     map[string]string
	in       [][]*compiledPath // per source, its alternatives
	constant any               // for rows with a value
}

// compiledPath is one compiled path: a context source, or a slot of the
// scanner plus the segments to walk inside the slot's decoded value.
type compiledPath struct {
	ctx  string
	segs []pathStep // relative to the scanned root, before slot assignment
	slot int
	rest []pathStep
}

type builder struct {
	root  *trie
	paths []*compiledPath
	nseen int
}

func (b *builder) add(segs []pathStep) *compiledPath {
	p := &compiledPath{segs: segs, slot: -1}
	b.paths = append(b.paths, p)
	n := b.root
	for _, s := range segs {
		if s.index != -1 {
			break
		}
		if n.children == nil {
			n.children = map[string]*trie{}
		}
		c := n.children[s.key]
		if c == nil {
			c = newTrie()
			n.children[s.key] = c
		}
		n = c
	}
	n.slot = 0 // marks "wanted whole"; numbered in finish
	return p
}

// object marks a top-level key as an object the scanner reports seeing.
func (b *builder) object(key string) int {
	c := b.root.children[key]
	c.seen = b.nseen
	b.nseen++
	return c.seen
}

// finish numbers the wanted-whole nodes, drops what lies below them, and
// points every path at its slot.
func (b *builder) finish() int {
	nslots := 0
	var number func(n *trie)
	number = func(n *trie) {
		for _, c := range n.children {
			if c.slot >= 0 {
				c.slot = nslots
				nslots++
				c.children = nil
				continue
			}
			number(c)
		}
	}
	number(b.root)
	for _, p := range b.paths {
		n := b.root
		for i, s := range p.segs {
			n = n.children[s.key]
			if n.slot >= 0 {
				p.slot, p.rest = n.slot, p.segs[i+1:]
				break
			}
		}
	}
	return nslots
}

func mustSegs(p string) []pathStep {
	s, err := parsePath(p)
	if err != nil {
		panic(err) // only called with constant paths
	}
	return s
}

// compile builds the program of a map. With assetOnly, only rows that
// fill the asset part from repository fields are kept, and paths are
// relative to the repository object.
func compile(dataset string, rows []Row, assetOnly bool) (program, error) {
	b := &builder{root: newTrie()}
	var prog program
	ctxs := map[string]bool{}
	for _, c := range contextSources() {
		ctxs[c] = true
	}
rows:
	for i, r := range rows {
		set, ok := lookupTarget(r.Target)
		if !ok {
			return program{}, fmt.Errorf("row %d: unknown target %q", i, r.Target)
		}
		if assetOnly && isFindingTarget(r.Target) {
			continue
		}
		cr := compiledRow{target: r.Target, set: set, args: r.Args}
		if len(r.Value) > 0 {
			if len(r.Source) > 0 || r.Function != "" {
				return program{}, fmt.Errorf("row %d (%s): a value row has no source or function", i, r.Target)
			}
			dec := json.NewDecoder(bytes.NewReader(r.Value))
			dec.UseNumber()
			if err := dec.Decode(&cr.constant); err != nil {
				return program{}, fmt.Errorf("row %d (%s): value: %w", i, r.Target, err)
			}
			if cr.constant == nil {
				return program{}, fmt.Errorf("row %d (%s): value is null", i, r.Target)
			}
			if err := set(scratchDocument(), cr.constant); err != nil {
				return program{}, fmt.Errorf("row %d (%s): value: %w", i, r.Target, err)
			}
			prog.rows = append(prog.rows, cr)
			continue
		}
		fn, ok := lookupFunction(r.Function)
		if !ok {
			return program{}, fmt.Errorf("row %d (%s): unknown function %q (known: %s)", i, r.Target, r.Function, strings.Join(functionNames()[1:], ", "))
		}
		if fn.maxIn < 0 && len(r.Source) < fn.minIn {
			return program{}, fmt.Errorf("row %d (%s): function %q takes at least %d sources, got %d", i, r.Target, r.Function, fn.minIn, len(r.Source))
		}
		if len(r.Source) < fn.minIn || fn.maxIn >= 0 && len(r.Source) > fn.maxIn {
			return program{}, fmt.Errorf("row %d (%s): function %q takes %d to %d sources, got %d", i, r.Target, r.Function, fn.minIn, fn.maxIn, len(r.Source))
		}
		for _, a := range fn.needArgs {
			if r.Args[a] == "" {
				return program{}, fmt.Errorf("row %d (%s): function %q needs args.%s", i, r.Target, r.Function, a)
			}
		}
		cr.fn = fn
		var pending [][]pathStep // asset mode: add paths only for kept rows
		for _, src := range r.Source {
			var alts []*compiledPath
			for _, alt := range strings.Split(src, "|") {
				if ctxs[alt] {
					if assetOnly {
						continue rows
					}
					alts = append(alts, &compiledPath{ctx: alt, slot: -1})
					continue
				}
				if strings.HasPrefix(alt, "$") {
					return program{}, fmt.Errorf("row %d (%s): unknown context source %q (known: %s)", i, r.Target, alt, strings.Join(contextSources(), ", "))
				}
				segs, err := parsePath(alt)
				if err != nil {
					return program{}, fmt.Errorf("row %d (%s): source: %w", i, r.Target, err)
				}
				var payload []pathStep
				switch root := segs[0].key; {
				case root == alertRoot(dataset):
					if len(segs) < 2 || segs[1].index != -1 {
						return program{}, fmt.Errorf("row %d (%s): source %q: name a field of the alert", i, r.Target, alt)
					}
					if dataset == "secret" && segs[1].key == "secret" {
						return program{}, fmt.Errorf("row %d (%s): source %q: a secret's value is never stored", i, r.Target, alt)
					}
					if assetOnly {
						continue rows
					}
					payload = append([]pathStep{{key: "alert", index: -1}}, segs[1:]...)
				case root == "codeScanningAlerts" || root == "dependabotAlerts" || root == "secretScanningAlerts":
					return program{}, fmt.Errorf("row %d (%s): source %q: the %s map reads %s", i, r.Target, alt, dataset, alertRoot(dataset))
				case assetOnly:
					payload = segs
				default:
					payload = append([]pathStep{{key: "repository", index: -1}}, segs...)
				}
				if assetOnly {
					pending = append(pending, payload)
					alts = append(alts, nil)
					continue
				}
				alts = append(alts, b.add(payload))
			}
			cr.in = append(cr.in, alts)
		}
		if assetOnly {
			k := 0
			for _, alts := range cr.in {
				for j := range alts {
					alts[j] = b.add(pending[k])
					k++
				}
			}
		}
		prog.rows = append(prog.rows, cr)
	}
	if !assetOnly {
		prog.number = b.add(mustSegs("alert.number"))
		prog.repoID = b.add(mustSegs("repository.id"))
		prog.action = b.add(mustSegs("action"))
		prog.times = map[string]*compiledPath{}
		for _, f := range []string{"created_at", "fixed_at", "dismissed_at", "auto_dismissed_at", "resolved_at"} {
			prog.times[f] = b.add(mustSegs("alert." + f))
		}
		prog.alertSeen = b.object("alert")
		prog.repoSeen = b.object("repository")
	}
	prog.nslots = b.finish()
	prog.nseen = b.nseen
	prog.root = b.root
	return prog, nil
}
