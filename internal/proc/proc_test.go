package proc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary is its own child: with PROC_TEST_CHILD set it listens
// on PROC_TEST_ADDR, answers every request 200 and exits 0 on SIGTERM, or
// exits 3 when it cannot bind.
func TestMain(m *testing.M) {
	if os.Getenv("PROC_TEST_CHILD") != "" {
		os.Exit(child(os.Getenv("PROC_TEST_ADDR")))
	}
	os.Exit(m.Run())
}

func child(addr string) int {
	fmt.Println("child starting on", addr)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("listen:", err)
		return 3
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln) }()
	<-ctx.Done()
	_ = srv.Close()
	fmt.Println("child stopping")
	return 0
}

func childSpec(t *testing.T, addr string) Spec {
	return Spec{
		Name:         "child",
		Path:         os.Args[0],
		Args:         []string{"-test.run=^$"},
		Env:          []string{"PROC_TEST_CHILD=1", "PROC_TEST_ADDR=" + addr},
		Log:          filepath.Join(t.TempDir(), "child.log"),
		Ready:        HTTPReady("http://" + addr + "/readyz"),
		ReadyTimeout: 20 * time.Second,
	}
}

func TestStartReadyStop(t *testing.T) {
	p, addrs, err := StartOnFreeAddrs(t.Context(), 1, func(a []string) Spec { return childSpec(t, a[0]) })
	if err != nil {
		t.Fatal(err)
	}
	if !HTTPReady("http://" + addrs[0] + "/")(t.Context()) {
		t.Fatal("the child does not serve after Start returned")
	}
	if code := p.ExitCode(); code != -1 {
		t.Errorf("exit code of a running child: %d, want -1", code)
	}
	if code := p.Stop(10 * time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM: %d, want 0; log:\n%s", code, p.Logs())
	}
	if l := p.Logs(); !strings.Contains(l, "child starting on "+addrs[0]) || !strings.Contains(l, "child stopping") {
		t.Errorf("log lacks the child's lines:\n%s", l)
	}
}

// A child whose address another process took between the pick and its
// bind exits; StartOnFreeAddrs starts it again on new addresses.
func TestStartOnFreeAddrsRetriesATakenAddress(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	attempts := 0
	p, addrs, err := StartOnFreeAddrs(t.Context(), 1, func(a []string) Spec {
		attempts++
		if attempts == 1 {
			a[0] = taken.Addr().String()
		}
		return childSpec(t, a[0])
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(10 * time.Second)
	if attempts != 2 || addrs[0] == taken.Addr().String() {
		t.Errorf("attempts %d, address %s (taken: %s); want a second attempt on another address", attempts, addrs[0], taken.Addr())
	}
}

func TestStartReportsAnEarlyExit(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, err = Start(t.Context(), childSpec(t, taken.Addr().String()))
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "exit code 3") || !strings.Contains(err.Error(), "listen:") {
		t.Fatalf("err = %v, want ErrExited with the exit code and the log", err)
	}
}

func TestNotReadyInTimeIsKilled(t *testing.T) {
	addrs, err := FreeAddrs(2)
	if err != nil {
		t.Fatal(err)
	}
	s := childSpec(t, addrs[0])
	s.Ready = HTTPReady("http://" + addrs[1] + "/") // nothing ever serves there
	s.ReadyTimeout = 500 * time.Millisecond
	_, err = Start(t.Context(), s)
	if err == nil || errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "not ready within") {
		t.Fatalf("err = %v, want a readiness timeout", err)
	}
	if Listening(addrs[0])(t.Context()) {
		t.Error("a child that was not ready in time is still listening")
	}
}

func TestKillAndRestartOnTheSameAddress(t *testing.T) {
	addrs, err := FreeAddrs(1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Start(t.Context(), childSpec(t, addrs[0]))
	if err != nil {
		t.Fatal(err)
	}
	p.Kill()
	if code := p.ExitCode(); code != -1 {
		t.Errorf("exit code after SIGKILL: %d, want -1", code)
	}
	if err := p.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer p.Stop(10 * time.Second)
	if n := strings.Count(p.Logs(), "child starting"); n != 2 {
		t.Errorf("log holds %d starts, want 2 (appended):\n%s", n, p.Logs())
	}
}

func TestGroupStopsNewestFirst(t *testing.T) {
	g := &Group{LogDir: t.TempDir(), Grace: 10 * time.Second}
	var ps []*Process
	for i := range 2 {
		p, _, err := g.StartOnFreeAddrs(t.Context(), 1, func(a []string) Spec {
			s := childSpec(t, a[0])
			s.Name, s.Log = fmt.Sprintf("child-%d", i), ""
			return s
		})
		if err != nil {
			g.StopAll()
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	g.StopAll()
	for i, p := range ps {
		if code := p.ExitCode(); code != 0 {
			t.Errorf("child %d: exit code %d, want 0", i, code)
		}
		if l := p.Logs(); !strings.Contains(l, "child stopping") {
			t.Errorf("child %d's log in the group's folder lacks its stop:\n%s", i, l)
		}
	}
	if _, err := os.Stat(filepath.Join(g.LogDir, "child-1.log")); err != nil {
		t.Error(err)
	}
}

func TestBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build")
	}
	dir := t.TempDir()
	if err := Build(t.Context(), ".", dir, nil, "./testdata/hello"); err != nil {
		t.Fatal(err)
	}
	p, err := Start(t.Context(), Spec{Name: "hello", Path: filepath.Join(dir, "hello"), Log: filepath.Join(dir, "hello.log")})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("hello did not exit")
	}
	if p.ExitCode() != 0 || !strings.Contains(p.Logs(), "hello from a built binary") {
		t.Errorf("exit code %d, log %q", p.ExitCode(), p.Logs())
	}
	err = Build(t.Context(), ".", dir, nil, "./testdata/missing")
	if err == nil || !strings.Contains(err.Error(), "testdata/missing") {
		t.Errorf("building a missing package: %v, want an error naming it", err)
	}
}
