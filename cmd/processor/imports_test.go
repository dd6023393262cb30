package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/config/configtest"
	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/imports"
	"github.com/ghas-relay/ghas-relay/internal/logging/loggingtest"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

// TestImportLookupWithoutEnrichment: with App credentials and
// ENRICH=never, the processor still resolves an import's repository that
// no stored finding knows through the App, gives the asset the
// repository's custom properties (ownership, tags) as GitHub's findings
// would have, and leaves out a fork's import under EXCLUDE_FORKS.
func TestImportLookupWithoutEnrichment(t *testing.T) {
	ns := streamtest.Run(t)
	_, js := ns.Connect()
	gh := ghtest.New(t, ghtest.Options{})
	in := gh.AddInstallation("octo-org", "Organization")
	api := gh.AddRepository(in.ID, "api", true)
	fork := gh.AddRepository(in.ID, "api-fork", true)
	gh.SetRepositoryFacts(api.ID, ghtest.RepositoryFacts{Topics: []string{"payments"}, Properties: map[string]any{"owner": "team-a", "business_unit": "Payments"}})
	gh.SetRepositoryFacts(fork.ID, ghtest.RepositoryFacts{Fork: true, Properties: map[string]any{"owner": "team-a"}})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	admin := fmt.Sprintf("127.0.0.1:%d", streamtest.FreePort(t))
	var stderr loggingtest.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"processor"}, configtest.Getenv(map[string]string{
			"NATS_URL": ns.URL(), "ADMIN_ADDR": admin, "ENRICH": "never", "EXCLUDE_FORKS": "true",
			"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": string(gh.PrivateKeyPEM()), "GITHUB_API_URL": gh.URL(),
		}), io.Discard, &stderr)
	}()
	streamtest.WaitFor(t, 20*time.Second, "/readyz 200", func() bool { return status("http://"+admin+"/readyz") == 200 })

	body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "imports", "claude-security.sarif"))
	if err != nil {
		t.Fatal(err)
	}
	kvImp, err := js.KeyValue(ctx, stream.ImportsBucket)
	if err != nil {
		t.Fatal(err)
	}
	send := func(repo string) imports.Status {
		t.Helper()
		p := imports.Params{Format: imports.FormatSARIF, Repository: repo, Tool: "Claude Security", ScannedAt: "2026-11-21T08:00:00Z", Complete: true}
		id := imports.ID(p, body)
		if _, err := js.PublishMsg(ctx, imports.Message(id, p, body, time.Now())); err != nil {
			t.Fatal(err)
		}
		var st imports.Status
		streamtest.WaitFor(t, 20*time.Second, "import "+repo+" done", func() bool {
			s, ok, _ := imports.GetStatus(ctx, kvImp, id)
			st = s
			return ok && s.Status != imports.StatusAccepted
		})
		return st
	}
	st := send("octo-org/api")
	if st.Status != imports.StatusProcessed || st.Findings.New == 0 {
		t.Fatalf("import of a repository only the App knows, ENRICH=never: %+v\n%s", st, stderr.String())
	}
	findings, err := js.KeyValue(ctx, stream.FindingsBucket)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := findings.ListKeysFiltered(ctx, fmt.Sprintf("sast.%d.claude-security.*", api.ID))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for k := range keys.Keys() {
		n++
		e, err := findings.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := finding.Decode(e.Value())
		if d.AssetDetail.Ownership == nil || d.AssetDetail.Ownership.Owner != "team-a" || d.AssetDetail.Ownership.BusinessEntity != "Payments" {
			t.Errorf("%s: ownership %+v", k, d.AssetDetail.Ownership)
		}
		if want := []string{"business_unit:Payments", "owner:team-a", "topic:payments"}; !slices.Equal(d.AssetDetail.Tags, want) {
			t.Errorf("%s: tags %q, want %q", k, d.AssetDetail.Tags, want)
		}
	}
	if n != st.Findings.New {
		t.Errorf("%d findings stored, status says %d new", n, st.Findings.New)
	}

	st = send("octo-org/api-fork")
	if st.Status != imports.StatusProcessed || st.Findings.New != 0 || st.Findings.OutOfScope != st.Results {
		t.Errorf("import of a fork under EXCLUDE_FORKS: %+v", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}
