package ghtest

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

//go:embed samples/*.json
var samples embed.FS

// placeholder marks a value the renderer fills in per alert.
func placeholder(name string) string { return "@@" + name + "@@" }

// segment is a literal run of a template followed by the field to fill in.
type segment struct {
	lit   []byte
	field string // empty for the last segment
}

// template is a JSON document split at its placeholders.
type template []segment

// compile marshals doc and splits it at the "@@name@@" strings.
func compile(doc any) (template, error) {
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	var t template
	for {
		i := bytes.Index(b, []byte(`"@@`))
		if i < 0 {
			t = append(t, segment{lit: b})
			return t, nil
		}
		j := bytes.Index(b[i+3:], []byte(`@@"`))
		if j < 0 {
			return nil, fmt.Errorf("unterminated placeholder")
		}
		t = append(t, segment{lit: b[:i], field: string(b[i+3 : i+3+j])})
		b = b[i+3+j+3:]
	}
}

// render appends the template to dst, asking value for every field.
func (t template) render(dst []byte, value func(dst []byte, field string) []byte) []byte {
	for _, s := range t {
		dst = append(dst, s.lit...)
		if s.field != "" {
			dst = value(dst, s.field)
		}
	}
	return dst
}

// loadSample decodes an embedded sample.
func loadSample(name string, v any) error {
	b, err := samples.ReadFile("samples/" + name)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// alertTemplates holds, per kind, the templates of repository lists,
// organisation lists and single alerts (each from several sample items).
type alertTemplates struct {
	repoList, orgList, single []template
	// noSecret are the same without the "secret" field (hide_secret=true);
	// only for secret scanning.
	repoListNoSecret, orgListNoSecret, singleNoSecret []template
}

// templates are every template of the fake.
type templates struct {
	alerts       map[Kind]*alertTemplates
	repository   map[string]any // full repository object
	simpleRepo   map[string]any // the short one in organisation alert lists
	installation map[string]any
	app          map[string]any
	user         json.RawMessage
}

// stateFields are the fields of an alert that depend on its state.
func stateFields(kind Kind) []string {
	return map[Kind][]string{
		CodeScanning:   {"fixed_at", "dismissed_at", "dismissed_by", "dismissed_reason", "dismissed_comment"},
		Dependabot:     {"fixed_at", "dismissed_at", "dismissed_by", "dismissed_reason", "dismissed_comment", "auto_dismissed_at"},
		SecretScanning: {"resolution", "resolved_at", "resolved_by", "resolution_comment"},
	}[kind]
}

// sampleFiles are the samples of a kind: repository list, organisation list, single alert.
func sampleFiles() map[Kind][3]string {
	return map[Kind][3]string{
		CodeScanning:   {"code-scanning-list-alerts-for-repo.json", "code-scanning-list-alerts-for-org.json", "code-scanning-get-alert.json"},
		Dependabot:     {"dependabot-list-alerts-for-repo.json", "dependabot-list-alerts-for-org.json", "dependabot-get-alert.json"},
		SecretScanning: {"secret-scanning-list-alerts-for-repo.json", "secret-scanning-list-alerts-for-org.json", "secret-scanning-get-alert.json"},
	}
}

// loadTemplates builds the templates from the embedded samples.
func loadTemplates() (*templates, error) {
	t := &templates{alerts: map[Kind]*alertTemplates{}}
	var user map[string]any
	for kind, files := range sampleFiles() {
		at := &alertTemplates{}
		for i, f := range files {
			var items []map[string]any
			if i == 2 {
				var one map[string]any
				if err := loadSample(f, &one); err != nil {
					return nil, fmt.Errorf("sample %s: %w", f, err)
				}
				items = []map[string]any{one}
			} else if err := loadSample(f, &items); err != nil {
				return nil, fmt.Errorf("sample %s: %w", f, err)
			}
			for _, it := range items {
				if u, ok := it["dismissed_by"].(map[string]any); ok && user == nil {
					user = u
				}
				if i == 1 && t.simpleRepo == nil {
					if r, ok := it["repository"].(map[string]any); ok {
						t.simpleRepo = r
					}
				}
				for _, hide := range []bool{false, true} {
					if hide && kind != SecretScanning {
						continue
					}
					doc := alertDoc(kind, it, i == 1, hide)
					tpl, err := compile(doc)
					if err != nil {
						return nil, fmt.Errorf("sample %s: %w", f, err)
					}
					switch {
					case i == 0 && !hide:
						at.repoList = append(at.repoList, tpl)
					case i == 0:
						at.repoListNoSecret = append(at.repoListNoSecret, tpl)
					case i == 1 && !hide:
						at.orgList = append(at.orgList, tpl)
					case i == 1:
						at.orgListNoSecret = append(at.orgListNoSecret, tpl)
					case !hide:
						at.single = append(at.single, tpl)
					default:
						at.singleNoSecret = append(at.singleNoSecret, tpl)
					}
				}
			}
		}
		t.alerts[kind] = at
	}
	var list struct {
		Repositories []map[string]any `json:"repositories"`
	}
	if err := loadSample("apps-list-repos-accessible-to-installation.json", &list); err != nil || len(list.Repositories) == 0 {
		return nil, fmt.Errorf("sample repositories: %v", err)
	}
	t.repository = list.Repositories[0]
	var insts []map[string]any
	if err := loadSample("apps-list-installations.json", &insts); err != nil || len(insts) == 0 {
		return nil, fmt.Errorf("sample installations: %v", err)
	}
	t.installation = insts[0]
	if err := loadSample("apps-get-authenticated.json", &t.app); err != nil {
		return nil, fmt.Errorf("sample app: %w", err)
	}
	var err error
	if t.user, err = json.Marshal(user); err != nil {
		return nil, err
	}
	return t, nil
}

// alertDoc turns one sample alert into a template document.
func alertDoc(kind Kind, sample map[string]any, withRepo, hideSecret bool) map[string]any {
	doc := make(map[string]any, len(sample)+4)
	for k, v := range sample {
		doc[k] = v
	}
	for _, f := range []string{"number", "created_at", "updated_at", "url", "html_url", "state"} {
		doc[f] = placeholder(f)
	}
	for _, f := range stateFields(kind) {
		doc[f] = placeholder(f)
	}
	switch kind {
	case CodeScanning:
		doc["instances_url"] = placeholder("instances_url")
		if mri, ok := sample["most_recent_instance"].(map[string]any); ok {
			m := make(map[string]any, len(mri))
			for k, v := range mri {
				m[k] = v
			}
			m["state"] = placeholder("instance_state")
			doc["most_recent_instance"] = m
		}
		delete(doc, "instances") // old shape; the fake serves the current one
	case SecretScanning:
		doc["locations_url"] = placeholder("locations_url")
		if hideSecret {
			delete(doc, "secret")
		} else {
			doc["secret"] = placeholder("secret")
		}
	}
	if withRepo {
		doc["repository"] = placeholder("repository")
	} else {
		delete(doc, "repository")
	}
	return doc
}

// appendTime appends t as a JSON string, or null for the zero time.
func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, "null"...)
	}
	dst = append(dst, '"')
	dst = t.UTC().AppendFormat(dst, time.RFC3339)
	return append(dst, '"')
}

