// Command consoleload measures the console at scale. It starts an
// in-process JetStream server (file storage) with the layout, fills KV
// ghas_findings with -findings finding documents (about 2 KB each, as the
// processor writes them, so GHAS_FINDINGS holds a revision of each) across
// -repos repositories, writes -changes more revisions (fixes, reopenings,
// dismissals, severity and priority changes), then builds cmd/console and
// runs it as its own process and measures:
//
//   - the index load: from the console's start until /readyz answers 200
//     (KV loaded and the GHAS_FINDINGS history read), and its peak and
//     settled RSS (VmHWM, VmRSS);
//   - GET /api/summary and a filtered GET /api/findings page (a random
//     owner and status, or severity and type, 50 a page) under -clients
//     concurrent clients for -d each: p50, p99, max;
//   - GET /api/changes over the changes written after the fill (the
//     window holds exactly -changes revisions; limit 100000) and over
//     since=24h (the fill's findings too: every one is "new" today), each
//     -reps times: the slowest.
//
// Run from the module root: go run ./internal/bench/consoleload
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/proc"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "consoleload:", err)
		os.Exit(1)
	}
}

type options struct {
	findings, repos, changes, clients, reps int
	dur                                     time.Duration
	env                                     []string
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consoleload", flag.ContinueOnError)
	var o options
	fs.IntVar(&o.findings, "findings", 1000000, "findings in KV ghas_findings")
	fs.IntVar(&o.repos, "repos", 10000, "repositories they are spread across")
	fs.IntVar(&o.changes, "changes", 100000, "revisions written after the fill (the changes)")
	fs.IntVar(&o.clients, "clients", 50, "concurrent clients of the latency runs")
	fs.IntVar(&o.reps, "reps", 5, "requests of each /api/changes measurement")
	fs.DurationVar(&o.dur, "d", 20*time.Second, "duration of each latency run")
	env := fs.String("env", "", "extra environment of the console, comma-separated KEY=VALUE (e.g. GOMEMLIMIT=400MiB)")
	store := fs.String("store", "", "keep the JetStream data in this folder and, when it holds a fill already, measure again without filling")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *env != "" {
		o.env = strings.Split(*env, ",")
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "consoleload-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	jsDir := filepath.Join(dir, "js")
	if *store != "" {
		jsDir = *store
	}
	marker := filepath.Join(jsDir, "consoleload-changes-from")

	fmt.Fprintf(stderr, "building cmd/console\n")
	if err := proc.Build(ctx, ".", filepath.Join(dir, "bin"), stderr, "./cmd/console"); err != nil {
		return err
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: jsDir, NoLog: true, NoSigs: true,
		JetStreamMaxMemory: 256 << 20, JetStreamMaxStore: 64 << 30})
	if err != nil {
		return err
	}
	go srv.Start()
	if !srv.ReadyForConnections(5 * time.Minute) { // a kept store is read first
		return fmt.Errorf("nats server not ready")
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		return err
	}
	if _, err := stream.Apply(ctx, js, stream.Layout{Replicas: 1}); err != nil {
		return err
	}

	var changesFrom time.Time
	if b, err := os.ReadFile(marker); err == nil {
		// A kept fill: the same findings and changes as when it was made.
		if changesFrom, err = time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b))); err != nil {
			return fmt.Errorf("%s: %w", marker, err)
		}
		fmt.Fprintf(stderr, "measuring the fill kept in %s\n", jsDir)
	} else {
		w := &world{n: o.findings, repos: o.repos, rng: rand.New(rand.NewPCG(1, 2)), rev: make([]uint64, o.findings),
			status: make([]string, o.findings), sev: make([]string, o.findings), score: make([]int, o.findings), now: time.Now().UTC()}
		start := time.Now()
		if err := fill(ctx, js, w); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "filled %d findings across %d repositories in %s\n", o.findings, o.repos, time.Since(start).Round(time.Millisecond))
		if err := waitSourced(ctx, js); err != nil {
			return err
		}
		changesFrom = time.Now().UTC()
		time.Sleep(10 * time.Millisecond)
		start = time.Now()
		if err := change(ctx, js, w, o.changes); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %d changes in %s\n", o.changes, time.Since(start).Round(time.Millisecond))
		if err := waitSourced(ctx, js); err != nil {
			return err
		}
		if *store != "" {
			if err := os.WriteFile(marker, []byte(changesFrom.Format(time.RFC3339Nano)), 0o644); err != nil {
				return err
			}
		}
	}
	kvSize, fsSize := streamBytes(ctx, js, stream.FindingsKVStream), streamBytes(ctx, js, stream.FindingsStream)

	// The console, as its own process.
	var addrs []string
	start := time.Now()
	p, addrs, err := proc.StartOnFreeAddrs(ctx, 2, func(a []string) proc.Spec {
		return proc.Spec{Name: "console", Path: filepath.Join(dir, "bin", "console"), Output: stderr, ReadyTimeout: 10 * time.Minute,
			Env:   append([]string{"NATS_URL=" + srv.ClientURL(), "CONSOLE_ADDR=" + a[0], "ADMIN_ADDR=" + a[1], "LOG_LEVEL=info"}, o.env...),
			Ready: proc.HTTPReady("http://" + a[1] + "/readyz")}
	})
	if err != nil {
		return err
	}
	defer p.Stop(10 * time.Second)
	load := time.Since(start)
	peak, _ := p.Memory("VmHWM")
	time.Sleep(2 * time.Second)
	settled, _ := p.Memory("VmRSS")
	cpu := p.CPUTime()
	base := "http://" + addrs[0]

	rng := rand.New(rand.NewPCG(3, 4))
	summary := measure(o, func() string { return base + "/api/summary" })
	filtered := measure(o, func() string {
		q := url.Values{"limit": {"50"}}
		switch rng.IntN(3) {
		case 0:
			q.Set("owner", owner(1+rng.IntN(o.repos-1)))
			q.Set("status", "ACTIVE")
		case 1:
			q.Set("severity", sevs[rng.IntN(len(sevs))])
			q.Set("type", []string{"sast", "sca", "secret"}[rng.IntN(3)])
		default:
			q.Set("owner", owner(1+rng.IntN(o.repos-1)))
			q.Set("severity", "CRITICAL")
			q.Set("sort", "lastFoundOn")
		}
		return base + "/api/findings?" + q.Encode()
	})
	window, windowN := timeChanges(base+"/api/changes?limit=100000&since="+url.QueryEscape(changesFrom.Format(time.RFC3339Nano)), o.reps, true)
	day, dayN := timeChanges(base+"/api/changes?since=24h", o.reps, false)

	fmt.Fprintf(stdout, "\nconsoleload: %d findings across %d repositories, %d changes; KV stream %s, GHAS_FINDINGS %s; %d clients, %s a run; load average %s\n\n",
		o.findings, o.repos, o.changes, mib(kvSize), mib(fsSize), o.clients, o.dur, loadavg())
	fmt.Fprintf(stdout, "| measure | result | target |\n|---|---|---|\n")
	fmt.Fprintf(stdout, "| index load (start → /readyz: KV and 30 days of history) | %s (CPU %s) | ≤ 60 s |\n", load.Round(100*time.Millisecond), cpu.Round(100*time.Millisecond))
	fmt.Fprintf(stdout, "| RSS peak during the load / settled | %s / %s | ≤ 512 MiB |\n", mib(peak), mib(settled))
	fmt.Fprintf(stdout, "| `/api/summary` p50 / p99 / max (%d requests) | %s / %s / %s | p99 ≤ 50 ms |\n", summary.n, ms(summary.p50), ms(summary.p99), ms(summary.max))
	fmt.Fprintf(stdout, "| filtered `/api/findings` page p50 / p99 / max (%d requests) | %s / %s / %s | p99 ≤ 100 ms |\n", filtered.n, ms(filtered.p50), ms(filtered.p99), ms(filtered.max))
	fmt.Fprintf(stdout, "| `/api/changes` over the %d changes (all listed), slowest of %d | %s (%d listed) | ≤ 2 s |\n", o.changes, o.reps, ms(window), windowN)
	fmt.Fprintf(stdout, "| `/api/changes?since=24h` (fill and changes counted, 1000 listed), slowest of %d | %s (%d counted) | — |\n", o.reps, ms(day), dayN)
	if summary.errors+filtered.errors > 0 {
		fmt.Fprintf(stdout, "\n%d requests failed\n", summary.errors+filtered.errors)
	}
	return nil
}

