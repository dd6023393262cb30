package reconcile

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/transform"
	"github.com/ghas-relay/ghas-relay/internal/transform/transformtest"
)

// switchMaps is a map source an operator's change can be simulated on.
type switchMaps struct {
	p atomic.Pointer[transform.Maps]
}

func (s *switchMaps) Current() *transform.Maps { return s.p.Load() }
func (s *switchMaps) set(m *transform.Maps)    { s.p.Store(m) }

// renamedSAST is the default maps with the SAST product renamed, as an
// operator's map change.
func renamedSAST(t *testing.T) *transform.Maps {
	t.Helper()
	sast := strings.Replace(string(transform.DefaultJSON(finding.SAST)), `"value": "GitHub Code Security"`, `"value": "GitHub Code Scanning"`, 1)
	mp, err := transform.ParseMap(finding.SAST, []byte(sast))
	if err != nil {
		t.Fatal(err)
	}
	return transform.Defaults().With(finding.SAST, mp)
}

// putStored writes a document into ghas_findings behind the processor's
// back, as an operator, an older version or a fallback clock could have.
func (e *env) putStored(key string, change func(*finding.Document)) {
	e.t.Helper()
	d, ok := e.stored()[key]
	if !ok {
		e.t.Fatalf("%s: not stored", key)
	}
	change(&d)
	b, _, err := d.Encode()
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.findings.Put(context.Background(), key, b); err != nil {
		e.t.Fatal(err)
	}
}

// After an operator changes a map, 304s must not hide the alerts whose
// documents change: the next full pull fetches the pages again, every
// stored finding takes the new map (none is dropped as a tie), and the run
// after that is answered by 304s again.
func TestMapChangeReachesEveryFinding(t *testing.T) {
	e := newEnv(t, ghtest.Options{}, true)
	org := e.gh.AddInstallation("octo-org", "Organization")
	r := e.gh.AddRepository(org.ID, "repo", true)
	e.gh.AddAlerts(r.ID, ghtest.CodeScanning, 150)
	first := e.mustRun(ModeFull)
	if first.Pages != 4 || first.PagesNotModified != 0 { // 2 code scanning pages, 2 empty listings
		t.Fatalf("first run: %d pages, %d not modified", first.Pages, first.PagesNotModified)
	}
	if rep := e.mustRun(ModeFull); rep.PagesNotModified != 4 {
		t.Fatalf("unchanged run: %d pages not modified, want 4", rep.PagesNotModified)
	}
	changed := renamedSAST(t)
	e.procMaps.set(changed)
	e.rec = New(quiet(), e.app, e.js, e.findings, e.state, transformtest.Static{Maps: changed}, e.counter, e.metrics, Config{})
	if rep := e.mustRun(ModeFull); rep.PagesNotModified != 0 || rep.Drift.Changed != 150 {
		t.Errorf("run with changed maps: %d pages not modified (want 0), %d changed (want 150)", rep.PagesNotModified, rep.Drift.Changed)
	}
	for k, d := range e.stored() {
		if d.VendorProductName != "GitHub Code Scanning" {
			t.Errorf("%s: vendorProductName %q after the map change and a full pull", k, d.VendorProductName)
		}
	}
	if rep := e.mustRun(ModeFull); rep.PagesNotModified != 4 || rep.Published != 0 {
		t.Errorf("second run with changed maps: %d pages not modified (want 4), %d published (want 0)", rep.PagesNotModified, rep.Published)
	}
}

// A complete full pull leaves ghas_findings equal to GitHub whatever it
// held before: a deleted key, a document dated ahead of GitHub with
// another status, a document GitHub no longer has dated in the future —
// with every page answered 304 by GitHub.
func TestFullPullIsASnapshot(t *testing.T) {
	e := newEnv(t, ghtest.Options{}, true)
	org := e.gh.AddInstallation("octo-org", "Organization")
	r := e.gh.AddRepository(org.ID, "repo", true)
	e.gh.AddAlerts(r.ID, ghtest.CodeScanning, 150)
	e.gh.AddAlerts(r.ID, ghtest.Dependabot, 20)
	repos := []ghtest.Repository{r}
	e.mustRun(ModeFull)
	e.check(e.expect(repos))

	future := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	deleted := finding.Key(finding.SAST, r.ID, 3)
	if err := e.findings.Delete(context.Background(), deleted); err != nil {
		t.Fatal(err)
	}
	ahead := finding.Key(finding.SAST, r.ID, 120)
	e.putStored(ahead, func(d *finding.Document) {
		d.Findings[0].FindingStatus = finding.StatusFixed
		d.Findings[0].LastFoundOn = &future
	})
	sca := finding.Key(finding.SCA, r.ID, 5)
	e.putStored(sca, func(d *finding.Document) {
		d.Findings[0].Severity = finding.SeverityLow
		d.Findings[0].LastFoundOn = &future
		d.Origin = "reconcile"
	})
	rep := e.mustRun(ModeFull)
	e.check(e.expect(repos))
	// Only the pages holding the changed findings are fetched again.
	if rep.Pages != 4 || rep.PagesNotModified != 1 {
		t.Errorf("repair run: %d pages, %d not modified; want 4 and 1 (only the page without a changed finding)", rep.Pages, rep.PagesNotModified)
	}
	if rep.Drift.New != 1 || rep.Drift.Changed != 2 {
		t.Errorf("repair run drift %+v, want 1 new, 2 changed", rep.Drift)
	}
	if st := e.stored()[sca]; st.Findings[0].Severity == finding.SeverityLow {
		t.Errorf("%s: the hand-written severity survived a full pull", sca)
	}
	// Then everything is answered by 304 and nothing is published.
	if rep := e.mustRun(ModeFull); rep.PagesNotModified != 4 || rep.Published != 0 {
		t.Errorf("after repair: %d not modified (want 4), %d published (want 0)", rep.PagesNotModified, rep.Published)
	}

	// A finding dated ahead of GitHub whose alert GitHub deleted is
	// removed by the next complete pull.
	gone := finding.Key(finding.SAST, r.ID, 7)
	e.putStored(gone, func(d *finding.Document) { d.Findings[0].LastFoundOn = &future })
	e.gh.DeleteAlert(r.ID, ghtest.CodeScanning, 7)
	e.mustRun(ModeFull)
	if d := e.stored()[gone]; d.Findings[0].FindingStatus != finding.StatusRemoved || d.Findings[0].RemovedReason != finding.RemovedAbsent {
		t.Errorf("%s: %s (%s) after its alert was deleted, want REMOVED (absent)", gone, d.Findings[0].FindingStatus, d.Findings[0].RemovedReason)
	}
}
