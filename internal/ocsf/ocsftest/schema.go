// Package ocsftest validates OCSF events against the OCSF 1.6.0 schema
// files kept under internal/ocsf/testdata/ocsf-1.6.0 (Apache-2.0). It is a
// test helper: the ocsf package's golden, fuzz and sink tests use it, and
// so do the processor's end-to-end sink tests.
//
// A class is resolved through its extends chain (vulnerability_finding →
// finding → base_event), each attribute through the chain's definitions
// (the nearer one winning key by key, enums merged) and the dictionary;
// objects the same way through their own extends chain. Profile attributes
// ($include) are allowed everywhere and required only when the event
// names the profile in metadata.profiles.
package ocsftest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
)

// Dir is the directory of the schema files kept in the repository.
func Dir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return filepath.Join("testdata", "ocsf-1.6.0")
	}
	return filepath.Join(filepath.Dir(file), "..", "testdata", "ocsf-1.6.0")
}

// attr is one attribute's resolved definition.
type attr struct {
	typ         string // a scalar *_t, "object" (anything) or an object name
	isArray     bool
	required    bool
	profile     string          // the profile that brings the attribute, or ""
	enum        map[string]enum // nil when the attribute has none
	sibling     string          // the caption attribute of an enum, or ""
	deprecated  bool
	declaredBy  string // where the nearest definition is (for messages)
	hasType     bool
	hasRequired bool
}

type enum struct {
	caption    string
	deprecated bool
}

// shape is a resolved class or object: its attributes and constraints.
type shape struct {
	name        string
	attrs       map[string]*attr
	atLeastOne  []string
	justOne     []string
	classUID    int // classes only: category_uid*1000 + uid
	categoryUID int
}

// scalar is a resolved scalar type: its base type and the constraints
// of every type along its chain.
type scalar struct {
	base    string // string_t, integer_t, long_t, float_t, boolean_t or json_t
	regexes []*regexp.Regexp
	maxLen  int
	rng     *[2]float64
}

// Schema is a loaded OCSF schema.
type Schema struct {
	dir       string
	dict      map[string]rawAttr
	scalars   map[string]scalar
	classes   map[int]*shape
	objects   map[string]*shape
	rawObject map[string]rawShape
}

type rawAttr struct {
	Type        string                     `json:"type"`
	IsArray     *bool                      `json:"is_array"`
	Requirement string                     `json:"requirement"`
	Enum        map[string]json.RawMessage `json:"enum"`
	Sibling     string                     `json:"sibling"`
	Deprecated  json.RawMessage            `json:"@deprecated"`
	Profile     json.RawMessage            `json:"profile"`
}

type rawShape struct {
	Name        string                     `json:"name"`
	UID         *int                       `json:"uid"`
	Category    string                     `json:"category"`
	Extends     string                     `json:"extends"`
	Attributes  map[string]json.RawMessage `json:"attributes"`
	Constraints *struct {
		AtLeastOne []string `json:"at_least_one"`
		JustOne    []string `json:"just_one"`
	} `json:"constraints"`
}

type rawEnum struct {
	Caption    string          `json:"caption"`
	Deprecated json.RawMessage `json:"@deprecated"`
}

// Load reads the schema under dir (the layout of the OCSF schema
// repository: dictionary.json, categories.json, events/, objects/,
// profiles/) and resolves every class and object.
func Load(dir string) (*Schema, error) {
	s := &Schema{dir: dir, scalars: map[string]scalar{}, classes: map[int]*shape{}, objects: map[string]*shape{}, rawObject: map[string]rawShape{}}
	var dict struct {
		Attributes map[string]rawAttr `json:"attributes"`
		Types      struct {
			Attributes map[string]struct {
				Type   string      `json:"type"`
				Regex  string      `json:"regex"`
				MaxLen int         `json:"max_len"`
				Range  *[2]float64 `json:"range"`
			} `json:"attributes"`
		} `json:"types"`
	}
	if err := readJSON(filepath.Join(dir, "dictionary.json"), &dict); err != nil {
		return nil, err
	}
	s.dict = dict.Attributes
	for name := range dict.Types.Attributes {
		var sc scalar
		for t, n := name, 0; t != ""; n++ {
			d, ok := dict.Types.Attributes[t]
			if !ok || n > 10 {
				return nil, fmt.Errorf("type %s: unknown or cyclic type %s", name, t)
			}
			if d.Regex != "" {
				re, err := regexp.Compile(d.Regex)
				if err != nil {
					return nil, fmt.Errorf("type %s: regex: %w", t, err)
				}
				sc.regexes = append(sc.regexes, re)
			}
			if d.MaxLen > 0 && (sc.maxLen == 0 || d.MaxLen < sc.maxLen) {
				sc.maxLen = d.MaxLen
			}
			if d.Range != nil && sc.rng == nil {
				sc.rng = d.Range
			}
			if d.Type == "" {
				sc.base = t
			}
			t = d.Type
		}
		s.scalars[name] = sc
	}
	var cats struct {
		Attributes map[string]struct {
			UID int `json:"uid"`
		} `json:"attributes"`
	}
	if err := readJSON(filepath.Join(dir, "categories.json"), &cats); err != nil {
		return nil, err
	}

	objFiles, err := filepath.Glob(filepath.Join(dir, "objects", "*.json"))
	if err != nil || len(objFiles) == 0 {
		return nil, fmt.Errorf("no objects under %s: %v", dir, err)
	}
	for _, p := range objFiles {
		var o rawShape
		if err := readJSON(p, &o); err != nil {
			return nil, err
		}
		s.rawObject[o.Name] = o
	}
	for name := range s.rawObject {
		if _, err := s.object(name); err != nil {
			return nil, err
		}
	}

	events := map[string]rawShape{}
	err = filepath.WalkDir(filepath.Join(dir, "events"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
			return err
		}
		var e rawShape
		if err := readJSON(p, &e); err != nil {
			return err
		}
		events[e.Name] = e
		return nil
	})
	if err != nil {
		return nil, err
	}
	for name, e := range events {
		if e.UID == nil {
			continue // base_event and finding are abstract here
		}
		// A class may take its category from the class it extends.
		category := e.Category
		for b, n := e, 0; category == "" && b.Extends != "" && n < 20; n++ {
			b = events[b.Extends]
			category = b.Category
		}
		cat, ok := cats.Attributes[category]
		if !ok {
			return nil, fmt.Errorf("class %s: unknown category %q", name, category)
		}
		sh, err := s.resolve(name, events, nil)
		if err != nil {
			return nil, err
		}
		sh.categoryUID = cat.UID
		sh.classUID = cat.UID*1000 + *e.UID
		s.classes[sh.classUID] = sh
	}
	return s, nil
}