// waitSourced waits until GHAS_FINDINGS copied every revision of the
// bucket.
func waitSourced(ctx context.Context, js jetstream.JetStream) error {
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		if ok, err := stream.FindingsCaughtUp(ctx, js); err == nil && ok {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("GHAS_FINDINGS did not catch up with the bucket in 10 min")
}

func streamBytes(ctx context.Context, js jetstream.JetStream, name string) uint64 {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return 0
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0
	}
	return info.State.Bytes
}

// timeChanges requests url reps times and returns the slowest time (to
// the answer's last byte) and the total it reports ("total") or, with
// listed, the number of changes it lists.
func timeChanges(u string, reps int, listed bool) (time.Duration, int) {
	client := &http.Client{Timeout: time.Minute}
	var worst time.Duration
	total := 0
	for range reps {
		start := time.Now()
		resp, err := client.Get(u)
		if err != nil {
			return -1, 0
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if el := time.Since(start); el > worst {
			worst = el
		}
		if err != nil || resp.StatusCode != http.StatusOK {
			return -1, 0
		}
		if listed {
			total = bytes.Count(body, []byte(`{"kind":`))
			continue
		}
		var ans struct {
			Total int `json:"total"`
		}
		if err := json.Unmarshal(body, &ans); err != nil {
			return -1, 0
		}
		total = ans.Total
	}
	return worst, total
}

func mib(b any) string {
	switch v := b.(type) {
	case int64:
		return fmt.Sprintf("%d MiB", v>>20)
	case uint64:
		return fmt.Sprintf("%d MiB", v>>20)
	}
	return "?"
}

func ms(d time.Duration) string {
	if d < 0 {
		return "failed"
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
