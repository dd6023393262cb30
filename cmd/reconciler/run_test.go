package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/config"
	"github.com/ghas-relay/ghas-relay/internal/config/configtest"
	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/logging/loggingtest"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/processor"
	"github.com/ghas-relay/ghas-relay/internal/reconcile"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
	"github.com/ghas-relay/ghas-relay/internal/transform"
	"github.com/ghas-relay/ghas-relay/internal/transform/transformtest"
)

var (
	keyOnce sync.Once
	key     *rsa.PrivateKey
)

func appKey(t *testing.T) *rsa.PrivateKey {
	keyOnce.Do(func() {
		var err error
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			t.Fatal(err)
		}
	})
	return key
}

// TestRunOnceDaemon drives the whole program in -once daemon mode (one
// sweep, one delta pull, one full pull) against the fake GitHub and an
// in-process JetStream with a processor: afterwards ghas_findings holds
// exactly the fake's alerts, with their status, and the missed delivery
// was recovered.
func TestRunOnceDaemon(t *testing.T) {
	ns := streamtest.Run(t)
	_, js := ns.Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	findings, _ := js.KeyValue(ctx, stream.FindingsBucket)
	state, _ := js.KeyValue(ctx, stream.StateBucket)
	proc := processor.New(slog.New(slog.NewTextHandler(io.Discard, nil)), js, js, findings, transformtest.Defaults(), nil,
		processor.NewMetrics(metrics.NewRegistry()), processor.Config{RetryDelay: 20 * time.Millisecond})
	pctx, pcancel := context.WithCancel(ctx)
	pdone := make(chan struct{})
	go func() { defer close(pdone); _ = proc.Run(pctx) }()
	defer func() { pcancel(); <-pdone }()

	gh := ghtest.New(t, ghtest.Options{PrivateKey: appKey(t), PathPrefix: "/api/v3"}) // GHES-style base URL
	demo := gh.SeedDemo()
	payload, err := os.ReadFile(filepath.Join("..", "..", "testdata", "webhooks", "dependabot_alert", "created.payload.json"))
	if err != nil {
		t.Fatal(err)
	}
	gh.AddDelivery(ghtest.Delivery{GUID: "missed-1", Event: "dependabot_alert", Action: "created",
		DeliveredAt: time.Now().Add(-time.Hour), Status: "Invalid HTTP Response: 502", StatusCode: 502, Payload: payload})

	var stderr loggingtest.Buffer
	err = run(ctx, []string{"reconciler", "-once"}, configtest.Getenv(map[string]string{
		"NATS_URL":               ns.URL(),
		"ADMIN_ADDR":             "127.0.0.1:0",
		"GITHUB_APP_ID":          "1",
		"GITHUB_APP_PRIVATE_KEY": string(gh.PrivateKeyPEM()),
		"GITHUB_API_URL":         gh.URL(),
	}), io.Discard, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}

	// Wait until the processor applied everything.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ok, _ := stream.Drained(ctx, js, processor.ConsumerName); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("processor did not drain")
		}
		time.Sleep(20 * time.Millisecond)
	}

	want := map[string]string{}
	for _, r := range demo.Repositories {
		for _, k := range ghtest.Kinds() {
			if k == ghtest.CodeScanning && r.ID == demo.Repositories[2].ID {
				continue // code scanning is off there
			}
			for _, a := range gh.Alerts(r.ID, k) {
				ds := transform.DatasetOf(map[ghtest.Kind]string{ghtest.CodeScanning: "code_scanning_alert", ghtest.Dependabot: "dependabot_alert", ghtest.SecretScanning: "secret_scanning_alert"}[k])
				want[finding.Key(ds, r.ID, a.Number)] = a.FindingStatus()
			}
		}
	}
	keys, err := findings.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for k := range keys.Keys() {
		e, err := findings.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		d, err := finding.Decode(e.Value())
		if err != nil {
			t.Fatal(err)
		}
		got[k] = d.Finding().FindingStatus
	}
	// The recovered webhook is about the sample's repository, which no
	// installation lists (the full pull may have marked it REMOVED).
	for k := range got {
		if _, repo, _, _ := finding.ParseKey(k); repo == 512875663 {
			delete(got, k)
		}
	}
	if len(got) != len(want) {
		t.Errorf("ghas_findings has %d findings, the fake %d", len(got), len(want))
	}
	for k, st := range want {
		if got[k] != st {
			t.Errorf("%s: %q, want %q", k, got[k], st)
		}
	}

	for _, mode := range []string{reconcile.ModeRedeliver, reconcile.ModeDelta, reconcile.ModeFull} {
		rep, err := reconcile.LatestReport(ctx, state, mode)
		if err != nil || len(rep.Failures) != 0 {
			t.Errorf("report %s: %+v, %v", mode, rep, err)
		}
		if mode == reconcile.ModeRedeliver && (rep == nil || rep.Deliveries.Redelivered != 1) {
			t.Errorf("sweep report %+v: want the missed delivery recovered", rep)
		}
	}
	events, err := js.Stream(ctx, stream.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := events.GetLastMsgForSubject(ctx, stream.RedeliverySubject("dependabot_alert"))
	if err != nil || msg.Header.Get(stream.HeaderMsgID) != "missed-1" {
		t.Errorf("redelivered message %v, %v", msg, err)
	}
}

