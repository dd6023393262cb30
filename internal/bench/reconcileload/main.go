// Command reconcileload measures the reconciler's full pull on
// the fake GitHub: an organisation of -repos repositories holding -alerts
// alerts across the three kinds (40 % code scanning, 40 % Dependabot,
// 20 % secret scanning), every request delayed by -latency. For each
// strategy — auto (organisation endpoints) and per-repo (one listing per
// repository and kind, what a naive full pull does) — on a fresh
// in-process JetStream it runs the real cmd/reconciler binary with
// RECONCILE_MODE=full -once twice: cold (every alert is new), then, after
// a processor has turned the first run's events into ghas_findings,
// unchanged (conditional requests answered 304). It reports requests,
// rate limit spent, wall time and the reconciler process's peak RSS
// (VmHWM sampled every 10 ms), against the lower bound of the work in
// scope: 2 installation calls (list, token) + ⌈repositories/100⌉
// (repository listing) + ⌈repositories/100⌉ (the organisation's custom
// property values) + per kind in scope the cheaper of the organisation
// listing (⌈alerts of the kind/100⌉) and the listings of the repositories
// in scope (one page per 100 of each one's alerts, at least one). Without
// filters that is Σ⌈alerts/100⌉ per kind + 2·⌈repositories/100⌉ + 2.
//
// -properties gives every repository custom property values (owner,
// business_unit, a multi-select regions); -env KEY=VALUE (repeatable)
// passes a setting to the reconciler and the processor, e.g. the scope
// filters EXCLUDE_REPOS=big-org/repo-1* (half of the default 2,000
// repositories) and INCLUDE_TYPES=sast.
//
// Run from the module root: go run ./internal/bench/reconcileload
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/config"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/proc"
	"github.com/ghas-relay/ghas-relay/internal/processor"
	"github.com/ghas-relay/ghas-relay/internal/reconcile"
	"github.com/ghas-relay/ghas-relay/internal/scope"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/transform"
	"github.com/ghas-relay/ghas-relay/internal/transform/transformtest"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "reconcileload:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("reconcileload", flag.ContinueOnError)
	repos := fs.Int("repos", 2000, "repositories in the organisation")
	alerts := fs.Int("alerts", 100000, "alerts across the three kinds")
	latency := fs.Duration("latency", 20*time.Millisecond, "delay of every fake GitHub request")
	strategies := fs.String("strategies", "auto,per-repo", "comma-separated strategies to measure")
	fill := fs.Bool("fill", true, "run a processor between the runs, so the second run compares with stored findings")
	props := fs.Bool("properties", false, "give every repository custom property values")
	var extra []string
	fs.Func("env", "KEY=VALUE setting passed to the reconciler and the processor (repeatable), e.g. EXCLUDE_REPOS=big-org/repo-1*", func(v string) error {
		if !strings.Contains(v, "=") {
			return fmt.Errorf("%q is not KEY=VALUE", v)
		}
		extra = append(extra, v)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	filter, err := scopeOf(extra)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "reconcileload-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "reconciler")
	if err := proc.Build(context.Background(), ".", dir, nil, "./cmd/reconciler"); err != nil {
		return err
	}

	// The per-repo strategy needs more than GitHub's 5,000 requests an
	// hour; the budget is raised so it does not wait for a reset.
	gh, err := ghtest.Start(ghtest.Options{Latency: *latency, RateLimit: 1_000_000})
	if err != nil {
		return err
	}
	defer gh.Close()
	org := gh.AddInstallation("big-org", "Organization")
	perKind := map[ghtest.Kind]int{ghtest.CodeScanning: *alerts * 2 / 5, ghtest.Dependabot: *alerts * 2 / 5}
	perKind[ghtest.SecretScanning] = *alerts - perKind[ghtest.CodeScanning] - perKind[ghtest.Dependabot]
	inScope := map[ghtest.Kind]*kindCost{}
	for k, n := range perKind {
		inScope[k] = &kindCost{org: ceil(n)}
	}
	for i := range *repos {
		name := fmt.Sprintf("repo-%04d", i)
		r := gh.AddRepository(org.ID, name, true)
		if *props {
			gh.SetRepositoryFacts(r.ID, ghtest.RepositoryFacts{Properties: map[string]any{
				"owner": fmt.Sprintf("team-%d", i%20), "business_unit": fmt.Sprintf("unit-%d", i%5), "regions": []string{"eu", "us"}}})
		}
		for k, n := range perKind {
			c := n / *repos + b2i(i < n%*repos)
			if c > 0 {
				gh.AddAlerts(r.ID, k, c)
			}
			if filter.Name("big-org/" + name) {
				inScope[k].repos += max(1, ceil(c))
				inScope[k].alerts += c
			}
		}
	}
	bound, alertBound := 2*ceil(*repos)+2, 2*ceil(*repos)+2
	var kinds []string
	for _, k := range ghtest.Kinds() {
		c := inScope[k]
		if c == nil || !filter.Type(transform.DatasetOf(eventOfKind(k))) {
			continue
		}
		kinds = append(kinds, string(k))
		bound += min(c.org, c.repos)
		alertBound += ceil(c.alerts)
	}
	fmt.Fprintf(out, "world: 1 organisation, %d repositories, %d alerts (code scanning %d, Dependabot %d, secret scanning %d), %v latency per request, custom properties %v\n",
		*repos, *alerts, perKind[ghtest.CodeScanning], perKind[ghtest.Dependabot], perKind[ghtest.SecretScanning], *latency, *props)
	if len(extra) > 0 {
		fmt.Fprintf(out, "settings: %s (kinds in scope: %s)\n", strings.Join(extra, " "), strings.Join(kinds, ", "))
	}
	fmt.Fprintf(out, "lower bound of the work in scope: %d requests (the alerts in scope alone, as if GitHub could list only them: %d)\n\n", bound, alertBound)
	fmt.Fprintln(out, "| strategy | run | requests | 304s | rate limit spent | vs lower bound | vs first run | property requests (304) | wall s | peak RSS MiB | published | drift new/changed/removed | processor fill s |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, strategy := range strings.Split(*strategies, ",") {
		if err := measure(out, dir, bin, gh, strategy, bound, *fill, extra, filter); err != nil {
			return fmt.Errorf("%s: %w", strategy, err)
		}
	}
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func ceil(n int) int { return (n + 99) / 100 }

// kindCost is what listing one alert kind costs: the organisation listing
// (pages), the listings of the repositories in scope (pages), and the
// alerts in scope.
type kindCost struct {
	org, repos, alerts int
}

func eventOfKind(k ghtest.Kind) string {
	switch k {
	case ghtest.CodeScanning:
		return transform.EventCodeScanning
	case ghtest.Dependabot:
		return transform.EventDependabot
	}
	return transform.EventSecretScanning
}

// scopeOf is the scope filter of the -env settings (the processor that
// fills ghas_findings must decide like the reconciler).
func scopeOf(extra []string) (*scope.Filter, error) {
	m := map[string]string{}
	for _, kv := range extra {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	s := config.New("reconcileload", func(k string) string { return m[k] }, io.Discard)
	build := scope.Flags(s)
	if err := s.Parse(nil); err != nil {
		return nil, err
	}
	return build()
}

// measure runs the two full pulls of one strategy on a fresh JetStream.
func measure(out io.Writer, dir, bin string, gh *ghtest.Server, strategy string, bound int, fill bool, extra []string, filter *scope.Filter) error {
	store, err := os.MkdirTemp(dir, "js-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(store)
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: store, NoLog: true, NoSigs: true,
		JetStreamMaxStore: 64 << 30, MaxPayload: 32 << 20})
	if err != nil {
		return err
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		return errors.New("nats server not ready")
	}
	defer ns.Shutdown()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := stream.Ensure(ctx, js, stream.Layout{Replicas: 1}); err != nil {
		return err
	}
	state, err := js.KeyValue(ctx, stream.StateBucket)
	if err != nil {
		return err
	}

	var first int
	for i := 1; i <= 2; i++ {
		gh.ResetStats()
		start := time.Now()
		var stderr bytes.Buffer
		p, err := proc.Start(ctx, proc.Spec{Name: "reconciler", Path: bin, Args: []string{"-once"}, Output: &stderr, Env: append([]string{
			"NATS_URL=" + ns.ClientURL(),
			"ADMIN_ADDR=127.0.0.1:0",
			"GITHUB_APP_ID=1",
			"GITHUB_APP_PRIVATE_KEY=" + string(gh.PrivateKeyPEM()),
			"GITHUB_API_URL=" + gh.URL(),
			"RECONCILE_MODE=full",
			"RECONCILE_STRATEGY=" + strategy,
			"LOG_LEVEL=warn",
		}, extra...)})
		if err != nil {
			return fmt.Errorf("run %d: %w", i, err)
		}
		// VmHWM, sampled while the process runs. (getrusage's ru_maxrss
		// of a child counts this process's memory at the moment of exec.)
		var peak int64 // bytes
		stopSampling := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			for {
				if v, err := p.Memory("VmHWM"); err == nil {
					peak = max(peak, v)
				}
				select {
				case <-stopSampling:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
		}()
		<-p.Done()
		close(stopSampling)
		<-sampled
		if code := p.ExitCode(); code != 0 {
			return fmt.Errorf("run %d: exit code %d\n%s", i, code, tail(stderr.String()))
		}
		wall := time.Since(start)
		rss := float64(peak) / (1 << 20)
		st := gh.Stats()
		spent := st.Requests - st.NotModified
		if i == 1 {
			first = spent
		}
		rep, err := reconcile.LatestReport(ctx, state, reconcile.ModeFull)
		if err != nil {
			return err
		}
		fillS := "—"
		if i == 1 && fill {
			d, err := drain(ctx, js, filter)
			if err != nil {
				return err
			}
			fillS = fmt.Sprintf("%.1f", d.Seconds())
		}
		const propsEP = "GET /orgs/{org}/properties/values"
		fmt.Fprintf(out, "| %s | %s | %d | %d | %d | %.3f × | %.1f %% | %d (%d) | %.1f | %.0f | %d | %d/%d/%d | %s |\n",
			strategy, []string{"", "cold", "unchanged"}[i], st.Requests, st.NotModified, spent,
			float64(st.Requests)/float64(bound), 100*float64(spent)/float64(first), st.ByEndpoint[propsEP], st.NotModifiedByEndpoint[propsEP], wall.Seconds(), rss,
			rep.Published, rep.Drift.New, rep.Drift.Changed, rep.Drift.Removed, fillS)
	}
	return nil
}

// drain runs a processor until it consumed every event, and returns how
// long that took.
func drain(ctx context.Context, js jetstream.JetStream, filter *scope.Filter) (time.Duration, error) {
	findings, err := js.KeyValue(ctx, stream.FindingsBucket)
	if err != nil {
		return 0, err
	}
	p := processor.New(slog.New(slog.NewTextHandler(io.Discard, nil)), js, js, findings, transformtest.Defaults(), nil,
		processor.NewMetrics(metrics.NewRegistry()), processor.Config{Workers: 32, Scope: filter})
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- p.Run(pctx) }()
	defer func() { cancel(); <-done }()
	for {
		c, err := js.Consumer(ctx, stream.EventsStream, processor.ConsumerName)
		if err == nil {
			if info, err := c.Info(ctx); err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
				return time.Since(start), nil
			}
		}
		select {
		case err := <-done:
			return 0, fmt.Errorf("processor stopped: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func tail(s string) string {
	if len(s) > 4000 {
		return s[len(s)-4000:]
	}
	return s
}
