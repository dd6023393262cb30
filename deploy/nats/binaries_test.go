package natsconf_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/proc"
	"github.com/ghas-relay/ghas-relay/internal/processor"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/webhook/webhooktest"
)

const (
	webhookSecret = "natsconf-secret"
	importToken   = "natsconf-import-token"
)

// TestBinariesWithOwnUsers runs the setup step and the three real
// binaries, each with only its own user: `processor -setup` first on an
// empty server (it creates the layout), then the receiver, the processor
// with the HTTP sink and enrichment, the reconciler's every pass against a
// fake GitHub. Every route has to work — webhooks to findings, a poison
// event and a sink rejection to GHAS_DLQ, a missed delivery recovered, a
// full pull; the console loads every finding — with no permission refused
// and no password in any log. Once
// with passwords, once with nkeys over TLS with client certificates.
// Before the setup step, each binary waits for the layout and gives up
// after NATS_START_TIMEOUT naming the cause.
func TestBinariesWithOwnUsers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs every binary")
	}
	bin := buildBinaries(t)
	t.Run("no-layout", func(t *testing.T) { noLayout(t, bin, startServer(t, withPassword, nil, nil)) })
	t.Run("password", func(t *testing.T) { runBinaries(t, bin, startServer(t, withPassword, nil, nil)) })
	t.Run("nkey-tls", func(t *testing.T) {
		pki := newPKI(t)
		runBinaries(t, bin, startServer(t, withNKey, pki.server, pki.clientEnv()))
	})
}

