package ghclient_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/ghclient"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
)

func TestListPropertyValues(t *testing.T) {
	srv := fake(t, ghtest.Options{})
	in := srv.AddInstallation("octo-org", "Organization")
	const repos = 250
	var ids []int64
	for i := range repos {
		r := srv.AddRepository(in.ID, fmt.Sprintf("repo-%03d", i), true)
		ids = append(ids, r.ID)
	}
	srv.SetRepositoryFacts(ids[0], ghtest.RepositoryFacts{Properties: map[string]any{"owner": "team-a", "langs": []string{"go", "sql"}, "tier": nil}})
	app := client(t, srv, nil)
	etags := ghclient.NewMemoryETags()
	list := func() (pages, notModified int, byID map[int64]json.RawMessage) {
		byID = map[int64]json.RawMessage{}
		err := app.ListPropertyValues(ctx(t), in.ID, "octo-org", etags, func(p ghclient.PropertiesPage) (bool, error) {
			pages++
			if p.NotModified {
				notModified++
			}
			for _, it := range p.Items {
				byID[it.RepositoryID] = it.Properties
			}
			return true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return pages, notModified, byID
	}
	pages, nm, byID := list()
	if pages != 3 || nm != 0 || len(byID) != repos {
		t.Fatalf("first walk: %d pages (%d not modified), %d repositories; want 3, 0, %d", pages, nm, len(byID), repos)
	}
	var first []struct {
		Name  string          `json:"property_name"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(byID[ids[0]], &first); err != nil || len(first) != 3 {
		t.Fatalf("properties of the first repository: %s (%v)", byID[ids[0]], err)
	}
	got := map[string]string{}
	for _, p := range first {
		got[p.Name] = string(p.Value)
	}
	if got["owner"] != `"team-a"` || got["langs"] != `["go","sql"]` || got["tier"] != "null" {
		t.Errorf("single, multi-select and missing values: %v", got)
	}
	// Unchanged: every page answers 304.
	if pages, nm, _ := list(); pages != 3 || nm != 3 {
		t.Errorf("rerun: %d pages, %d not modified; want 3 and 3", pages, nm)
	}
	// Without the permission: 403, ErrForbidden.
	srv.RefusePropertyValues(in.ID, true)
	err := app.ListPropertyValues(ctx(t), in.ID, "octo-org", nil, func(ghclient.PropertiesPage) (bool, error) { return true, nil })
	if !errors.Is(err, ghclient.ErrForbidden) {
		t.Errorf("without the permission: %v, want ErrForbidden", err)
	}
}
