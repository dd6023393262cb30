package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ghclient"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
	"github.com/ghas-relay/ghas-relay/internal/webhook/webhooktest"
)

var kindDataset = map[ghtest.Kind]string{ghtest.CodeScanning: finding.SAST, ghtest.Dependabot: finding.SCA, ghtest.SecretScanning: finding.Secret}
var kindEvent = map[ghtest.Kind]string{ghtest.CodeScanning: "code_scanning_alert", ghtest.Dependabot: "dependabot_alert", ghtest.SecretScanning: "secret_scanning_alert"}

// TestPipelineEndToEnd drives the three binaries against the fake GitHub:
// webhooks for some alerts, others only visible to the reconciler, one
// delivery GitHub failed to deliver that the sweep recovers, and one alert
// gone from GitHub. The final KV state and GHAS_FINDINGS equal what the fake
// GitHub holds.
func TestPipelineEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-process test")
	}
	ctx := context.Background()
	ns := streamtest.Run(t)
	_, js := ns.Connect()
	gh := ghtest.New(t, ghtest.Options{})
	org := gh.AddInstallation("octo-org", "Organization")
	user := gh.AddInstallation("octocat", "User")
	repos := []ghtest.Repository{
		gh.AddRepository(org.ID, "octo-repo", true),
		gh.AddRepository(org.ID, "payments", false),
		gh.AddRepository(user.ID, "Hello-World", false),
	}
	for i, r := range repos {
		gh.AddAlerts(r.ID, ghtest.CodeScanning, 6+i)
		gh.AddAlerts(r.ID, ghtest.Dependabot, 4+i)
		gh.AddAlerts(r.ID, ghtest.SecretScanning, 3)
	}
	keyFile := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(keyFile, gh.PrivateKeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	app := []string{fmt.Sprintf("GITHUB_APP_ID=%d", gh.AppID()), "GITHUB_APP_PRIVATE_KEY_FILE=" + keyFile, "GITHUB_API_URL=" + gh.URL()}
	common := []string{"NATS_URL=" + ns.URL(), "LOG_LEVEL=warn"}

	_, addrs := serve(t, "receiver", "receiver", 2, func(a []string) []string {
		return append(common, "LISTEN_ADDR="+a[0], "ADMIN_ADDR="+a[1], "GITHUB_WEBHOOK_SECRET="+secret)
	})
	listen := addrs[0]
	serve(t, "processor", "processor", 1, func(a []string) []string { return append(append(common, app...), "ADMIN_ADDR="+a[0]) })

	// Webhooks, built as GitHub builds them: the alert as REST shows it
	// with the repository and installation, for the first two alerts of
	// every kind in every repository.
	client, err := ghclient.New(slog.New(slog.NewTextHandler(io.Discard, nil)), ghclient.Config{BaseURL: gh.URL(), AppID: gh.AppID(), PrivateKeyPEM: gh.PrivateKeyPEM()})
	if err != nil {
		t.Fatal(err)
	}
	repoRaw := map[int64]json.RawMessage{}
	for _, inst := range []ghtest.Installation{org, user} {
		rs, err := client.Repositories(ctx, inst.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			repoRaw[r.ID] = r.Raw
		}
	}
	webhook := func(inst int64, r ghtest.Repository, kind ghtest.Kind, number int64) []byte {
		alert, err := client.GetAlert(ctx, inst, ghclient.Kind(kind), r.Owner, r.Name, number)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(map[string]any{"action": "created", "alert": alert, "repository": repoRaw[r.ID], "installation": map[string]any{"id": inst}})
		return b
	}
	httpc := &http.Client{Timeout: 10 * time.Second}
	sentWebhooks := 0
	for _, r := range repos {
		for _, kind := range ghtest.Kinds() {
			for _, a := range gh.Alerts(r.ID, kind)[:2] {
				body := webhook(r.InstallationID, r, kind, a.Number)
				guid := webhooktest.GUID(fmt.Sprintf("%d/%s/%d", r.ID, kind, a.Number))
				req := webhooktest.NewRequest("http://"+listen+"/webhook", kindEvent[kind], guid, body, secret)
				resp, err := httpc.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					t.Fatalf("webhook %s: %d", guid, resp.StatusCode)
				}
				sentWebhooks++
			}
		}
	}
	streamtest.WaitFor(t, 30*time.Second, "webhooks processed", func() bool { return drained(js) })

	// One delivery GitHub failed to deliver: a change of a code scanning
	// alert that only the sweep can bring in before the full pull.
	r0 := repos[0]
	missedNumber := gh.Alerts(r0.ID, ghtest.CodeScanning)[3].Number
	missedGUID := webhooktest.GUID("missed-delivery")
	gh.AddDelivery(ghtest.Delivery{
		GUID: missedGUID, Event: "code_scanning_alert", Action: "created",
		Status: "Invalid HTTP Response: 503", StatusCode: 503,
		InstallationID: org.ID, RepositoryID: r0.ID,
		Payload: webhook(org.ID, r0, ghtest.CodeScanning, missedNumber),
	})
	// And one that was delivered: the sweep must not publish it.
	deliveredGUID := webhooktest.GUID("delivered")
	gh.AddDelivery(ghtest.Delivery{GUID: deliveredGUID, Event: "code_scanning_alert", Action: "created", InstallationID: org.ID,
		Payload: webhook(org.ID, r0, ghtest.CodeScanning, gh.Alerts(r0.ID, ghtest.CodeScanning)[0].Number)})

	// Drift the fake GitHub after the webhooks: one alert fixed without a
	// webhook, one gone.
	fixed := gh.Alerts(repos[1].ID, ghtest.Dependabot)[0]
	gh.UpdateAlert(repos[1].ID, ghtest.Dependabot, fixed.Number, func(a *ghtest.Alert) {
		a.State = "fixed"
		a.UpdatedAt = time.Now().UTC()
	})
	gone := gh.Alerts(repos[0].ID, ghtest.CodeScanning)[0]
	gh.DeleteAlert(repos[0].ID, ghtest.CodeScanning, gone.Number)

	rec := startProc(t, "reconciler", "reconciler", append(append(common, app...), "ADMIN_ADDR=127.0.0.1:0", "RECONCILE_MODE=daemon"), "-once")
	select {
	case <-rec.Done():
	case <-time.After(120 * time.Second):
		t.Fatalf("reconciler -once did not finish; log:\n%s", rec.Logs())
	}
	if code := rec.ExitCode(); code != 0 {
		t.Fatalf("reconciler exit code %d; log:\n%s", code, rec.Logs())
	}
	streamtest.WaitFor(t, 60*time.Second, "reconcile events processed", func() bool { return drained(js) })

	kv, err := js.KeyValue(ctx, stream.FindingsBucket)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, r := range repos {
		for _, kind := range ghtest.Kinds() {
			for _, a := range gh.Alerts(r.ID, kind) {
				want[finding.Key(kindDataset[kind], r.ID, a.Number)] = a.FindingStatus()
			}
		}
	}
	want[finding.Key(finding.SAST, repos[0].ID, gone.Number)] = finding.StatusRemoved
	keys, err := kv.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(want) {
		t.Errorf("KV holds %d findings, the fake GitHub %d", len(keys), len(want))
	}
	docs := map[string]finding.Document{}
	for key, status := range want {
		e, err := kv.Get(ctx, key)
		if err != nil {
			t.Errorf("finding %s missing", key)
			continue
		}
		d, err := finding.Decode(e.Value())
		if err != nil {
			t.Fatal(err)
		}
		docs[key] = d
		if got := d.Finding().FindingStatus; got != status {
			t.Errorf("finding %s: %s, want %s", key, got, status)
		}
	}
	if got := docs[finding.Key(finding.SCA, repos[1].ID, fixed.Number)]; got.Finding() == nil || got.Finding().FindingStatus != finding.StatusFixed {
		t.Error("the alert fixed without a webhook is not FIXED")
	}

	// GHAS_FINDINGS: the last message of every finding is its KV state.
	last := map[string]string{}
	cons, err := js.OrderedConsumer(ctx, stream.FindingsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{stream.FindingsPrefix + ">"}})
	if err != nil {
		t.Fatal(err)
	}
	for {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			last[m.Headers().Get(stream.HeaderFindingKey)] = m.Headers().Get(stream.HeaderContentHash)
		}
		if n == 0 {
			break
		}
	}
	for key, d := range docs {
		if last[key] != d.ContentHash() {
			t.Errorf("finding %s: last message %q, KV state %q", key, last[key], d.ContentHash())
		}
	}

	// The sweep recovered the failed delivery, and only it.
	stored := storedDeliveries(t, js)
	if stored[missedGUID] != 1 {
		t.Errorf("missed delivery stored %d times, want 1", stored[missedGUID])
	}
	if stored[deliveredGUID] != 0 {
		t.Errorf("a delivered delivery was published again by the sweep")
	}
	t.Logf("%d webhooks, %d findings; reconciler log tail:\n%s", sentWebhooks, len(docs), tail(rec.Logs(), 2000))
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