// noLayout starts each binary with its user on an empty server: none may
// create the layout, so each says it waits for processor -setup and exits
// non-zero after NATS_START_TIMEOUT, its last stderr line naming the
// setting and what is missing.
func noLayout(t *testing.T, bin string, ns *natsServer) {
	gh := ghtest.New(t, ghtest.Options{})
	keyFile := filepath.Join(t.TempDir(), "app.pem")
	writeFile(t, keyFile, string(gh.PrivateKeyPEM()))
	app := []string{"GITHUB_APP_ID", fmt.Sprint(gh.AppID()), "GITHUB_APP_PRIVATE_KEY_FILE", keyFile, "GITHUB_API_URL", gh.URL()}
	env := map[string]map[string]string{
		"receiver":   with(ns.env["receiver"], "GITHUB_WEBHOOK_SECRET", webhookSecret, "LISTEN_ADDR", "127.0.0.1:0"),
		"processor":  with(ns.env["processor"]),
		"reconciler": with(ns.env["reconciler"], app...),
	}
	var ps []*proc.Process
	for _, name := range []string{"receiver", "processor", "reconciler"} {
		p, _ := startBinary(t, bin, name, with(env[name], "ADMIN_ADDR", "127.0.0.1:0", "NATS_START_TIMEOUT", "3s"), 0, nil)
		ps = append(ps, p)
	}
	for _, p := range ps {
		select {
		case <-p.Done():
		case <-time.After(60 * time.Second):
			t.Fatalf("%s still runs 60 s after its 3 s start timeout", p.Name())
		}
		out := p.Logs()
		last := lastLine(out)
		if p.ExitCode() == 0 || !strings.Contains(last, "NATS_START_TIMEOUT") || !strings.Contains(last, "missing") || !strings.Contains(last, "run processor -setup") {
			t.Errorf("%s: exit code %d, last line %q; want non-zero naming NATS_START_TIMEOUT and the missing layout\n%s", p.Name(), p.ExitCode(), last, out)
		}
		if !strings.Contains(out, "waiting for the nats layout: run processor -setup") {
			t.Errorf("%s did not say that it waits for the setup step:\n%s", p.Name(), out)
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// runSetup runs `processor -setup` as the setup user and requires exit 0
// and a line saying each stream and bucket was created.
func runSetup(t *testing.T, bin string, ns *natsServer) {
	t.Helper()
	p, _ := startBinary(t, bin, "processor", ns.env["setup"], 0, nil, "-setup")
	select {
	case <-p.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("processor -setup did not exit within 60 s")
	}
	out := p.Logs()
	if code := p.ExitCode(); code != 0 {
		t.Fatalf("processor -setup: exit code %d\n%s", code, out)
	}
	for _, name := range layoutNames() {
		line := "created stream " + name
		if b, ok := strings.CutPrefix(name, "KV_"); ok {
			line = "created bucket " + b
		}
		if !strings.Contains(out, line+"\n") {
			t.Errorf("processor -setup did not print %q:\n%s", line, out)
		}
	}
}

func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := proc.Build(t.Context(), filepath.Join("..", ".."), dir, nil, "./cmd/receiver", "./cmd/processor", "./cmd/reconciler", "./cmd/console"); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startBinary starts the binary name of bin with only env (and PATH, a
// HOME of its own, JSON debug logs) on n fresh loopback addresses that
// addrs turns into settings, and waits until it serves /readyz on the
// last (its ADMIN_ADDR); n 0: nothing is waited for. It is stopped when
// the test ends.
func startBinary(t *testing.T, bin, name string, env map[string]string, n int, addrs func(a []string) []string, args ...string) (*proc.Process, []string) {
	t.Helper()
	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LOG_FORMAT=json", "LOG_LEVEL=debug"}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		base = append(base, k+"="+env[k])
	}
	log := filepath.Join(t.TempDir(), name+".log")
	p, got, err := proc.StartOnFreeAddrs(t.Context(), n, func(a []string) proc.Spec {
		s := proc.Spec{Name: name, Path: filepath.Join(bin, name), Args: args, BaseEnv: base, Log: log}
		if n > 0 {
			s.Env = addrs(a)
			s.Ready = proc.HTTPReady("http://" + a[n-1] + "/readyz")
		}
		return s
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(20 * time.Second) })
	return p, got
}

// recordingSink accepts every finding but secrets, which it rejects with
// 422 (the sink then dead-letters them).
type recordingSink struct {
	mu       sync.Mutex
	accepted int
}

func (s *recordingSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if bytes.Contains(body, []byte("APPLICATION_SECRET")) {
		w.WriteHeader(http.StatusUnprocessableEntity)
		return
	}
	s.mu.Lock()
	s.accepted++
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (s *recordingSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

func with(base map[string]string, kv ...string) map[string]string {
	m := map[string]string{}
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func runBinaries(t *testing.T, bin string, ns *natsServer) {
	ctx := ctxT(t)
	admin := ns.connect(t, "admin")
	gh := ghtest.New(t, ghtest.Options{})
	world := gh.SeedDemo()
	keyFile := filepath.Join(t.TempDir(), "app.pem")
	writeFile(t, keyFile, string(gh.PrivateKeyPEM()))
	app := []string{"GITHUB_APP_ID", fmt.Sprint(gh.AppID()), "GITHUB_APP_PRIVATE_KEY_FILE", keyFile, "GITHUB_API_URL", gh.URL()}
	samples, err := webhooktest.Samples(filepath.Join("..", "..", "testdata", "webhooks"))
	if err != nil {
		t.Fatal(err)
	}
	// A delivery GitHub failed to make, for the reconciler's sweep.
	var missed webhooktest.Sample
	for _, s := range samples {
		if s.Event == "code_scanning_alert" {
			missed = s
			break
		}
	}
	gh.AddDelivery(ghtest.Delivery{GUID: webhooktest.GUID("natsconf-missed"), Event: missed.Event, Action: "created",
		Status: "Invalid HTTP Response: 503", StatusCode: 503, InstallationID: world.Org.ID, Payload: missed.Body})
	sink := &recordingSink{}
	sinkSrv := httptest.NewServer(sink)
	t.Cleanup(sinkSrv.Close)

	// The setup step, then the receiver, ready.
	runSetup(t, bin, ns)
	recv, addrs := startBinary(t, bin, "receiver", with(ns.env["receiver"], "GITHUB_WEBHOOK_SECRET", webhookSecret, "IMPORT_TOKENS", importToken),
		2, func(a []string) []string { return []string{"LISTEN_ADDR=" + a[0], "ADMIN_ADDR=" + a[1]} })
	listen := addrs[0]
	process, _ := startBinary(t, bin, "processor", with(ns.env["processor"], append(app, "ENRICH", "always",
		"PROCESSOR_MAX_DELIVER", "2", "SINK_URL", sinkSrv.URL+"/findings", "SINK_TOKEN", "t0ken")...),
		1, func(a []string) []string { return []string{"ADMIN_ADDR=" + a[0]} })

	client := &http.Client{Timeout: 10 * time.Second}
	send := func(event, delivery string, body []byte) int {
		resp, err := client.Do(webhooktest.NewRequest("http://"+listen+"/webhook", event, delivery, body, webhookSecret))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, s := range samples {
		if code := send(s.Event, s.Delivery(), s.Body); code != http.StatusAccepted {
			t.Fatalf("%s/%s: status %d", s.Event, s.Name, code)
		}
	}
	// A poison event: the alert is not an object.
	if code := send("code_scanning_alert", webhooktest.GUID("natsconf-poison"), []byte(`{"action":"created","alert":"broken","repository":{"id":1,"full_name":"a/b"}}`)); code != http.StatusAccepted {
		t.Fatalf("poison event: status %d", code)
	}
	waitDrained(t, admin)
	importSARIF(t, listen, world.Repositories[0].FullName)

	rec, _ := startBinary(t, bin, "reconciler", with(ns.env["reconciler"], append(app, "ADMIN_ADDR", "127.0.0.1:0", "RECONCILE_MODE", "daemon")...), 0, nil, "-once")
	waitFor(t, "end of reconciler -once", func() bool {
		for _, b := range []*proc.Process{recv, process, rec} {
			if out := b.Logs(); strings.Contains(strings.ToLower(out), "permissions violation") {
				t.Fatalf("%s was refused something:\n%s", b.Name(), out)
			}
		}
		select {
		case <-rec.Done():
			return true
		default:
			return false
		}
	})
	if code := rec.ExitCode(); code != 0 {
		t.Fatalf("reconciler exit code %d:\n%s", code, rec.Logs())
	}
	waitDrained(t, admin)

	// Every route left its mark.
	mustHaveSome(t, admin, stream.EventsStream, stream.WebhookPrefix+">")
	mustHaveSome(t, admin, stream.EventsStream, stream.RedeliveryPrefix+">")
	mustHaveSome(t, admin, stream.EventsStream, stream.ReconcilePrefix+">")
	mustHaveSome(t, admin, stream.DLQStream, stream.DLQSubject("code_scanning_alert"))
	mustHaveSome(t, admin, stream.FindingsStream, stream.FindingsPrefix+">")
	mustHaveSome(t, admin, stream.FindingsStream, stream.AssetsPrefix+">")
	mustHaveSome(t, admin, "KV_"+stream.StateBucket, "$KV.ghas_state.>")
	keys, err := kvOf(t, admin, stream.FindingsBucket).ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range keys.Keys() {
		n++
	}
	if n == 0 {
		t.Error("no findings in KV")
	}
	waitFor(t, "sink deliveries and a sink dead letter", func() bool {
		return sink.count() > 0 && countOn(t, admin, stream.DLQStream, stream.DLQPrefix+">") > countOn(t, admin, stream.DLQStream, stream.DLQSubject("code_scanning_alert"))
	})

	// The console, with its read-only user: it loads every finding and
	// their history.
	console, caddrs := startBinary(t, bin, "console", ns.env["console"], 2, func(a []string) []string { return []string{"CONSOLE_ADDR=" + a[0], "ADMIN_ADDR=" + a[1]} })
	var summary struct{ Findings int }
	waitFor(t, "the console showing every finding", func() bool {
		resp, err := http.Get("http://" + caddrs[0] + "/api/summary")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&summary) == nil && summary.Findings == n
	}, func() string { return fmt.Sprintf("%d findings shown", summary.Findings) })

	for _, b := range []*proc.Process{recv, process, rec, console} {
		out := b.Logs()
		if strings.Contains(strings.ToLower(out), "permissions violation") {
			t.Errorf("%s was refused something:\n%s", b.Name(), out)
		}
		for _, e := range ns.env {
			if f := e["NATS_PASSWORD_FILE"]; f != "" {
				pw, _ := os.ReadFile(f)
				if p := strings.TrimSpace(string(pw)); p != "" && strings.Contains(out, p) {
					t.Errorf("%s logged a NATS password", b.Name())
				}
			}
		}
	}
	t.Logf("%d findings, %d sink deliveries", n, sink.count())
}

func countOn(t *testing.T, admin *client, name, subject string) uint64 {
	t.Helper()
	s, err := admin.js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

func mustHaveSome(t *testing.T, admin *client, name, subject string) {
	t.Helper()
	if countOn(t, admin, name, subject) == 0 {
		t.Errorf("%s holds nothing on %s", name, subject)
	}
}

// waitFor polls ok for 90 s; detail (if any) says what was seen last.
func waitFor(t *testing.T, what string, ok func() bool, detail ...func() string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			msg := ""
			for _, d := range detail {
				msg += "; " + d()
			}
			t.Fatalf("no %s within 90 s%s", what, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitDrained(t *testing.T, admin *client) {
	t.Helper()
	waitFor(t, "drained GHAS_EVENTS", func() bool {
		ok, _ := stream.Drained(context.Background(), admin.js, processor.ConsumerName)
		return ok
	})
}

// importSARIF posts a SARIF file to the receiver's /imports and waits until
// its status (written by the receiver, then the processor, in KV
// ghas_imports, read back by the receiver) is processed.
func importSARIF(t *testing.T, listen, repository string) {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "imports", "codeql.sarif"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+listen+"/imports?format=sarif&repository="+repository, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+importToken)
	req.Header.Set("Content-Type", "application/sarif+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ans struct{ Import, Status string }
	_ = json.NewDecoder(resp.Body).Decode(&ans)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || ans.Import == "" {
		t.Fatalf("POST /imports: %d %+v", resp.StatusCode, ans)
	}
	var last string
	waitFor(t, "a processed import", func() bool {
		req, _ := http.NewRequest(http.MethodGet, "http://"+listen+"/imports/"+ans.Import, nil)
		req.Header.Set("Authorization", "Bearer "+importToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st struct{ Status, Error string }
		_ = json.NewDecoder(resp.Body).Decode(&st)
		last = fmt.Sprintf("%d %+v", resp.StatusCode, st)
		if st.Status == "failed" {
			t.Fatalf("import failed: %s", last)
		}
		return resp.StatusCode == http.StatusOK && st.Status == "processed"
	}, func() string { return "last status: " + last })
}
