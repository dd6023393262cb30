package ocsftest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"unicode/utf8"
)

// Validate checks one event (JSON) against its class, found by class_uid:
// required attributes present, every attribute known to its class or
// object and of its type (string, integer, long, float, boolean,
// timestamp, object, array), enum values (and their caption siblings)
// valid, class_uid/category_uid/type_uid consistent, the objects'
// at_least_one and just_one constraints held, no deprecated attribute or
// enum value used. It returns every problem found, joined, or nil.
func (s *Schema) Validate(event []byte) error {
	dec := json.NewDecoder(bytes.NewReader(event))
	dec.UseNumber()
	var ev map[string]any
	if err := dec.Decode(&ev); err != nil {
		return fmt.Errorf("event is not a JSON object: %w", err)
	}
	if dec.More() {
		return errors.New("event has data after its JSON object")
	}
	v := &validator{s: s, profiles: map[string]bool{}}
	uid, ok := intOf(ev["class_uid"])
	if !ok {
		return errors.New("class_uid: missing or not an integer")
	}
	cls, ok := s.classes[int(uid)]
	if !ok {
		return fmt.Errorf("class_uid: %d is not a class of this schema", uid)
	}
	if md, ok := ev["metadata"].(map[string]any); ok {
		if ps, ok := md["profiles"].([]any); ok {
			for _, p := range ps {
				if name, ok := p.(string); ok {
					v.profiles[name] = true
				}
			}
		}
	}
	v.classIDs(cls, ev)
	v.shape("", cls, ev)
	return errors.Join(v.errs...)
}

type validator struct {
	s        *Schema
	profiles map[string]bool
	errs     []error
}

