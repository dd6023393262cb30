package ghtest

import (
	"embed"
	"encoding/json"
	"fmt"
	"time"
)

// GitHub's documented example responses (testdata/examples, README.md
// there says where each comes from) and the alerts the fake serves as
// GitHub wrote them.

//go:embed testdata/examples/*.json
var examples embed.FS

// Example returns GitHub's documented example response named key: the
// value of components/examples/<key> of GitHub's REST description.
func Example(key string) (json.RawMessage, error) {
	b, err := examples.ReadFile("testdata/examples/" + key + ".json")
	if err != nil {
		return nil, fmt.Errorf("ghtest: example %s: %w", key, err)
	}
	return b, nil
}

// exampleKeys are the examples of a kind's alerts: the repository
// listing, the organisation listing and the single alert.
func exampleKeys(kind Kind) [3]string {
	return map[Kind][3]string{
		CodeScanning:   {"code-scanning-alert-items", "code-scanning-organization-alert-items", "code-scanning-alert"},
		Dependabot:     {"dependabot-alerts-for-repository", "dependabot-alerts-for-organization", "dependabot-alert-open"},
		SecretScanning: {"secret-scanning-alert-list", "organization-secret-scanning-alert-list", "secret-scanning-alert-open"},
	}[kind]
}

// ExampleAlerts returns every alert of kind in GitHub's documented
// examples, in order: the items of the repository listing, those of the
// organisation listing, the single alert.
func ExampleAlerts(kind Kind) ([]json.RawMessage, error) {
	keys := exampleKeys(kind)
	var out []json.RawMessage
	for i, key := range keys {
		b, err := Example(key)
		if err != nil {
			return nil, err
		}
		if i == 2 {
			out = append(out, b)
			continue
		}
		var items []json.RawMessage
		if err := json.Unmarshal(b, &items); err != nil {
			return nil, fmt.Errorf("ghtest: example %s: %w", key, err)
		}
		out = append(out, items...)
	}
	return out, nil
}

// ExampleAlert is an Alert served as raw, one alert object of GitHub's
// documentation: its state, resolution and times are read from it (a
// missing updated_at sorts as created_at).
func ExampleAlert(raw json.RawMessage) (Alert, error) {
	var f struct {
		State      string     `json:"state"`
		Resolution string     `json:"resolution"`
		CreatedAt  *time.Time `json:"created_at"`
		UpdatedAt  *time.Time `json:"updated_at"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return Alert{}, fmt.Errorf("ghtest: example alert: %w", err)
	}
	a := Alert{State: f.State, Resolution: f.Resolution, Raw: raw}
	if f.CreatedAt != nil {
		a.CreatedAt = *f.CreatedAt
	}
	if f.UpdatedAt != nil {
		a.UpdatedAt = *f.UpdatedAt
	}
	return a, nil
}

// AddExampleAlerts puts every documented alert of kind (ExampleAlerts)
// into a repository, numbered after its alerts, and returns them. The fake
// serves them as GitHub wrote them, with the edits the README of
// testdata/examples lists (number, URLs, repository, hidden secret).
func (s *Server) AddExampleAlerts(repoID int64, kind Kind) []Alert {
	raws, err := ExampleAlerts(kind)
	if err != nil {
		panic(err.Error()) // embedded and tested: cannot happen
	}
	out := make([]Alert, 0, len(raws))
	for _, raw := range raws {
		a, err := ExampleAlert(raw)
		if err != nil {
			panic(err.Error())
		}
		out = append(out, s.PutAlert(repoID, kind, a))
	}
	return out
}

// renderExample writes an alert served as GitHub documented it: the
// number, the URLs and the repository become this world's, the secret is
// left out when asked; every other field is the example's.
func (s *Server) renderExample(dst []byte, kind Kind, r *repoState, a Alert, org, hideSecret bool) []byte {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(a.Raw, &doc); err != nil {
		panic(fmt.Sprintf("ghtest: example alert %d: %v", a.Number, err)) // ExampleAlert parsed it
	}
	str := func(v string) json.RawMessage { b, _ := json.Marshal(v); return b }
	api := fmt.Sprintf("%srepos/%s/%s/alerts/%d", s.url, r.FullName, kind, a.Number)
	doc["number"] = json.RawMessage(fmt.Sprint(a.Number))
	if _, ok := doc["url"]; ok {
		doc["url"] = str(api)
	}
	if _, ok := doc["html_url"]; ok {
		path := map[Kind]string{CodeScanning: "code-scanning", Dependabot: "security/dependabot", SecretScanning: "security/secret-scanning"}[kind]
		doc["html_url"] = str(fmt.Sprintf("https://github.com/%s/%s/%d", r.FullName, path, a.Number))
	}
	if _, ok := doc["instances_url"]; ok {
		doc["instances_url"] = str(api + "/instances")
	}
	if _, ok := doc["locations_url"]; ok {
		doc["locations_url"] = str(api + "/locations")
	}
	delete(doc, "repository")
	if org {
		doc["repository"] = r.simple
	}
	if hideSecret {
		delete(doc, "secret")
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(fmt.Sprintf("ghtest: example alert %d: %v", a.Number, err))
	}
	return append(dst, b...)
}
