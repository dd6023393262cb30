package imports

import (
	"encoding/json"
	"strings"
)

// What a SARIF run states besides its results, and finding in it what a
// result refers to: its rule (by index, with the tool component the
// reference names, else by id), its artifact (by index), the taxa of a
// taxonomy (by index or guid).

// runState is one run: its tool, the bases, artifacts and taxonomies it
// lists, and the results read before its tool.
type runState struct {
	index int
	tool  *sarifTool
	// rulesByID indexes the rules of the driver and the extensions by id
	// (the first of an id wins): a lookup per result, not a scan.
	rulesByID  map[string]*sarifRule
	bases      map[string]sarifBase
	artifacts  []sarifArtifactLocation
	taxonomies []sarifTaxonomy
	pending    []json.RawMessage
}

// sarifBase is an entry of originalUriBaseIds.
type sarifBase struct {
	uri, baseID string
}

// sarifTaxonomy is what a run's taxonomy says that the mapping reads: its
// name and guid, and its taxa's ids and guids by index. Only a CWE
// taxonomy keeps its taxa (the others are never read).
type sarifTaxonomy struct {
	name, guid string
	taxa       []sarifTaxon
}

type sarifTaxon struct {
	id, guid string
}

func newRunState(index int) *runState {
	return &runState{index: index, bases: map[string]sarifBase{}}
}

// indexRules builds rulesByID once the tool is known.
func (rs *runState) indexRules() {
	rs.rulesByID = map[string]*sarifRule{}
	for _, c := range rs.components() {
		for i := range c.Rules {
			if id := c.Rules[i].ID; id != "" {
				if _, ok := rs.rulesByID[id]; !ok {
					rs.rulesByID[id] = &c.Rules[i]
				}
			}
		}
	}
}

// components lists the driver, then the extensions.
func (rs *runState) components() []*sarifComponent {
	out := []*sarifComponent{&rs.tool.Driver}
	for i := range rs.tool.Extensions {
		out = append(out, &rs.tool.Extensions[i])
	}
	return out
}

// component is the tool component a rule reference names: an extension by
// index, else the driver or an extension by guid or name; nil when it
// names none.
func (rs *runState) component(ref *sarifCompRef) *sarifComponent {
	if ref.Index != nil {
		if i := *ref.Index; i >= 0 && i < len(rs.tool.Extensions) {
			return &rs.tool.Extensions[i]
		}
		return nil
	}
	for _, c := range rs.components() {
		if (ref.GUID != "" && strings.EqualFold(c.GUID, ref.GUID)) || (ref.GUID == "" && ref.Name != "" && c.Name == ref.Name) {
			return c
		}
	}
	return nil
}

// rule finds the result's rule: ruleIndex or rule.index into the rules of
// the driver (or of the component rule.toolComponent names), else by id
// (ruleId, else rule.id) among every component's rules. A hierarchical id
// (CA2101/1) that names no rule names its parent's (CA2101).
func (rs *runState) rule(r *sarifResult) *sarifRule {
	comp := &rs.tool.Driver
	idx := r.RuleIndex
	id := r.RuleID
	if r.Rule != nil {
		if r.Rule.Index != nil {
			idx = r.Rule.Index
		}
		if id == "" {
			id = r.Rule.ID
		}
		if tc := r.Rule.ToolComponent; tc != nil {
			if c := rs.component(tc); c != nil {
				comp = c
			}
		}
	}
	if idx != nil && *idx >= 0 && *idx < len(comp.Rules) {
		return &comp.Rules[*idx]
	}
	for id != "" {
		if rule := rs.rulesByID[id]; rule != nil {
			return rule
		}
		i := strings.LastIndexByte(id, '/')
		if i <= 0 {
			break
		}
		id = id[:i]
	}
	return nil
}

