package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/proc"
)

// Tokens and secret of the soak's receiver.
const (
	secret        = "soak-secret"
	importToken   = "soak-import-token"
	decisionToken = "soak-decision-token"
	readyTimeout  = 60 * time.Second
)

// watched is a process whose memory (and goroutines, from its admin
// address when it has one) the soak samples.
type watched struct {
	name  string
	p     *proc.Process
	admin string // "" for nats-server
}

// env is the system under test: nats-server, the receiver, a processor
// forwarding to an HTTP sink in this program, a reconciler daemon, all
// against a fake GitHub App in this program.
type env struct {
	dir     string
	procs   proc.Group
	gh      *ghtest.Server
	repos   []ghtest.Repository
	webhook string // the receiver's base URL
	watched []watched
	sinkSrv *http.Server
	sunk    atomic.Int64 // POSTs the sink answered 200
}

func (e *env) stop() {
	e.procs.StopAll()
	if e.sinkSrv != nil {
		_ = e.sinkSrv.Close()
	}
	if e.gh != nil {
		e.gh.Close()
	}
	_ = os.RemoveAll(e.dir)
}

// start builds the binaries (from the module root), seeds the fake
// GitHub with repos repositories of perKind alerts of each kind, and
// starts every process.
func start(ctx context.Context, stderr io.Writer, repos, perKind int, deltaEvery time.Duration) (*env, error) {
	dir, err := os.MkdirTemp("", "soak-")
	if err != nil {
		return nil, err
	}
	e := &env{dir: dir, procs: proc.Group{LogDir: dir}}
	fail := func(err error) (*env, error) { e.stop(); return nil, err }
	if err := proc.Build(ctx, ".", dir, stderr, "github.com/nats-io/nats-server/v2", "./cmd/receiver", "./cmd/processor", "./cmd/reconciler"); err != nil {
		return fail(err)
	}
	e.gh, err = ghtest.Start(ghtest.Options{RateLimit: 1_000_000})
	if err != nil {
		return fail(err)
	}
	org := e.gh.AddInstallation("soak-org", "Organization")
	for i := range repos {
		r := e.gh.AddRepository(org.ID, fmt.Sprintf("repo-%03d", i), i%2 == 0)
		for _, k := range ghtest.Kinds() {
			e.gh.AddAlerts(r.ID, k, perKind)
		}
		e.repos = append(e.repos, r)
	}
	keyFile := filepath.Join(dir, "app.pem")
	if err := os.WriteFile(keyFile, e.gh.PrivateKeyPEM(), 0o600); err != nil {
		return fail(err)
	}
	app := []string{fmt.Sprintf("GITHUB_APP_ID=%d", e.gh.AppID()), "GITHUB_APP_PRIVATE_KEY_FILE=" + keyFile, "GITHUB_API_URL=" + e.gh.URL()}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	e.sinkSrv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		e.sunk.Add(1)
	})}
	go func() { _ = e.sinkSrv.Serve(ln) }()

	natsProc, natsURL, err := e.procs.StartJetStream(ctx, filepath.Join(dir, "nats-server"), dir, nil)
	if err != nil {
		return fail(err)
	}
	e.watched = append(e.watched, watched{name: "nats-server", p: natsProc})
	common := []string{"NATS_URL=" + natsURL, "LOG_LEVEL=warn"}
	startBin := func(name string, n int, env func(a []string) []string) ([]string, error) {
		p, addrs, err := e.procs.StartOnFreeAddrs(ctx, n, func(a []string) proc.Spec {
			return proc.Spec{Name: name, Path: filepath.Join(dir, name), Env: append(append([]string(nil), common...), env(a)...),
				Ready: proc.HTTPReady("http://" + a[n-1] + "/readyz"), ReadyTimeout: readyTimeout}
		})
		if err != nil {
			return nil, err
		}
		e.watched = append(e.watched, watched{name: name, p: p, admin: addrs[n-1]})
		return addrs, nil
	}
	// The processor first: without authorization it creates the layout
	// the other two wait for.
	if _, err := startBin("processor", 1, func(a []string) []string {
		return append(append([]string(nil), app...), "ADMIN_ADDR="+a[0], "SINK_URL=http://"+ln.Addr().String()+"/findings", "WRITE_BACK=true")
	}); err != nil {
		return fail(err)
	}
	addrs, err := startBin("receiver", 2, func(a []string) []string {
		return []string{"LISTEN_ADDR=" + a[0], "ADMIN_ADDR=" + a[1], "GITHUB_WEBHOOK_SECRET=" + secret,
			"IMPORT_TOKENS=" + importToken, "DECISION_TOKENS=" + decisionToken}
	})
	if err != nil {
		return fail(err)
	}
	e.webhook = "http://" + addrs[0]
	if _, err := startBin("reconciler", 1, func(a []string) []string {
		return append(append([]string(nil), app...), "ADMIN_ADDR="+a[0], "RECONCILE_MODE=daemon",
			"RECONCILE_DELTA_EVERY="+deltaEvery.String(), "REDELIVER_EVERY="+deltaEvery.String())
	}); err != nil {
		return fail(err)
	}
	return e, nil
}
