package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/proc"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

// leaseTTL is the reconcilers' RECONCILE_LEASE_TTL in these tests.
const leaseTTL = 2 * time.Second

// metric reads the sum of every series of name from a binary's /metrics
// (-1 when it cannot be read).
func metric(admin, name string) float64 {
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get("http://" + admin + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// reconciler is a reconciler process and its admin address.
type reconciler struct {
	p     *proc.Process
	admin string
}

func (r reconciler) held() bool     { return metric(r.admin, "ghas_reconciler_lease_held") == 1 }
func (r reconciler) runs() float64  { return metric(r.admin, "ghas_reconciler_runs_total") }
func (r reconciler) calls() float64 { return metric(r.admin, "ghas_reconciler_requests_total") }

// appEnv writes the fake GitHub's App key to a file and returns the App
// settings for the binaries.
func appEnv(t *testing.T, gh *ghtest.Server) []string {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(keyFile, gh.PrivateKeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{fmt.Sprintf("GITHUB_APP_ID=%d", gh.AppID()), "GITHUB_APP_PRIVATE_KEY_FILE=" + keyFile, "GITHUB_API_URL=" + gh.URL()}
}

// startReconciler starts a reconciler daemon with short intervals and
// waits until it serves /readyz (holder or not).
func startReconciler(t *testing.T, name string, env []string) reconciler {
	t.Helper()
	p, addrs := serve(t, name, "reconciler", 1, func(a []string) []string {
		return append(append([]string(nil), env...), "ADMIN_ADDR="+a[0])
	})
	return reconciler{p: p, admin: addrs[0]}
}

// TestTwoReconcilersDoTheWorkOfOne: two reconciler daemons against one fake
// GitHub and one NATS. Exactly one holds the lease and calls GitHub; the
// other makes no request. SIGKILL the holder (no release): the other takes
// over within two TTLs. SIGTERM the new holder: it gives the lease up and
// the restarted first one takes it within a poll.
func TestTwoReconcilersDoTheWorkOfOne(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-process test")
	}
	ns := streamtest.Run(t)
	ns.Connect()
	gh := ghtest.New(t, ghtest.Options{})
	org := gh.AddInstallation("octo-org", "Organization")
	r := gh.AddRepository(org.ID, "octo-repo", false)
	gh.AddAlerts(r.ID, ghtest.CodeScanning, 5)
	env := append(appEnv(t, gh), "NATS_URL="+ns.URL(), "LOG_LEVEL=info", "RECONCILE_MODE=daemon",
		"RECONCILE_DELTA_EVERY=500ms", "REDELIVER_EVERY=500ms", "RECONCILE_LEASE_TTL="+leaseTTL.String())

	a := startReconciler(t, "reconciler-a", env)
	streamtest.WaitFor(t, 30*time.Second, "a holding the lease", a.held)
	b := startReconciler(t, "reconciler-b", env)

	// For three TTLs: a works, b waits and never calls GitHub.
	runsBefore := a.runs()
	for end := time.Now().Add(3 * leaseTTL); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if b.held() || !a.held() {
			t.Fatalf("lease held: a %v, b %v; want a only", a.held(), b.held())
		}
	}
	if n := b.calls(); n != 0 {
		t.Errorf("the waiting reconciler made %v GitHub requests", n)
	}
	if b.runs() != 0 {
		t.Errorf("the waiting reconciler ran %v times", b.runs())
	}
	if a.runs() <= runsBefore {
		t.Errorf("the holder did not run in three TTLs (runs %v → %v)", runsBefore, a.runs())
	}

	// SIGKILL the holder: b takes over within two TTLs.
	killed := time.Now()
	a.p.Kill()
	streamtest.WaitFor(t, 4*leaseTTL, "b holding the lease", b.held)
	took := time.Since(killed)
	if took > 2*leaseTTL {
		t.Errorf("b took over %s after the holder was killed; want within two TTLs (%s)", took, 2*leaseTTL)
	}
	streamtest.WaitFor(t, 20*time.Second, "b running", func() bool { return b.runs() > 0 })

	// The killed one comes back and waits.
	if err := a.p.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(leaseTTL)
	if a.held() || !b.held() {
		t.Errorf("after a's restart: a %v, b %v; want b only", a.held(), b.held())
	}
	if n := a.calls(); n != 0 {
		t.Errorf("the restarted waiting reconciler made %v GitHub requests", n)
	}

	// SIGTERM the holder: it gives the lease up, a takes it at its next poll.
	stopped := time.Now()
	if code := b.p.Stop(20 * time.Second); code != 0 {
		t.Errorf("b exit code %d after SIGTERM; log:\n%s", code, tail(b.p.Logs(), 3000))
	}
	streamtest.WaitFor(t, 4*leaseTTL, "a holding the lease", a.held)
	handover := time.Since(stopped)
	if handover > leaseTTL {
		t.Errorf("a took the given-up lease %s after b's SIGTERM; want within a poll (TTL/4)", handover)
	}
	t.Logf("TTL %s: takeover after SIGKILL %s, after SIGTERM (lease given up) %s", leaseTTL, took.Round(time.Millisecond), handover.Round(time.Millisecond))
}

// TestReconcilerOnceBesideADaemon: reconciler -once while a daemon holds
// the lease waits two TTLs and exits 1 naming the holder, without a
// GitHub request.
func TestReconcilerOnceBesideADaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-process test")
	}
	ns := streamtest.Run(t)
	ns.Connect()
	gh := ghtest.New(t, ghtest.Options{})
	org := gh.AddInstallation("octo-org", "Organization")
	gh.AddAlerts(gh.AddRepository(org.ID, "octo-repo", false).ID, ghtest.Dependabot, 3)
	env := append(appEnv(t, gh), "NATS_URL="+ns.URL(), "LOG_LEVEL=info", "RECONCILE_MODE=daemon",
		"RECONCILE_DELTA_EVERY=1h", "REDELIVER_EVERY=1h", "RECONCILE_LEASE_TTL="+leaseTTL.String())
	d := startReconciler(t, "reconciler-daemon", env)
	streamtest.WaitFor(t, 30*time.Second, "the daemon holding the lease", d.held)
	streamtest.WaitFor(t, 30*time.Second, "the daemon's first sweep and full pull", func() bool { return d.runs() >= 2 })
	gh.ResetStats()

	start := time.Now()
	once := startProc(t, "reconciler-once", "reconciler", append(env, "ADMIN_ADDR=127.0.0.1:0", "RECONCILE_MODE=full"), "-once")
	select {
	case <-once.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("reconciler -once still waits after 30 s; log:\n%s", once.Logs())
	}
	waited := time.Since(start)
	if code := once.ExitCode(); code != 1 {
		t.Errorf("exit code %d, want 1; log:\n%s", code, once.Logs())
	}
	if waited < 2*leaseTTL {
		t.Errorf("-once gave up after %s; want two TTLs (%s)", waited, 2*leaseTTL)
	}
	if !strings.Contains(once.Logs(), "lease held by another instance (") {
		t.Errorf("-once does not name the holder; log:\n%s", tail(once.Logs(), 2000))
	}
	if n := gh.Stats().Requests; n != 0 {
		t.Errorf("the fake GitHub received %d requests while -once waited and the daemon idled", n)
	}
	if !d.held() {
		t.Error("the daemon lost the lease")
	}

	// Once the daemon stops, -once runs at once and gives the lease up.
	d.p.Stop(20 * time.Second)
	once2 := startProc(t, "reconciler-once-2", "reconciler", append(env, "ADMIN_ADDR=127.0.0.1:0", "RECONCILE_MODE=full"), "-once")
	select {
	case <-once2.Done():
	case <-time.After(60 * time.Second):
		t.Fatalf("reconciler -once did not finish; log:\n%s", once2.Logs())
	}
	if code := once2.ExitCode(); code != 0 {
		t.Errorf("exit code %d with the lease free, want 0; log:\n%s", code, tail(once2.Logs(), 3000))
	}
}
