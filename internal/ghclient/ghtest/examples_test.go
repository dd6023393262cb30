package ghtest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func decodeAny(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestExamplesAreTheFakesSamples: the templates the fake renders its
// objects from are GitHub's documented examples, and the answers it builds
// by hand (tokens, deliveries) have the documented fields.
func TestExamplesAreTheFakesSamples(t *testing.T) {
	for key, sample := range map[string]string{
		"base-installation-items":                 "apps-list-installations.json",
		"repository-paginated-2":                  "apps-list-repos-accessible-to-installation.json",
		"code-scanning-alert-items":               "code-scanning-list-alerts-for-repo.json",
		"code-scanning-organization-alert-items":  "code-scanning-list-alerts-for-org.json",
		"code-scanning-alert":                     "code-scanning-get-alert.json",
		"dependabot-alerts-for-repository":        "dependabot-list-alerts-for-repo.json",
		"dependabot-alerts-for-organization":      "dependabot-list-alerts-for-org.json",
		"dependabot-alert-open":                   "dependabot-get-alert.json",
		"secret-scanning-alert-list":              "secret-scanning-list-alerts-for-repo.json",
		"organization-secret-scanning-alert-list": "secret-scanning-list-alerts-for-org.json",
		"secret-scanning-alert-open":              "secret-scanning-get-alert.json",
	} {
		ex, err := Example(key)
		if err != nil {
			t.Fatal(err)
		}
		sb, err := samples.ReadFile("samples/" + sample)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(decodeAny(t, ex), decodeAny(t, sb)) {
			t.Errorf("samples/%s is not GitHub's example %s", sample, key)
		}
	}

	s := testServer(t, Options{})
	in := s.AddInstallation("octo-org", "Organization")
	r := s.AddRepository(in.ID, "repo", true)
	s.AddDelivery(Delivery{GUID: "g1", Event: "code_scanning_alert", Action: "created", InstallationID: in.ID, RepositoryID: r.ID,
		DeliveredAt: time.Now().Add(-time.Minute), Status: "OK", StatusCode: 200, Payload: json.RawMessage(`{"action":"created"}`)})
	keys := func(b []byte) []string {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return slices.Sorted(maps.Keys(m))
	}
	first := func(b []byte) []byte {
		var items []json.RawMessage
		if err := json.Unmarshal(b, &items); err != nil || len(items) == 0 {
			t.Fatalf("%s: %v", b, err)
		}
		return items[0]
	}
	now := time.Now()
	app := "Bearer " + jwt(t, key, map[string]any{"iss": fmt.Sprint(s.AppID()), "iat": now.Add(-30 * time.Second).Unix(), "exp": now.Add(time.Minute).Unix()})

	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%sapp/installations/%d/access_tokens", s.URL(), in.ID), nil)
	req.Header.Set("Authorization", app)
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ex, _ := Example("installation-token")
	// The example lists the repositories of a token limited to some; the
	// fake's tokens are for all of them.
	want := slices.DeleteFunc(keys(ex), func(k string) bool { return k == "repositories" })
	if got := keys(tok); !slices.Equal(got, want) {
		t.Errorf("token fields %q, documented %q", got, want)
	}

	_, _, list := get(t, s, s.URL()+"app/hook/deliveries", app)
	ex, _ = Example("hook-delivery-items")
	if got, want := keys(first(list)), keys(first(ex)); !slices.Equal(got, want) {
		t.Errorf("delivery list fields %q, documented %q", got, want)
	}
	var d struct{ ID int64 }
	_ = json.Unmarshal(first(list), &d)
	_, _, one := get(t, s, fmt.Sprintf("%sapp/hook/deliveries/%d", s.URL(), d.ID), app)
	ex, _ = Example("hook-delivery")
	if got, want := keys(one), keys(ex); !slices.Equal(got, want) {
		t.Errorf("delivery fields %q, documented %q", got, want)
	}
}

// TestExampleAlertsServedAsDocumented: an example alert comes back from
// every listing and from GET as GitHub documented it, but for the
// documented edits (number, URLs, repository, hidden secret).
func TestExampleAlertsServedAsDocumented(t *testing.T) {
	s := testServer(t, Options{})
	in := s.AddInstallation("octo-org", "Organization")
	r := s.AddRepository(in.ID, "repo", true)
	auth := token(t, s, in.ID)
	edited := []string{"number", "url", "html_url", "instances_url", "locations_url", "repository"}
	strip := func(v any) map[string]any {
		m := v.(map[string]any)
		out := maps.Clone(m)
		for _, k := range edited {
			delete(out, k)
		}
		return out
	}
	for _, kind := range Kinds() {
		raws, err := ExampleAlerts(kind)
		if err != nil || len(raws) < 2 {
			t.Fatalf("%s: %d examples, %v", kind, len(raws), err)
		}
		added := s.AddExampleAlerts(r.ID, kind)
		byNumber := map[float64]map[string]any{}
		for i, a := range added {
			byNumber[float64(a.Number)] = decodeAny(t, raws[i]).(map[string]any)
		}
		for _, listing := range []string{"repos/octo-org/repo/" + string(kind) + "/alerts", "orgs/octo-org/" + string(kind) + "/alerts"} {
			st, _, body := get(t, s, s.URL()+listing+"?per_page=100", auth)
			var items []map[string]any
			if err := json.Unmarshal(body, &items); st != 200 || err != nil || len(items) != len(added) {
				t.Fatalf("%s: %d, %d items, %v", listing, st, len(items), err)
			}
			for _, it := range items {
				want := byNumber[it["number"].(float64)]
				if !reflect.DeepEqual(strip(it), strip(want)) {
					t.Errorf("%s: alert %v differs from the example:\n%v\n%v", listing, it["number"], it, want)
				}
				repo, _ := it["repository"].(map[string]any)
				if org := listing[:4] == "orgs"; org != (repo != nil) || org && repo["id"].(float64) != float64(r.ID) {
					t.Errorf("%s: repository %v", listing, it["repository"])
				}
				if u, _ := it["html_url"].(string); !strings.HasPrefix(u, "https://github.com/octo-org/repo/") {
					t.Errorf("%s: html_url %v", listing, it["html_url"])
				}
			}
		}
		for _, a := range added {
			st, _, body := get(t, s, fmt.Sprintf("%srepos/octo-org/repo/%s/alerts/%d?hide_secret=true", s.URL(), kind, a.Number), auth)
			it := decodeAny(t, body).(map[string]any)
			want := byNumber[float64(a.Number)]
			delete(want, "secret")
			if st != 200 || it["number"].(float64) != float64(a.Number) || !reflect.DeepEqual(strip(it), strip(want)) {
				t.Errorf("GET %s %d: %d %v", kind, a.Number, st, it)
			}
			if _, ok := it["secret"]; ok {
				t.Errorf("GET %s %d: secret served despite hide_secret", kind, a.Number)
			}
		}
	}
}