// A repository listing that fails makes -once exit 1 and say which.
func TestRunOnceFailureExitsOne(t *testing.T) {
	ns := streamtest.Run(t)
	gh := ghtest.New(t, ghtest.Options{PrivateKey: appKey(t)})
	in := gh.AddInstallation("octo-org", "Organization")
	gh.AddAlerts(gh.AddRepository(in.ID, "repo", true).ID, ghtest.Dependabot, 3)
	gh.Inject(ghtest.Fault{Path: "/installation/repositories", Status: 404, Message: "Not Found"})
	var stderr loggingtest.Buffer
	err := run(context.Background(), []string{"reconciler", "-once"}, configtest.Getenv(map[string]string{
		"NATS_URL":               ns.URL(),
		"ADMIN_ADDR":             "127.0.0.1:0",
		"GITHUB_APP_ID":          "1",
		"GITHUB_APP_PRIVATE_KEY": string(gh.PrivateKeyPEM()),
		"GITHUB_API_URL":         gh.URL(),
		"RECONCILE_MODE":         "full",
	}), io.Discard, &stderr)
	if config.ExitCode(err) != 1 || !errors.Is(err, reconcile.ErrRunFailed) {
		t.Fatalf("err %v (exit %d), want exit 1", err, config.ExitCode(err))
	}
	if !strings.Contains(stderr.String(), "octo-org") {
		t.Errorf("stderr does not name the failed installation:\n%s", stderr.String())
	}
}

