package ghtest

import (
	"encoding/json"
	"fmt"
	"time"
)

// The demo's alerts: GitHub's documented example alerts with the rule,
// tool, advisory or secret type of each alert varied, so that a demo shows
// several rules, severities and tools rather than one rule many times.

// demoRule is a code scanning rule of the demo.
type demoRule struct {
	id, description, severity, securitySeverity, tool, cwe, path string
	test                                                         bool // found in a test file
}

var demoRules = []demoRule{
	{"js/sql-injection", "Database query built from user-controlled sources", "error", "critical", "CodeQL", "089", "src/db/orders.js", false},
	{"js/reflected-xss", "Reflected cross-site scripting", "error", "high", "CodeQL", "079", "src/web/render.js", false},
	{"js/zipslip", "Arbitrary file write during zip extraction", "error", "high", "CodeQL", "022", "src/upload/extract.js", false},
	{"js/insecure-randomness", "Insecure randomness", "warning", "medium", "CodeQL", "338", "src/auth/token.js", false},
	{"js/log-injection", "Log injection", "error", "medium", "CodeQL", "117", "src/api/audit.js", false},
	{"py/clear-text-logging-sensitive-data", "Clear-text logging of sensitive information", "error", "high", "CodeQL", "312", "tests/test_login.py", true},
	{"go/hardcoded-credentials", "Hard-coded credentials", "warning", "critical", "CodeQL", "798", "internal/config/defaults.go", false},
	{"javascript.express.security.audit.xss.direct-response-write", "Direct write of user input to the response", "warning", "", "Semgrep", "079", "src/web/legacy.js", false},
	{"DS002", "Image user should not be 'root'", "error", "", "Trivy", "250", "Dockerfile", false},
	{"no-eval", "eval can be harmful", "note", "", "ESLint", "095", "src/legacy/calc.js", false},
}

// demoPackage is a Dependabot advisory of the demo.
type demoPackage struct {
	ecosystem, name, ghsa, cve, summary, severity, vulnerable, patched, manifest, scope string
	cvss                                                                                float64
	epss                                                                                float64
}

var demoPackages = []demoPackage{
	{"maven", "org.apache.logging.log4j:log4j-core", "GHSA-jfh8-c2jp-5v3q", "CVE-2021-44228", "Remote code injection in Log4j", "critical", ">= 2.0-beta9, < 2.15.0", "2.15.0", "pom.xml", "runtime", 10.0, 0.94},
	{"npm", "lodash", "GHSA-35jh-r3h4-6jhm", "CVE-2021-23337", "Command Injection in lodash", "high", "< 4.17.21", "4.17.21", "package-lock.json", "runtime", 7.2, 0.012},
	{"pip", "django", "GHSA-7h4p-27mh-hmrw", "CVE-2024-27351", "Django potential regular expression denial of service", "medium", "< 3.2.25", "3.2.25", "requirements.txt", "runtime", 5.3, 0.0008},
	{"npm", "minimist", "GHSA-xvch-5gv4-984h", "CVE-2021-44906", "Prototype Pollution in minimist", "medium", "< 1.2.6", "1.2.6", "package-lock.json", "development", 5.6, 0.0009},
	{"go", "golang.org/x/net", "GHSA-qppj-fm5r-hxr3", "CVE-2023-44487", "HTTP/2 rapid reset can cause excessive work in net/http", "high", "< 0.17.0", "0.17.0", "go.mod", "runtime", 7.5, 0.82},
	{"npm", "axios", "GHSA-wf5p-g6vw-rhxx", "CVE-2023-45857", "Axios Cross-Site Request Forgery Vulnerability", "medium", "< 1.6.0", "1.6.0", "package-lock.json", "runtime", 6.5, 0.0011},
	{"rubygems", "nokogiri", "GHSA-vcc3-rw6f-jv97", "CVE-2024-25062", "Use-after-free in libxml2 via Nokogiri::XML::Reader", "low", "< 1.16.2", "1.16.2", "Gemfile.lock", "runtime", 3.7, 0.0004},
	{"npm", "express", "GHSA-qw6h-vgh9-j6wx", "CVE-2024-43796", "express vulnerable to XSS via response.redirect()", "low", "< 4.20.0", "4.20.0", "package-lock.json", "runtime", 5.0, 0.0005},
	{"pip", "requests", "GHSA-9wx4-h78v-vm56", "CVE-2024-35195", "Requests Session object does not verify requests after making first request with verify=False", "medium", "< 2.32.0", "2.32.0", "requirements.txt", "runtime", 5.6, 0.0007},
	{"npm", "jsonwebtoken", "GHSA-8cf7-32gw-wr33", "CVE-2022-23539", "jsonwebtoken unrestricted key type could lead to legacy keys usage", "high", "< 9.0.0", "9.0.0", "package-lock.json", "runtime", 8.1, 0.003},
}

// demoSecret is a secret type of the demo.
type demoSecret struct{ typ, display, validity string }

var demoSecrets = []demoSecret{
	{"github_personal_access_token", "GitHub Personal Access Token", "unknown"},
	{"aws_access_key_id", "AWS Access Key ID", "inactive"},
	{"slack_incoming_webhook_url", "Slack Incoming Webhook URL", "unknown"},
	{"stripe_api_key", "Stripe API Key", "active"},
	{"google_api_key", "Google API Key", "unknown"},
}

