package imports

import (
	"bytes"
	"encoding/json"
	"time"
)

// The processor's first pass over a SARIF log it holds whole: what each
// run states besides its results (tool, bases, artifacts, taxonomies,
// category) and how many results it has. The receiver validated the log
// already; this pass only needs to find things, so it walks the bytes —
// strings, brackets, commas — and hands only the parts it reads to
// encoding/json, skipping the results (nearly all of a log) at the speed
// of a byte loop. A log it cannot walk is read by the validating parser
// instead, which says what is wrong with it.

// walker steps through JSON held in b.
type walker struct {
	b []byte
	i int
}

func (w *walker) space() {
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// peek is the next byte after white space (0 at the end).
func (w *walker) peek() byte {
	w.space()
	if w.i >= len(w.b) {
		return 0
	}
	return w.b[w.i]
}

// value passes over the next value and returns it.
func (w *walker) value() (json.RawMessage, bool) {
	w.space()
	start := w.i
	if w.i >= len(w.b) {
		return nil, false
	}
	switch c := w.b[w.i]; {
	case c == '"':
		if !w.str() {
			return nil, false
		}
	case c == '{' || c == '[':
		depth := 0
		for w.i < len(w.b) {
			switch w.b[w.i] {
			case '"':
				if !w.str() {
					return nil, false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			w.i++
			if depth == 0 {
				return w.b[start:w.i], true
			}
		}
		return nil, false
	default:
		for w.i < len(w.b) && !bytes.ContainsRune([]byte(",}] \t\r\n"), rune(w.b[w.i])) {
			w.i++
		}
		if w.i == start {
			return nil, false
		}
	}
	return w.b[start:w.i], true
}

// str passes over a string starting at w.i.
func (w *walker) str() bool {
	for w.i++; w.i < len(w.b); w.i++ {
		switch w.b[w.i] {
		case '\\':
			w.i++
		case '"':
			w.i++
			return true
		}
	}
	return false
}

// object calls each for every key of the object that comes next; each
// must pass over the key's value.
func (w *walker) object(each func(key string) bool) bool {
	if w.peek() != '{' {
		return false
	}
	w.i++
	if w.peek() == '}' {
		w.i++
		return true
	}
	for {
		raw, ok := w.value()
		var key string
		if !ok || json.Unmarshal(raw, &key) != nil || w.peek() != ':' {
			return false
		}
		w.i++
		if !each(key) {
			return false
		}
		switch w.peek() {
		case ',':
			w.i++
		case '}':
			w.i++
			return true
		default:
			return false
		}
	}
}

// array calls each for every element of the array that comes next (null
// is an empty array); each must pass over the element.
func (w *walker) array(each func() bool) bool {
	switch w.peek() {
	case 'n':
		raw, ok := w.value()
		return ok && string(raw) == "null"
	case '[':
	default:
		return false
	}
	w.i++
	if w.peek() == ']' {
		w.i++
		return true
	}
	for {
		if !each() {
			return false
		}
		switch w.peek() {
		case ',':
			w.i++
		case ']':
			w.i++
			return true
		default:
			return false
		}
	}
}

// decodeNext decodes the next value into v.
func (w *walker) decodeNext(v any) bool {
	raw, ok := w.value()
	return ok && json.Unmarshal(raw, v) == nil
}

// walkSARIF is the quick first pass: the runs and the summary, or false
// when the log is not one it can walk (the validating parser then reads
// it).
func walkSARIF(data []byte) ([]*runState, Summary, bool) {
	w := &walker{b: data}
	var (
		sum       Summary
		runs      []*runState
		version   string
		sawRuns   bool
		scannedAt time.Time
	)
	ok := w.object(func(key string) bool {
		switch key {
		case "version":
			return w.decodeNext(&version)
		case "runs":
			sawRuns = true
			return w.array(func() bool {
				if len(runs) >= maxRuns {
					return false
				}
				rs := newRunState(len(runs))
				runs = append(runs, rs)
				sum.Runs = append(sum.Runs, Run{})
				return w.run(rs, &sum, &scannedAt)
			})
		}
		_, ok := w.value()
		return ok
	})
	if !ok || w.peek() != 0 || version != "2.1.0" || !sawRuns {
		return nil, Summary{}, false
	}
	return runs, sum, true
}

func (w *walker) run(rs *runState, sum *Summary, scannedAt *time.Time) bool {
	run := &sum.Runs[rs.index]
	ok := w.object(func(key string) bool {
		switch key {
		case "tool":
			var t sarifTool
			if !w.decodeNext(&t) {
				return false
			}
			rs.tool = &t
			run.Tool, run.Organization = t.Driver.Name, t.Driver.Organization
			if rs.index == 0 || sum.Tool == "" {
				sum.Tool, sum.Organization = t.Driver.Name, t.Driver.Organization
			}
			return true
		case "results":
			return w.array(func() bool {
				run.Results++
				sum.Results++
				_, ok := w.value()
				return ok
			})
		case "automationDetails":
			var ad struct{ ID string }
			if !w.decodeNext(&ad) {
				return false
			}
			run.Category = ad.ID
			if sum.Category == "" {
				sum.Category = ad.ID
			}
			return true
		case "invocations":
			var inv []struct {
				EndTimeUTC string `json:"endTimeUtc"`
			}
			if !w.decodeNext(&inv) {
				return false
			}
			for _, v := range inv {
				if t, err := time.Parse(time.RFC3339Nano, v.EndTimeUTC); err == nil && t.After(*scannedAt) {
					*scannedAt, sum.ScannedAt = t, v.EndTimeUTC
				}
			}
			return true
		case "originalUriBaseIds":
			var m map[string]struct {
				URI       string `json:"uri"`
				URIBaseID string `json:"uriBaseId"`
			}
			if !w.decodeNext(&m) {
				return false
			}
			for k, v := range m {
				rs.bases[k] = sarifBase{uri: v.URI, baseID: v.URIBaseID}
			}
			return true
		case "artifacts", "taxonomies":
			add := rs.addArtifact
			if key == "taxonomies" {
				add = rs.addTaxonomy
			}
			if c := w.peek(); c != '[' && c != 'n' {
				_, ok := w.value() // not an array: the mapping never needed it
				return ok
			}
			return w.array(func() bool {
				raw, ok := w.value()
				if ok {
					add(raw)
				}
				return ok
			})
		case "versionControlProvenance":
			var vcs []struct {
				RevisionID string `json:"revisionId"`
				Branch     string `json:"branch"`
			}
			if !w.decodeNext(&vcs) {
				return false
			}
			if len(vcs) > 0 && sum.Commit == "" {
				sum.Commit, sum.Ref = vcs[0].RevisionID, vcs[0].Branch
			}
			return true
		}
		_, ok := w.value()
		return ok
	})
	if rs.tool == nil {
		rs.tool = &sarifTool{}
	}
	rs.indexRules()
	return ok
}