// object resolves an object by name (memoized).
func (s *Schema) object(name string) (*shape, error) {
	if sh, ok := s.objects[name]; ok {
		return sh, nil
	}
	sh, err := s.resolve(name, s.rawObject, nil)
	if err != nil {
		return nil, err
	}
	s.objects[name] = sh
	return sh, nil
}

// resolve merges a shape's extends chain, base first.
func (s *Schema) resolve(name string, all map[string]rawShape, seen []string) (*shape, error) {
	if len(seen) > 20 {
		return nil, fmt.Errorf("extends chain too long: %v", seen)
	}
	raw, ok := all[name]
	if !ok {
		return nil, fmt.Errorf("unknown %s (extends chain %v)", name, seen)
	}
	sh := &shape{name: name, attrs: map[string]*attr{}}
	if raw.Extends != "" {
		base, err := s.resolve(raw.Extends, all, append(seen, name))
		if err != nil {
			return nil, err
		}
		for k, a := range base.attrs {
			c := *a
			sh.attrs[k] = &c
		}
		sh.atLeastOne, sh.justOne = base.atLeastOne, base.justOne
	}
	if raw.Constraints != nil {
		sh.atLeastOne, sh.justOne = raw.Constraints.AtLeastOne, raw.Constraints.JustOne
	}
	// Included profiles first: the shape's own definitions win over them.
	if inc, ok := raw.Attributes["$include"]; ok {
		var paths []string
		if err := json.Unmarshal(inc, &paths); err != nil {
			return nil, fmt.Errorf("%s: $include: %w", name, err)
		}
		for _, p := range paths {
			var prof struct {
				Name       string                     `json:"name"`
				Attributes map[string]json.RawMessage `json:"attributes"`
			}
			if err := readJSON(filepath.Join(s.dir, filepath.FromSlash(p)), &prof); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			for k, def := range prof.Attributes {
				if err := s.define(sh, k, def, name+" via "+p, prof.Name); err != nil {
					return nil, err
				}
			}
		}
	}
	for k, def := range raw.Attributes {
		if k == "$include" {
			continue
		}
		if err := s.define(sh, k, def, name, ""); err != nil {
			return nil, err
		}
	}
	for k, a := range sh.attrs {
		if !a.hasType {
			return nil, fmt.Errorf("%s.%s: no type in the shape or the dictionary", name, k)
		}
		if _, scalarType := s.scalars[a.typ]; !scalarType && a.typ != "object" {
			if _, ok := s.rawObject[a.typ]; !ok {
				return nil, fmt.Errorf("%s.%s: unknown type %s", name, k, a.typ)
			}
		}
	}
	return sh, nil
}

// define overlays one definition of attribute k on the shape.
func (s *Schema) define(sh *shape, k string, def json.RawMessage, where, profile string) error {
	var d rawAttr
	if err := json.Unmarshal(def, &d); err != nil {
		return fmt.Errorf("%s.%s: %w", where, k, err)
	}
	a, ok := sh.attrs[k]
	if !ok {
		a = &attr{}
		dd, inDict := s.dict[k]
		if !inDict {
			return fmt.Errorf("%s.%s: not in the dictionary", where, k)
		}
		if err := s.overlay(a, dd); err != nil {
			return fmt.Errorf("dictionary %s: %w", k, err)
		}
		sh.attrs[k] = a
	}
	if err := s.overlay(a, d); err != nil {
		return fmt.Errorf("%s.%s: %w", where, k, err)
	}
	a.declaredBy = where
	switch {
	case profile != "":
		a.profile = profile
	case len(d.Profile) > 0 && string(d.Profile) != "null":
		var p string
		if err := json.Unmarshal(d.Profile, &p); err == nil {
			a.profile = p
		}
	case string(d.Profile) == "null":
		a.profile = ""
	}
	return nil
}

func (s *Schema) overlay(a *attr, d rawAttr) error {
	if d.Type != "" {
		a.typ, a.hasType = d.Type, true
	}
	if d.IsArray != nil {
		a.isArray = *d.IsArray
	}
	if d.Requirement != "" {
		a.required, a.hasRequired = d.Requirement == "required", true
	}
	if d.Sibling != "" {
		a.sibling = d.Sibling
	}
	if len(d.Deprecated) > 0 {
		a.deprecated = true
	}
	for k, raw := range d.Enum {
		var e rawEnum
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("enum %s: %w", k, err)
		}
		if a.enum == nil {
			a.enum = map[string]enum{}
		}
		prev := a.enum[k]
		if e.Caption == "" {
			e.Caption = prev.caption
		}
		a.enum[k] = enum{caption: e.Caption, deprecated: len(e.Deprecated) > 0}
	}
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read schema: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("read schema %s: %w", path, err)
	}
	return nil
}
