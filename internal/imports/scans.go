package imports

import (
	"fmt"
	"sort"
	"strings"

	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// Every run counts on its own. A SARIF log may hold runs of several tools
// (a merged log, a pipeline's several scanners): each run's results are
// attributed to that run's tool.driver.name, and the runs of one tool with
// one category are one scan of one scope (repository, tool, category,
// ref) — settled on its own when the import is complete. The receiver
// keeps a latest import per scope (latest.go), the processor a record per
// scope; the import's status counts every scan.
//
// The request's parameters apply to every run: tool names them all (a
// log whose runs name two tools or more is refused with tool, since it
// would merge them), category puts them all in one category. ref, commit
// and the scan time are the import's, for every scan.

// MaxScans bounds the scans of one import: each costs the receiver and
// the processor a record and a settling of its scope.
const MaxScans = 100

// FromFile says which scope parameters the request left to the file:
// those come from each run; the others apply to every run.
type FromFile struct {
	Tool, Category bool
}

// Scan is one scan an import holds: the runs of one tool and category
// (SARIF), or the whole file (CSV).
type Scan struct {
	Scope
	// Runs are the SARIF runs of the scan, in order.
	Runs []int
	// Results is the number of results of those runs.
	Results int
}

// Scans groups an import's runs into scans, in the order each first
// appears. p holds the import's resolved parameters: ScannedAt, Ref and
// Commit apply to every scan, Tool and Category to every run unless
// p.FromFile says they come from each run. A run without a tool name is
// refused when it has results and left out when it has none (it speaks
// for no scope).
func Scans(p Params, sum Summary) ([]Scan, error) {
	base := Scope{Tool: p.Tool, Organization: p.Organization, Category: p.Category, Ref: p.Ref, Commit: p.Commit, ScannedAt: p.ScannedAt}
	if p.Format != FormatSARIF {
		return []Scan{{Scope: base, Results: sum.Results}}, nil
	}
	var scans []Scan
	at := map[[2]string]int{}
	for i, run := range sum.Runs {
		sc := base
		if p.FromFile.Tool {
			sc.Tool, sc.Organization = strings.TrimSpace(run.Tool), run.Organization
		} else if sc.Organization == "" {
			sc.Organization = run.Organization
		}
		if p.FromFile.Category {
			sc.Category = run.Category
		}
		if strings.TrimSpace(sc.Tool) == "" {
			if run.Results == 0 {
				continue
			}
			return nil, fmt.Errorf("parameter tool is required: runs[%d] does not name its tool (tool.driver.name)", i)
		}
		k := [2]string{finding.ToolSlug(sc.Tool), sc.Category}
		j, ok := at[k]
		if !ok {
			if len(scans) == MaxScans {
				return nil, fmt.Errorf("the log holds more than %d scans (runs of distinct tools and categories)", MaxScans)
			}
			j = len(scans)
			at[k] = j
			scans = append(scans, Scan{Scope: sc})
		}
		scans[j].Runs = append(scans[j].Runs, i)
		scans[j].Results += run.Results
	}
	if len(scans) == 0 && !p.FromFile.Tool && strings.TrimSpace(p.Tool) != "" {
		// No run at all: one empty scan of the named tool.
		scans = append(scans, Scan{Scope: base})
	}
	if len(scans) == 0 {
		return nil, fmt.Errorf("parameter tool is required: the file does not name its tool")
	}
	return scans, nil
}

// oneTool refuses a tool parameter for a log whose runs name two tools or
// more: applied to every run, it would merge their findings (the
// receiver's check; a stored message is applied as it says).
func oneTool(sum Summary) error {
	if tools := distinctTools(sum.Runs); len(tools) > 1 {
		return fmt.Errorf("parameter tool names every run, but the log's runs are of %d tools (%s): post it without tool, or one file per tool", len(tools), strings.Join(tools, ", "))
	}
	return nil
}

// distinctTools lists the tool names of the runs that name one, by slug,
// sorted.
func distinctTools(runs []Run) []string {
	seen := map[string]string{}
	for _, r := range runs {
		if s := finding.ToolSlug(r.Tool); strings.TrimSpace(r.Tool) != "" {
			if _, ok := seen[s]; !ok {
				seen[s] = strings.TrimSpace(r.Tool)
			}
		}
	}
	out := make([]string, 0, len(seen))
	for _, t := range seen {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// ScanOfRun maps each run index to the index of its scan (-1: none).
func ScanOfRun(scans []Scan, runs int) []int {
	out := make([]int, runs)
	for i := range out {
		out[i] = -1
	}
	for j, sc := range scans {
		for _, r := range sc.Runs {
			if r < runs {
				out[r] = j
			}
		}
	}
	return out
}

// Tools is the import's tools as a status names them: each scan's tool
// once, joined with ", ".
func Tools(scans []Scan) string {
	var names []string
	seen := map[string]bool{}
	for _, sc := range scans {
		if s := finding.ToolSlug(sc.Tool); !seen[s] {
			seen[s] = true
			names = append(names, sc.Tool)
		}
	}
	return strings.Join(names, ", ")
}