func TestConfigErrors(t *testing.T) {
	k := appKey(t)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(keyFile, []byte(pemKey), 0o600); err != nil {
		t.Fatal(err)
	}
	good := map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY_FILE": keyFile}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range good {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, c := range []struct {
		env     map[string]string
		setting string
	}{
		{with("GITHUB_APP_ID", ""), "GITHUB_APP_ID"},
		{with("GITHUB_APP_ID", "my-app"), "GITHUB_APP_ID"},
		{with("GITHUB_APP_PRIVATE_KEY_FILE", ""), "GITHUB_APP_PRIVATE_KEY_FILE"},
		{with("GITHUB_APP_PRIVATE_KEY_FILE", filepath.Join(t.TempDir(), "missing.pem")), "GITHUB_APP_PRIVATE_KEY_FILE"},
		{with("GITHUB_APP_PRIVATE_KEY_FILE", "", "GITHUB_APP_PRIVATE_KEY", "not a key"), "GITHUB_APP_PRIVATE_KEY_FILE"},
		{with("RECONCILE_MODE", "sometimes"), "RECONCILE_MODE"},
		{with("RECONCILE_FULL_AT", "2am"), "RECONCILE_FULL_AT"},
		{with("RECONCILE_DELTA_EVERY", "hourly"), "RECONCILE_DELTA_EVERY"},
		{with("REDELIVER_EVERY", "0s"), "REDELIVER_EVERY"},
		{with("RECONCILE_STRATEGY", "random"), "RECONCILE_STRATEGY"},
		{with("RECONCILE_LEASE_TTL", "50ms"), "RECONCILE_LEASE_TTL"},
		{with("RECONCILE_LEASE_TTL", "-30s"), "RECONCILE_LEASE_TTL"},
	} {
		var stderr bytes.Buffer
		err := run(context.Background(), []string{"reconciler", "-once"}, configtest.Getenv(c.env), io.Discard, &stderr)
		var ce *config.Error
		if config.ExitCode(err) != 2 || !errors.As(err, &ce) || ce.Setting != c.setting {
			t.Errorf("%v: err %v, want a config error naming %s", c.env, err, c.setting)
		}
		if !strings.Contains(stderr.String(), c.setting) || strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
			t.Errorf("%v: stderr %q, want one line naming %s", c.env, stderr.String(), c.setting)
		}
	}
	// The configured values parse.
	cfg, err := parseConfig([]string{"reconciler"}, configtest.Getenv(with("RECONCILE_FULL_AT", "03:30", "RECONCILE_MODE", "delta")), io.Discard)
	if err != nil || cfg.FullAt != 3*time.Hour+30*time.Minute || cfg.Mode != "delta" || cfg.DeltaEvery != time.Hour || cfg.Redeliver != 10*time.Minute || cfg.AdminAddr != ":9092" || cfg.LeaseTTL != 30*time.Second {
		t.Errorf("parsed %+v, %v", cfg, err)
	}
}

// Started as a daemon (or repeating full pulls) on a fresh NATS, the
// reconciler pulls in full at once instead of waiting for
// RECONCILE_FULL_AT, twelve hours away.
func TestRunFullPullAtStartOnFreshState(t *testing.T) {
	for _, mode := range []string{reconcile.ModeDaemon, reconcile.ModeFull} {
		t.Run(mode, func(t *testing.T) {
			ns := streamtest.Run(t)
			_, js := ns.Connect()
			gh := ghtest.New(t, ghtest.Options{PrivateKey: appKey(t)})
			in := gh.AddInstallation("octo-org", "Organization")
			gh.AddAlerts(gh.AddRepository(in.ID, "repo", true).ID, ghtest.Dependabot, 3)

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			state, err := js.KeyValue(ctx, stream.StateBucket)
			if err != nil {
				t.Fatal(err)
			}
			var stderr loggingtest.Buffer
			done := make(chan error, 1)
			go func() {
				done <- run(ctx, []string{"reconciler"}, configtest.Getenv(map[string]string{
					"NATS_URL":               ns.URL(),
					"ADMIN_ADDR":             "127.0.0.1:0",
					"GITHUB_APP_ID":          "1",
					"GITHUB_APP_PRIVATE_KEY": string(gh.PrivateKeyPEM()),
					"GITHUB_API_URL":         gh.URL(),
					"RECONCILE_MODE":         mode,
					"RECONCILE_FULL_AT":      time.Now().UTC().Add(12 * time.Hour).Format("15:04"),
				}), io.Discard, &stderr)
			}()
			var rep *reconcile.Report
			for rep == nil && ctx.Err() == nil {
				if rep, err = reconcile.LatestReport(ctx, state, reconcile.ModeFull); err != nil {
					rep = nil
					time.Sleep(20 * time.Millisecond)
				}
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("run: %v\n%s", err, stderr.String())
			}
			if rep == nil {
				t.Fatalf("no full pull report within 30s\n%s", stderr.String())
			}
			if rep.Drift.New != 3 || len(rep.Failures) != 0 {
				t.Errorf("full pull at start: drift %+v, failures %v; want 3 new", rep.Drift, rep.Failures)
			}
			if !strings.Contains(stderr.String(), "full pull at start") {
				t.Errorf("the log does not say why it pulled in full:\n%s", stderr.String())
			}
		})
	}
}
