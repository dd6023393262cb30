package reconcile

import (
	"bytes"
	"context"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// A server that ignores hide_secret=true (an older GitHub Enterprise
// Server) sends secret values with every secret scanning alert: none of
// them reaches GHAS_EVENTS, GHAS_FINDINGS or GHAS_DLQ, whatever route
// (organisation listing, repository listing, the single-alert GET of a
// removal check).
func TestSecretValuesNeverStored(t *testing.T) {
	e := newEnv(t, ghtest.Options{IgnoreHideSecret: true}, true)
	org := e.gh.AddInstallation("octo-org", "Organization")
	r := e.gh.AddRepository(org.ID, "repo", true)
	e.gh.AddAlerts(r.ID, ghtest.SecretScanning, 30)
	user := e.gh.AddInstallation("octocat", "User")
	u := e.gh.AddRepository(user.ID, "hello", false)
	e.gh.AddAlerts(u.ID, ghtest.SecretScanning, 5)
	e.mustRun(ModeFull)
	e.gh.HideFromListings(r.ID, ghtest.SecretScanning, 3, true) // its removal check GETs it
	e.mustRun(ModeFull)
	e.check(e.expect([]ghtest.Repository{r, u}))

	for _, name := range []string{stream.EventsStream, stream.FindingsStream, stream.DLQStream, stream.FindingsKVStream} {
		st, err := e.js.Stream(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			m, err := st.GetMsg(context.Background(), seq)
			if err != nil {
				continue
			}
			if bytes.Contains(m.Data, []byte("fake_secret_")) {
				t.Errorf("%s message %d holds a secret value", name, seq)
			}
		}
	}
}