// appendString appends s as a JSON string.
func appendString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s)
	return append(dst, b...)
}

// renderAlert writes one alert of repo.
func (s *Server) renderAlert(dst []byte, kind Kind, r *repoState, a Alert, tpl template) []byte {
	closedAt := time.Time{}
	if a.State != "open" {
		closedAt = a.UpdatedAt
	}
	return tpl.render(dst, func(dst []byte, field string) []byte {
		switch field {
		case "number":
			return strconv.AppendInt(dst, a.Number, 10)
		case "created_at":
			return appendTime(dst, a.CreatedAt)
		case "updated_at":
			return appendTime(dst, a.UpdatedAt)
		case "state":
			return appendString(dst, a.State)
		case "instance_state":
			if a.State == "fixed" {
				return appendString(dst, "fixed")
			}
			return appendString(dst, a.State)
		case "url":
			return appendString(dst, fmt.Sprintf("%srepos/%s/%s/alerts/%d", s.url, r.FullName, kind, a.Number))
		case "instances_url":
			return appendString(dst, fmt.Sprintf("%srepos/%s/%s/alerts/%d/instances", s.url, r.FullName, kind, a.Number))
		case "locations_url":
			return appendString(dst, fmt.Sprintf("%srepos/%s/%s/alerts/%d/locations", s.url, r.FullName, kind, a.Number))
		case "html_url":
			path := map[Kind]string{CodeScanning: "code-scanning", Dependabot: "security/dependabot", SecretScanning: "security/secret-scanning"}[kind]
			return appendString(dst, fmt.Sprintf("https://github.com/%s/%s/%d", r.FullName, path, a.Number))
		case "fixed_at":
			if a.State == "fixed" {
				return appendTime(dst, closedAt)
			}
		case "dismissed_at":
			if a.State == "dismissed" {
				return appendTime(dst, closedAt)
			}
		case "auto_dismissed_at":
			if a.State == "auto_dismissed" {
				return appendTime(dst, closedAt)
			}
		case "dismissed_by":
			if a.State == "dismissed" {
				return append(dst, s.tpl.user...)
			}
		case "dismissed_reason":
			if a.State == "dismissed" && a.Updated {
				return appendString(dst, a.DismissedReason)
			}
			if a.State == "dismissed" {
				if kind == Dependabot {
					return appendString(dst, "tolerable_risk")
				}
				return appendString(dst, "false positive")
			}
		case "dismissed_comment":
			if a.State == "dismissed" && a.Updated && a.DismissedComment != "" {
				return appendString(dst, a.DismissedComment)
			}
			if a.State == "dismissed" && a.Updated {
				break
			}
			if a.State == "dismissed" {
				return appendString(dst, "dismissed in the fake")
			}
		case "resolution":
			if a.State == "resolved" {
				return appendString(dst, a.Resolution)
			}
		case "resolved_at":
			if a.State == "resolved" {
				return appendTime(dst, closedAt)
			}
		case "resolved_by":
			if a.State == "resolved" {
				return append(dst, s.tpl.user...)
			}
		case "resolution_comment":
			if a.State == "resolved" && a.Updated && a.ResolutionComment != "" {
				return appendString(dst, a.ResolutionComment)
			}
			if a.State == "resolved" && a.Updated {
				break
			}
			if a.State == "resolved" {
				return appendString(dst, "resolved in the fake")
			}
		case "secret":
			return appendString(dst, fmt.Sprintf("fake_secret_%d_%d", r.ID, a.Number))
		case "repository":
			return append(dst, r.simple...)
		}
		return append(dst, "null"...)
	})
}