func (v *validator) fail(path, format string, args ...any) {
	if path == "" {
		path = "(event)"
	}
	v.errs = append(v.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// classIDs checks the identifiers the schema derives from the class: the
// category, the class and type_uid = class_uid*100 + activity_id.
func (v *validator) classIDs(cls *shape, ev map[string]any) {
	if c, ok := intOf(ev["category_uid"]); ok && int(c) != cls.categoryUID {
		v.fail("category_uid", "%d, want %d for class %s", c, cls.categoryUID, cls.name)
	}
	act, okA := intOf(ev["activity_id"])
	typ, okT := intOf(ev["type_uid"])
	if okA && okT && typ != int64(cls.classUID)*100+act {
		v.fail("type_uid", "%d, want class_uid*100 + activity_id = %d", typ, int64(cls.classUID)*100+act)
	}
}

// derived reports the class attributes whose values the class, not the
// dictionary's enum, defines (checked by classIDs).
func derived(k string) bool {
	return k == "class_uid" || k == "category_uid" || k == "type_uid"
}

func (v *validator) shape(path string, sh *shape, obj map[string]any) {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		a, ok := sh.attrs[k]
		if !ok {
			v.fail(join(path, k), "not an attribute of %s", sh.name)
			continue
		}
		if a.deprecated {
			v.fail(join(path, k), "deprecated attribute of %s", sh.name)
		}
		v.value(join(path, k), k, a, obj[k], path == "" && derived(k))
		if a.sibling != "" && a.enum != nil {
			v.sibling(path, k, a, obj)
		}
	}
	for _, k := range sortedAttrs(sh) {
		a := sh.attrs[k]
		if _, present := obj[k]; present || !a.required {
			continue
		}
		if a.profile == "" || v.profiles[a.profile] {
			v.fail(join(path, k), "required attribute of %s missing", sh.name)
		}
	}
	if len(sh.atLeastOne) > 0 && count(obj, sh.atLeastOne) == 0 {
		v.fail(path, "%s needs at least one of %v", sh.name, sh.atLeastOne)
	}
	if len(sh.justOne) > 0 && count(obj, sh.justOne) != 1 {
		v.fail(path, "%s needs exactly one of %v, has %d", sh.name, sh.justOne, count(obj, sh.justOne))
	}
}

func sortedAttrs(sh *shape) []string {
	keys := make([]string, 0, len(sh.attrs))
	for k := range sh.attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func count(obj map[string]any, names []string) int {
	n := 0
	for _, k := range names {
		if _, ok := obj[k]; ok {
			n++
		}
	}
	return n
}

// value checks one attribute's value: an array when the attribute is one,
// then each element against the attribute's type.
func (v *validator) value(path, k string, a *attr, val any, classDerived bool) {
	if a.isArray {
		arr, ok := val.([]any)
		if !ok {
			v.fail(path, "want an array of %s, got %s", a.typ, kind(val))
			return
		}
		for i, e := range arr {
			v.element(path+"["+strconv.Itoa(i)+"]", a, e, classDerived)
		}
		return
	}
	v.element(path, a, val, classDerived)
}

func (v *validator) element(path string, a *attr, val any, classDerived bool) {
	if a.typ == "object" {
		if _, ok := val.(map[string]any); !ok {
			v.fail(path, "want an object, got %s", kind(val))
		}
		return
	}
	if sc, ok := v.s.scalars[a.typ]; ok {
		v.scalar(path, a, sc, val, classDerived)
		return
	}
	obj, ok := val.(map[string]any)
	if !ok {
		v.fail(path, "want a %s object, got %s", a.typ, kind(val))
		return
	}
	sh, err := v.s.object(a.typ)
	if err != nil {
		v.fail(path, "%v", err)
		return
	}
	v.shape(path, sh, obj)
}

func (v *validator) scalar(path string, a *attr, sc scalar, val any, classDerived bool) {
	switch sc.base {
	case "json_t":
		return
	case "string_t":
		str, ok := val.(string)
		if !ok {
			v.fail(path, "want a string (%s), got %s", a.typ, kind(val))
			return
		}
		if !utf8.ValidString(str) {
			v.fail(path, "not valid UTF-8")
		}
		if sc.maxLen > 0 && len(str) > sc.maxLen {
			v.fail(path, "longer than %d", sc.maxLen)
		}
		for _, re := range sc.regexes {
			if !re.MatchString(str) {
				v.fail(path, "%q does not match the %s pattern", str, a.typ)
			}
		}
		v.enum(path, a, str, classDerived)
	case "boolean_t":
		if _, ok := val.(bool); !ok {
			v.fail(path, "want a boolean, got %s", kind(val))
		}
	case "float_t":
		n, ok := val.(json.Number)
		if !ok {
			v.fail(path, "want a number (%s), got %s", a.typ, kind(val))
			return
		}
		f, err := n.Float64()
		if err != nil {
			v.fail(path, "%s is not a float", n)
			return
		}
		v.inRange(path, sc, f)
	case "integer_t", "long_t":
		n, ok := val.(json.Number)
		if !ok {
			v.fail(path, "want an integer (%s), got %s", a.typ, kind(val))
			return
		}
		i, err := strconv.ParseInt(n.String(), 10, 64)
		if err != nil {
			v.fail(path, "%s is not a %s", n, sc.base)
			return
		}
		if sc.base == "integer_t" && (i < math.MinInt32 || i > math.MaxInt32) {
			v.fail(path, "%d does not fit an integer_t", i)
		}
		v.inRange(path, sc, float64(i))
		v.enum(path, a, strconv.FormatInt(i, 10), classDerived)
	default:
		v.fail(path, "unsupported base type %s", sc.base)
	}
}

func (v *validator) inRange(path string, sc scalar, f float64) {
	if sc.rng != nil && (f < sc.rng[0] || f > sc.rng[1]) {
		v.fail(path, "%v outside %v", f, *sc.rng)
	}
}

func (v *validator) enum(path string, a *attr, key string, classDerived bool) {
	if a.enum == nil || classDerived {
		return
	}
	e, ok := a.enum[key]
	if !ok {
		keys := make([]string, 0, len(a.enum))
		for k := range a.enum {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		v.fail(path, "%s is not one of %v", key, keys)
		return
	}
	if e.deprecated {
		v.fail(path, "enum value %s (%s) is deprecated", key, e.caption)
	}
}

// sibling checks that an enum's caption attribute (activity_name for
// activity_id, …) is the caption of its value, except for Other (99),
// whose caption the source chooses.
func (v *validator) sibling(path, k string, a *attr, obj map[string]any) {
	capVal, ok := obj[a.sibling]
	if !ok {
		return
	}
	id, ok := intOf(obj[k])
	if !ok || id == 99 {
		return
	}
	e, ok := a.enum[strconv.FormatInt(id, 10)]
	if !ok {
		return
	}
	if s, _ := capVal.(string); s != e.caption {
		v.fail(join(path, a.sibling), "%q is not the caption %q of %s %d", s, e.caption, k, id)
	}
}

func intOf(val any) (int64, bool) {
	n, ok := val.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(n.String(), 10, 64)
	return i, err == nil
}

func kind(val any) string {
	switch val.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", val)
}
