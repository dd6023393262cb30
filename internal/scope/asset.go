package scope

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// topicPrefix starts the tag of a repository topic.
const topicPrefix = "topic:"

// PropertiesField is the repository object's field of custom property
// values ({"name": "value" | ["v1", "v2"]}), as GitHub puts it in webhook
// payloads of organisations that use custom properties; the reconciler
// writes the values it read from the organisation into the same field.
const PropertiesField = "custom_properties"

// repositoryJSON is what ParseRepository reads of a repository object.
type repositoryJSON struct {
	ID         int64                      `json:"id"`
	FullName   string                     `json:"full_name"`
	Archived   bool                       `json:"archived"`
	Fork       bool                       `json:"fork"`
	Topics     []string                   `json:"topics"`
	Properties map[string]json.RawMessage `json:"custom_properties"`
}

// ParseRepository reads the scope facts of a repository object (a webhook
// payload's repository, or one of the REST repository listing).
func ParseRepository(raw []byte) (Repository, error) {
	var rj repositoryJSON
	if err := json.Unmarshal(raw, &rj); err != nil {
		return Repository{}, fmt.Errorf("repository: %w", err)
	}
	r := Repository{ID: rj.ID, FullName: rj.FullName, Archived: rj.Archived, Fork: rj.Fork, Topics: rj.Topics}
	if rj.Properties != nil {
		r.PropertiesKnown = true
		props, err := PropertiesFromObject(rj.Properties)
		if err != nil {
			return Repository{}, fmt.Errorf("repository: %w", err)
		}
		r.Properties = props
	}
	return r, nil
}

// RepositoryOfEvent reads the scope facts of a webhook payload's
// repository object.
func RepositoryOfEvent(payload []byte) (Repository, error) {
	var ev struct {
		Repository json.RawMessage `json:"repository"`
	}
	if err := json.Unmarshal(payload, &ev); err != nil {
		return Repository{}, fmt.Errorf("event: %w", err)
	}
	if len(ev.Repository) == 0 || string(ev.Repository) == "null" {
		return Repository{}, fmt.Errorf("event: no repository object")
	}
	return ParseRepository(ev.Repository)
}

// PropertiesFromObject reads custom property values in the repository
// object's shape: name → string, array of strings, or null (no value).
func PropertiesFromObject(obj map[string]json.RawMessage) (map[string]finding.PropertyValue, error) {
	out := map[string]finding.PropertyValue{}
	for name, raw := range obj {
		var v finding.PropertyValue
		if err := v.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("custom property %q: %w", name, err)
		}
		if len(v.Values) == 0 && !v.Multi {
			continue // null: the property has no value here
		}
		out[name] = v
	}
	return out, nil
}

// PropertiesFromDecoded reads custom property values decoded from JSON
// into Go values (name → string, []any of strings, or nil); values of
// other types are left out.
func PropertiesFromDecoded(obj map[string]any) map[string]finding.PropertyValue {
	out := make(map[string]finding.PropertyValue, len(obj))
	for name, v := range obj {
		switch v := v.(type) {
		case string:
			out[name] = finding.PropertyValue{Values: []string{v}}
		case []any:
			pv := finding.PropertyValue{Values: []string{}, Multi: true}
			for _, e := range v {
				if s, ok := e.(string); ok {
					pv.Values = append(pv.Values, s)
				}
			}
			out[name] = pv
		}
	}
	return out
}

// PropertyValue is one entry of GitHub's list shape of custom property
// values ({"property_name": "...", "value": "..." | [...] | null}), used by
// GET /orgs/{org}/properties/values and the custom_property_values event.
type PropertyValue struct {
	Name  string          `json:"property_name"`
	Value json.RawMessage `json:"value"`
}

// PropertiesFromList reads custom property values in the list shape.
func PropertiesFromList(list []PropertyValue) (map[string]finding.PropertyValue, error) {
	obj := make(map[string]json.RawMessage, len(list))
	for _, p := range list {
		if p.Name == "" {
			continue
		}
		v := p.Value
		if len(v) == 0 {
			v = json.RawMessage("null")
		}
		obj[p.Name] = v
	}
	return PropertiesFromObject(obj)
}

// ownerProperty and businessProperty are the property names in use.
func (f *Filter) ownerProperty() string {
	if f == nil {
		return DefaultOwnerProperty
	}
	return f.ownerProp
}

func (f *Filter) businessProperty() string {
	if f == nil {
		return DefaultBusinessEntityProperty
	}
	return f.businessProp
}

func (f *Filter) criticalityProperty() string {
	if f == nil {
		return DefaultCriticalityProperty
	}
	return f.critProp
}

// Decorate sets the asset fields derived from the repository facts:
// customProperties (as GitHub gave them; left as they are when r's
// properties are not known), ownership (from the OWNER_PROPERTY and
// BUSINESS_ENTITY_PROPERTY values), the repository's criticality (the
// CRITICALITY_PROPERTY value, lower-cased: the priority table's words are
// lower-case) and tags ("topic:<topic>" per topic, "<property>:<value>"
// per property value; sorted, without duplicates).
func (f *Filter) Decorate(ad *finding.AssetDetail, r Repository) {
	if r.PropertiesKnown {
		ad.CustomProperties = nil
		if len(r.Properties) > 0 {
			ad.CustomProperties = r.Properties
		}
	}
	props := ad.CustomProperties
	ad.Ownership = nil
	owner, business := joinValues(props[f.ownerProperty()]), joinValues(props[f.businessProperty()])
	if f.ownerProperty() == "" {
		owner = ""
	}
	if f.businessProperty() == "" {
		business = ""
	}
	if owner != "" || business != "" {
		ad.Ownership = &finding.Ownership{Owner: owner, BusinessEntity: business}
	}
	ad.RepositoryAssetClass.Criticality = ""
	if p := f.criticalityProperty(); p != "" {
		ad.RepositoryAssetClass.Criticality = strings.ToLower(joinValues(props[p]))
	}
	var tags []string
	for _, t := range r.Topics {
		if t = strings.TrimSpace(t); t != "" {
			tags = append(tags, topicPrefix+t)
		}
	}
	for name, v := range props {
		for _, val := range v.Values {
			if val != "" {
				tags = append(tags, name+":"+val)
			}
		}
	}
	slices.Sort(tags)
	ad.Tags = slices.Compact(tags)
}

// joinValues is a property's value as one string: a multi-select
// property's values joined by ", ".
func joinValues(v finding.PropertyValue) string {
	var vs []string
	for _, s := range v.Values {
		if s != "" {
			vs = append(vs, s)
		}
	}
	return strings.Join(vs, ", ")
}