// exampleMap decodes the documented example key (a single alert).
func exampleMap(key string) map[string]any {
	b, err := Example(key)
	if err != nil {
		panic(err.Error()) // embedded and tested: cannot happen
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err.Error())
	}
	return m
}

func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

// demoAlert gives a (number, state, times already set) the JSON of the
// documented example of kind with the i-th rule, advisory or secret type.
func demoAlert(kind Kind, a Alert, i int) Alert {
	var m map[string]any
	closed := a.UpdatedAt
	switch kind {
	case CodeScanning:
		r := demoRules[i%len(demoRules)]
		m = exampleMap("code-scanning-alert")
		rule := m["rule"].(map[string]any)
		rule["id"], rule["name"], rule["description"], rule["full_description"] = r.id, r.id, r.description, r.description+"."
		rule["severity"], rule["tags"] = r.severity, []any{"security", "external/cwe/cwe-" + r.cwe}
		rule["security_severity_level"] = nil
		if r.securitySeverity != "" {
			rule["security_severity_level"] = r.securitySeverity
		}
		m["tool"] = map[string]any{"name": r.tool, "guid": nil, "version": "2.18.0"}
		mri := m["most_recent_instance"].(map[string]any)
		loc := mri["location"].(map[string]any)
		loc["path"], loc["start_line"], loc["end_line"] = r.path, 10+7*i, 12+7*i
		mri["classifications"] = []any{}
		if r.test {
			mri["classifications"] = []any{"test"}
		}
		mri["state"] = a.State
		m["fixed_at"], m["dismissed_at"], m["dismissed_reason"], m["dismissed_comment"] = nil, nil, nil, nil
		switch a.State {
		case "fixed":
			m["fixed_at"], m["dismissed_by"] = ts(closed), nil
		case "dismissed":
			m["dismissed_at"], m["dismissed_reason"], m["dismissed_comment"] = ts(closed), "won't fix", "Accepted risk for the demo."
		default:
			m["dismissed_by"] = nil
		}
	case Dependabot:
		p := demoPackages[i%len(demoPackages)]
		m = exampleMap("dependabot-alert-open")
		pkg := map[string]any{"ecosystem": p.ecosystem, "name": p.name}
		m["dependency"] = map[string]any{"package": pkg, "manifest_path": p.manifest, "scope": p.scope, "relationship": "direct"}
		adv := m["security_advisory"].(map[string]any)
		adv["ghsa_id"], adv["cve_id"], adv["summary"], adv["severity"] = p.ghsa, p.cve, p.summary, p.severity
		adv["description"] = p.summary + ": upgrade " + p.name + " to " + p.patched + " or later."
		adv["identifiers"] = []any{map[string]any{"type": "GHSA", "value": p.ghsa}, map[string]any{"type": "CVE", "value": p.cve}}
		adv["vulnerabilities"] = []any{map[string]any{"package": pkg, "severity": p.severity, "vulnerable_version_range": p.vulnerable,
			"first_patched_version": map[string]any{"identifier": p.patched}}}
		cvss := map[string]any{"vector_string": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "score": p.cvss}
		adv["cvss"] = cvss
		adv["cvss_severities"] = map[string]any{"cvss_v3": cvss, "cvss_v4": map[string]any{"vector_string": nil, "score": 0}}
		adv["epss"] = map[string]any{"percentage": p.epss, "percentile": fmt.Sprintf("%.5f", min(0.99999, 0.5+p.epss/2))}
		m["security_vulnerability"] = map[string]any{"package": pkg, "severity": p.severity, "vulnerable_version_range": p.vulnerable,
			"first_patched_version": map[string]any{"identifier": p.patched}}
		m["fixed_at"], m["dismissed_at"], m["dismissed_reason"], m["dismissed_comment"], m["dismissed_by"] = nil, nil, nil, nil, nil
		switch a.State {
		case "fixed":
			m["fixed_at"] = ts(closed)
		case "dismissed":
			m["dismissed_at"], m["dismissed_reason"], m["dismissed_comment"] = ts(closed), "tolerable_risk", "Not reachable from our code."
		}
	case SecretScanning:
		s := demoSecrets[i%len(demoSecrets)]
		m = exampleMap("secret-scanning-alert-open")
		m["secret_type"], m["secret_type_display_name"], m["validity"] = s.typ, s.display, s.validity
		m["publicly_leaked"], m["multi_repo"] = i%4 == 1, i%3 == 2
		m["resolution"], m["resolved_at"], m["resolved_by"], m["resolution_comment"] = nil, nil, nil, nil
		if a.State == "resolved" {
			m["resolution"], m["resolved_at"] = a.Resolution, ts(closed)
		}
	}
	m["state"], m["created_at"], m["updated_at"] = a.State, ts(a.CreatedAt), ts(a.UpdatedAt)
	b, err := json.Marshal(m)
	if err != nil {
		panic(err.Error())
	}
	a.Raw = b
	return a
}

// vary turns the alerts of kind in a repository into demo alerts, the
// i-th of them with the (offset+i)-th rule, advisory or secret type.
func (s *Server) vary(repoID int64, kind Kind, offset int) {
	for i, a := range s.Alerts(repoID, kind) {
		s.PutAlert(repoID, kind, demoAlert(kind, a, offset+i))
	}
}
