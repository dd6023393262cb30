package decisions_test

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"testing"
)

// TestAppManifests: deploy/ ships the App both ways. The read-only
// manifest reads the three alert kinds; the write-back one differs only
// in writing them (what decisions update) and its description.
func TestAppManifests(t *testing.T) {
	read := func(name string) map[string]any {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("..", "..", "deploy", name))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return m
	}
	ro, rw := read("github-app-manifest.json"), read("github-app-manifest-write.json")
	alerts := []string{"security_events", "vulnerability_alerts", "secret_scanning_alerts"}
	roPerm, rwPerm := ro["default_permissions"].(map[string]any), rw["default_permissions"].(map[string]any)
	for _, p := range alerts {
		if roPerm[p] != "read" || rwPerm[p] != "write" {
			t.Errorf("%s: read-only manifest %v, write-back manifest %v", p, roPerm[p], rwPerm[p])
		}
	}
	for p, v := range roPerm {
		if v != "read" {
			t.Errorf("the read-only manifest asks %s: %v", p, v)
		}
	}
	same := maps.Clone(rwPerm)
	for _, p := range alerts {
		same[p] = "read"
	}
	if !maps.Equal(same, roPerm) {
		t.Errorf("the manifests differ beyond the alert permissions: %v vs %v", rwPerm, roPerm)
	}
	delete(ro, "default_permissions")
	delete(rw, "default_permissions")
	delete(ro, "description")
	delete(rw, "description")
	a, _ := json.Marshal(ro)
	b, _ := json.Marshal(rw)
	if string(a) != string(b) {
		t.Errorf("the manifests differ beyond permissions and description:\n%s\n%s", a, b)
	}
}
