package natsconf_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/processor"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/webhook/webhooktest"
)

const (
	webhookSecret = "natsconf-secret"
	importToken   = "natsconf-import-token"
)

// TestBinariesWithOwnUsers runs the three real binaries, each with only
// its own user: the receiver first on an empty server (it creates the
// layout), the processor with the HTTP sink and enrichment, the
// reconciler's every pass against a fake GitHub. Every route has to work —
// webhooks to findings, a poison event and a sink rejection to GHAS_DLQ,
// a missed delivery recovered, a full pull — with no permission refused and
// no password in any log. Once with passwords, once with nkeys over TLS
// with client certificates.
func TestBinariesWithOwnUsers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs every binary")
	}
	bin := buildBinaries(t)
	t.Run("password", func(t *testing.T) { runBinaries(t, bin, startServer(t, withPassword, nil, nil)) })
	t.Run("nkey-tls", func(t *testing.T) {
		pki := newPKI(t)
		runBinaries(t, bin, startServer(t, withNKey, pki.server, pki.clientEnv()))
	})
}

func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+string(os.PathSeparator), "./cmd/receiver", "./cmd/processor", "./cmd/reconciler")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// binary is one started binary; its stdout and stderr go to log.
type binary struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startBinary(t *testing.T, bin, name string, env map[string]string, args ...string) *binary {
	t.Helper()
	b := &binary{name: name, log: filepath.Join(t.TempDir(), name+".log"), done: make(chan struct{})}
	f, err := os.Create(b.log)
	if err != nil {
		t.Fatal(err)
	}
	b.cmd = exec.Command(filepath.Join(bin, name), args...)
	b.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "LOG_FORMAT=json", "LOG_LEVEL=debug"}
	for k, v := range env {
		b.cmd.Env = append(b.cmd.Env, k+"="+v)
	}
	b.cmd.Stdout, b.cmd.Stderr = f, f
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = b.cmd.Wait()
		f.Close()
		close(b.done)
	}()
	t.Cleanup(func() {
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-b.done:
		case <-time.After(20 * time.Second):
			_ = b.cmd.Process.Kill()
			<-b.done
		}
	})
	return b
}

func (b *binary) output(t *testing.T) string {
	t.Helper()
	out, err := os.ReadFile(b.log)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitReady(t *testing.T, b *binary, addr string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-b.done:
			t.Fatalf("%s exited:\n%s", b.name, b.output(t))
		default:
		}
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not ready:\n%s", b.name, b.output(t))
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

	listen, recvAdmin, procAdmin, recAdmin := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	recv := startBinary(t, bin, "receiver", with(ns.env["receiver"], "LISTEN_ADDR", listen, "ADMIN_ADDR", recvAdmin,
		"GITHUB_WEBHOOK_SECRET", webhookSecret, "IMPORT_TOKENS", importToken))
	waitReady(t, recv, recvAdmin) // it created the layout alone
	proc := startBinary(t, bin, "processor", with(ns.env["processor"], append(app, "ADMIN_ADDR", procAdmin, "ENRICH", "always",
		"PROCESSOR_MAX_DELIVER", "2", "SINK_URL", sinkSrv.URL+"/findings", "SINK_TOKEN", "t0ken")...))
	waitReady(t, proc, procAdmin)

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

	rec := startBinary(t, bin, "reconciler", with(ns.env["reconciler"], append(app, "ADMIN_ADDR", recAdmin, "RECONCILE_MODE", "daemon")...), "-once")
	waitFor(t, "end of reconciler -once", func() bool {
		for _, b := range []*binary{recv, proc, rec} {
			if out := b.output(t); strings.Contains(strings.ToLower(out), "permissions violation") {
				t.Fatalf("%s was refused something:\n%s", b.name, out)
			}
		}
		select {
		case <-rec.done:
			return true
		default:
			return false
		}
	})
	if code := rec.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("reconciler exit code %d:\n%s", code, rec.output(t))
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

	for _, b := range []*binary{recv, proc, rec} {
		out := b.output(t)
		if strings.Contains(strings.ToLower(out), "permissions violation") {
			t.Errorf("%s was refused something:\n%s", b.name, out)
		}
		for _, e := range ns.env {
			if f := e["NATS_PASSWORD_FILE"]; f != "" {
				pw, _ := os.ReadFile(f)
				if p := strings.TrimSpace(string(pw)); p != "" && strings.Contains(out, p) {
					t.Errorf("%s logged a NATS password", b.name)
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