// fillRepository renders the full and short repository objects of r.
func (s *Server) fillRepository(r *repoState) error {
	full, err := s.substitute(s.tpl.repository, r)
	if err != nil {
		return err
	}
	simple, err := s.substitute(s.tpl.simpleRepo, r)
	if err != nil {
		return err
	}
	r.full, r.simple = full, simple
	return nil
}

// substitute fills a repository template with r's identity.
func (s *Server) substitute(tpl map[string]any, r *repoState) ([]byte, error) {
	doc := make(map[string]any, len(tpl))
	for k, v := range tpl {
		doc[k] = v
	}
	owner := map[string]any{}
	if o, ok := tpl["owner"].(map[string]any); ok {
		for k, v := range o {
			owner[k] = v
		}
	}
	owner["login"] = "@@owner@@"
	owner["id"] = r.OwnerID
	owner["type"] = r.OwnerType
	doc["owner"] = owner
	doc["id"] = r.ID
	doc["node_id"] = fmt.Sprintf("R_fake%d", r.ID)
	doc["name"] = "@@name@@"
	doc["full_name"] = "@@full@@"
	doc["private"] = r.Private
	doc["archived"] = r.Archived
	if _, ok := tpl["visibility"]; ok {
		vis := "public"
		if r.Private {
			vis = "private"
		}
		doc["visibility"] = vis
		doc["default_branch"] = "main"
		doc["created_at"] = r.CreatedAt.UTC().Format(time.RFC3339)
		doc["updated_at"] = r.CreatedAt.UTC().Format(time.RFC3339)
		doc["pushed_at"] = r.CreatedAt.UTC().Format(time.RFC3339)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	esc := func(v string) string { q, _ := json.Marshal(v); return string(q[1 : len(q)-1]) }
	out := string(b)
	out = strings.ReplaceAll(out, `"@@owner@@"`, `"`+esc(r.Owner)+`"`)
	out = strings.ReplaceAll(out, `"@@name@@"`, `"`+esc(r.Name)+`"`)
	out = strings.ReplaceAll(out, `"@@full@@"`, `"`+esc(r.FullName)+`"`)
	out = strings.ReplaceAll(out, "octocat/Hello-World", esc(r.FullName))
	out = strings.ReplaceAll(out, "https://api.github.com/", s.url)
	out = strings.ReplaceAll(out, "/users/octocat", "/users/"+esc(r.Owner))
	out = strings.ReplaceAll(out, "github.com/octocat\"", "github.com/"+esc(r.Owner)+"\"")
	return []byte(out), nil
}