// addArtifact keeps the location of runs[].artifacts[i] (an entry that is
// not an artifact keeps its place, empty).
func (rs *runState) addArtifact(raw json.RawMessage) {
	var a struct {
		Location struct {
			URI       string `json:"uri"`
			URIBaseID string `json:"uriBaseId"`
		} `json:"location"`
	}
	_ = json.Unmarshal(raw, &a) // leniently: a wrong shape locates nothing
	rs.artifacts = append(rs.artifacts, sarifArtifactLocation{URI: a.Location.URI, URIBaseID: a.Location.URIBaseID})
}

// addTaxonomy keeps a taxonomy's name and guid, and a CWE taxonomy's taxa.
func (rs *runState) addTaxonomy(raw json.RawMessage) {
	var t struct {
		Name string `json:"name"`
		GUID string `json:"guid"`
	}
	_ = json.Unmarshal(raw, &t)
	tax := sarifTaxonomy{name: t.Name, guid: t.GUID}
	if isCWEName(t.Name) {
		var taxa struct {
			Taxa []json.RawMessage `json:"taxa"`
		}
		_ = json.Unmarshal(raw, &taxa)
		for _, x := range taxa.Taxa {
			var tx struct {
				ID   string `json:"id"`
				GUID string `json:"guid"`
			}
			_ = json.Unmarshal(x, &tx)
			tax.taxa = append(tax.taxa, sarifTaxon{id: tx.ID, guid: tx.GUID})
		}
	}
	rs.taxonomies = append(rs.taxonomies, tax)
}

func isCWEName(name string) bool { return strings.EqualFold(strings.TrimSpace(name), "CWE") }

// sarifDescriptorRef is a reportingDescriptorReference: the target of a
// rule's relationship, or an entry of a result's taxa.
type sarifDescriptorRef struct {
	ID            string        `json:"id"`
	Index         optIndex      `json:"index"`
	GUID          string        `json:"guid"`
	ToolComponent *sarifCompRef `json:"toolComponent"`
}

// cweOfRef is "CWE-<n>" when ref names a taxon of a taxonomy named CWE —
// by the component's name, or by its index into or guid in the run's
// taxonomies — with an id like 79 or CWE-79 (given, else the taxon's at
// ref.index or with ref.guid); "" otherwise.
func (rs *runState) cweOfRef(ref sarifDescriptorRef) string {
	tc := ref.ToolComponent
	if tc == nil {
		return ""
	}
	var tax *sarifTaxonomy
	switch {
	case tc.Index != nil:
		if i := *tc.Index; i >= 0 && i < len(rs.taxonomies) {
			tax = &rs.taxonomies[i]
		}
	case tc.GUID != "":
		for i := range rs.taxonomies {
			if strings.EqualFold(rs.taxonomies[i].guid, tc.GUID) {
				tax = &rs.taxonomies[i]
				break
			}
		}
	}
	if tax == nil && tc.Name != "" {
		for i := range rs.taxonomies {
			if rs.taxonomies[i].name == tc.Name {
				tax = &rs.taxonomies[i]
				break
			}
		}
	}
	named := isCWEName(tc.Name)
	if tax != nil {
		named = isCWEName(tax.name)
	}
	if !named {
		return ""
	}
	id := ref.ID
	if id == "" && tax != nil {
		switch {
		case ref.Index.ok && ref.Index.n < len(tax.taxa):
			id = tax.taxa[ref.Index.n].id
		case ref.GUID != "":
			for _, x := range tax.taxa {
				if strings.EqualFold(x.guid, ref.GUID) {
					id = x.id
					break
				}
			}
		}
	}
	return cweOf(id)
}

// cwesOfRefs reads a list of references leniently (relationships hold
// theirs under target) and adds the CWEs they name.
func (rs *runState) cwesOfRefs(list []string, raw json.RawMessage, underTarget bool) []string {
	if len(raw) == 0 {
		return list
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return list
	}
	for _, it := range items {
		var ref sarifDescriptorRef
		if underTarget {
			var rel struct {
				Target sarifDescriptorRef `json:"target"`
			}
			if json.Unmarshal(it, &rel) != nil {
				continue
			}
			ref = rel.Target
		} else if json.Unmarshal(it, &ref) != nil {
			continue
		}
		list = addCWE(list, rs.cweOfRef(ref))
	}
	return list
}
