package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/proc"
	"github.com/ghas-relay/ghas-relay/internal/sink"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// Flags of TestRandomFaults, given after -args:
//
//	go test ./internal/e2e -run TestRandomFaults -count=1 -args -seed N -duration 60s
var (
	flagSeed     = flag.Int64("seed", 0, "TestRandomFaults: the (first) seed; 0 draws one from the clock")
	flagSeeds    = flag.Int("seeds", 1, "TestRandomFaults: how many seeds to run, from -seed on")
	flagDuration = flag.Duration("duration", 30*time.Second, "TestRandomFaults: how long faults strike, per seed")
)

// TestRandomFaults runs the whole system as processes — a 3-node
// JetStream cluster at R3, two processors forwarding to an HTTP sink, the
// receiver, two reconciler daemons with short intervals sharing the lease
// — against a fake GitHub whose alerts change at random while webhooks
// are sent, lost, duplicated, delayed and reordered, and strikes with a
// seeded random plan of faults: SIGKILL and restart of any process,
// SIGSTOP/SIGCONT of a NATS node, a processor or a reconciler, sink 5xx
// bursts and outages, GitHub 5xx bursts, poison events. Then it heals,
// runs a full pull and checks the end state (checkEndState) and that every
// process stops on SIGTERM and none is left behind.
//
// With no -seed, a run draws its seed from the clock, so each explores a
// new plan; its seed, the plan and the command that replays it are
// printed first.
func TestRandomFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-process random-fault test")
	}
	seed := *flagSeed
	if seed == 0 {
		seed = time.Now().UnixNano()%1_000_000 + 1
	}
	for i := range *flagSeeds {
		s := seed + int64(i)
		t.Run(fmt.Sprintf("seed=%d", s), func(t *testing.T) { runRandomFaults(t, s, *flagDuration) })
	}
}

// system is the processes of one run and the test's own view of them.
type system struct {
	t        *testing.T
	dir      string
	cluster  *natsCluster
	js       jetstream.JetStream
	gh       *ghtest.Server
	world    []ghtest.Repository
	sink     *sinkRecorder
	procs    map[string]*proc.Process
	admin    map[string]string // reconciler name → admin address
	webhook  string            // the receiver's webhook URL
	env      []string          // every binary's common settings
	app      []string          // the GitHub App settings
	pids     []int             // every process ever started
	v        *violations
	mu       sync.Mutex
	down     map[string]bool      // killed by the test, not yet started again
	resumed  map[string]time.Time // when a frozen process was last let go
	poisons  map[string]bool
	poisonN  int
	applied  map[string]int // fault kind → count
	takeover int            // lease holder changes seen
}

func runRandomFaults(t *testing.T, seed int64, d time.Duration) {
	plan := makePlan(seed, d, testTopology)
	t.Logf("seed %d: %d faults in %s; replay with\n  go test ./internal/e2e -run TestRandomFaults -count=1 -args -seed %d -duration %s\nplan:\n%s",
		seed, len(plan), d, seed, d, planText(plan))
	began := time.Now()
	var phases []string
	phase := func(name string) { phases = append(phases, fmt.Sprintf("%s %.0fs", name, time.Since(began).Seconds())) }
	s := startSystem(t, seed)
	ctx := t.Context()
	phase("started")

	// Faults, webhooks and the lease watch run for d.
	chaos, stopChaos := context.WithTimeout(ctx, d)
	defer stopChaos()
	tr := newTraffic(seed, s.gh, s.repos(), s.webhook)
	it := newImportTraffic(seed, s.repos(), strings.TrimSuffix(s.webhook, "/webhook"))
	importsDone := make(chan struct{})
	go func() {
		defer close(importsDone)
		// The import posted when the faults end is posted until the
		// receiver (started again by then) accepts it.
		pctx, cancel := context.WithTimeout(ctx, d+3*time.Minute)
		defer cancel()
		it.run(chaos, pctx)
	}()
	dt := newDecisionTraffic(seed, s.gh, s.repos(), strings.TrimSuffix(s.webhook, "/webhook"))
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); tr.run(chaos) }()
	go func() { defer wg.Done(); dt.run(chaos) }()
	go func() { defer wg.Done(); s.strike(chaos, plan) }()
	go func() { defer wg.Done(); s.watchLease(chaos) }()
	wg.Wait()
	phase("faults over")

	// Heal: every fault reverted (strike returns only then), every
	// process running, the cluster whole, the events processed.
	s.heal()
	select {
	case <-importsDone:
	case <-time.After(3 * time.Minute):
		t.Fatal("the last import was not accepted within 3 min of healing")
	}
	phase("healed")
	s.waitFor(3*time.Minute, "the processors to drain", func() bool { return drained(s.js) })
	// Decisions are written back to GitHub before the last full pull, so
	// that it reads GitHub's final word.
	s.waitFor(3*time.Minute, "every decision to be settled", dt.settled)
	phase("drained")

	// The daemons stop on SIGTERM (giving the lease up), and a full pull
	// runs once.
	for _, name := range testTopology.reconcilers {
		if code := s.procs[name].Stop(30 * time.Second); code != 0 {
			s.v.add("%s: exit code %d after SIGTERM; log tail:\n%s", name, code, tail(s.procs[name].Logs(), 3000))
		}
	}
	full := startProc(t, "reconciler-full", "reconciler", append(s.reconcilerEnv(), "ADMIN_ADDR=127.0.0.1:0", "RECONCILE_MODE=full"), "-once")
	s.pids = append(s.pids, full.Pid())
	select {
	case <-full.Done():
		if code := full.ExitCode(); code != 0 {
			s.v.add("reconciler -once (full pull after healing): exit code %d; log tail:\n%s", code, tail(full.Logs(), 4000))
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("the full pull after healing did not end in 3 min; log tail:\n%s", tail(full.Logs(), 4000))
	}
	phase("full pull")
	s.waitFor(3*time.Minute, "the full pull's corrections to be processed", func() bool { return drained(s.js) })
	s.waitFor(3*time.Minute, "the sink to catch up", s.sinkCaughtUp)
	phase("sink caught up")

	outcomes := dt.check(s.v)
	checkEndState(t, ctx, s.js, endState{gh: s.gh, repos: s.repos(), removed: tr.removed, accepted: tr.accepted, poisons: s.poisons, sink: s.sink, imports: it.expected()}, s.v)
	phase("checked")
	s.stopAll()
	phase("stopped")

	accepted, refused, dups, _ := s.sink.stats()
	t.Logf("seed %d: faults applied %v, lease holder changes %d; traffic: %s; %s; sink: %d accepted (%d again), %d refused; time: %s",
		seed, s.applied, s.takeover, tr.summary(), it.summary()+"; "+dt.summary()+fmt.Sprint(" ", outcomes), accepted, dups, refused, strings.Join(phases, ", "))
	if vs := s.v.all(); len(vs) > 0 {
		for _, x := range vs {
			t.Error(x)
		}
		t.Errorf("seed %d: %d violations; replay: go test ./internal/e2e -run TestRandomFaults -count=1 -args -seed %d -duration %s\nplan:\n%s",
			seed, len(vs), seed, d, planText(plan))
	}
}

// startSystem starts the cluster, the fake GitHub and its world, the sink
// and every binary, and waits until each is ready.
func startSystem(t *testing.T, seed int64) *system {
	s := &system{t: t, dir: t.TempDir(), procs: map[string]*proc.Process{}, admin: map[string]string{}, v: &violations{},
		down: map[string]bool{}, resumed: map[string]time.Time{}, poisons: map[string]bool{}, applied: map[string]int{}}
	s.cluster = startNATSCluster(t, s.dir, len(testTopology.nats))
	for i, name := range testTopology.nats {
		s.procs[name] = s.cluster.nodes[i]
	}
	_, s.js = connect(t, s.cluster.URLs())

	s.gh = ghtest.New(t, ghtest.Options{})
	org := s.gh.AddInstallation("octo-org", "Organization")
	user := s.gh.AddInstallation("octocat", "User")
	s.world = []ghtest.Repository{
		s.gh.AddRepository(org.ID, "octo-repo", false),
		s.gh.AddRepository(org.ID, "payments", true),
		s.gh.AddRepository(user.ID, "Hello-World", false),
	}
	for i, r := range s.world {
		for _, kind := range ghtest.Kinds() {
			s.gh.AddAlerts(r.ID, kind, 4+int(seed+int64(i))%4)
		}
	}
	s.sink = newSinkRecorder()
	srv := httptest.NewServer(s.sink)
	t.Cleanup(srv.Close)

	s.app = appEnv(t, s.gh)
	s.env = []string{"NATS_URL=" + s.cluster.URLs(), "STREAM_REPLICAS=3", "LOG_LEVEL=info", "LOG_FORMAT=text"}
	start := func(name, bin string, n int, env func(a []string) []string) []string {
		p, addrs := serve(t, name, bin, n, env)
		s.procs[name] = p
		s.pids = append(s.pids, p.Pid())
		return addrs
	}
	for _, name := range testTopology.processors {
		start(name, "processor", 1, func(a []string) []string {
			return append(append(append([]string(nil), s.env...), s.app...), "ADMIN_ADDR="+a[0], "SINK_URL="+srv.URL+"/findings", "WRITE_BACK=true")
		})
	}
	addrs := start("receiver", "receiver", 2, func(a []string) []string {
		return append(append([]string(nil), s.env...), "LISTEN_ADDR="+a[0], "ADMIN_ADDR="+a[1], "GITHUB_WEBHOOK_SECRET="+secret,
			"IMPORT_TOKENS="+importToken, "DECISION_TOKENS="+decisionToken)
	})
	s.webhook = "http://" + addrs[0] + "/webhook"
	for _, name := range testTopology.reconcilers {
		addrs := start(name, "reconciler", 1, func(a []string) []string {
			return append(s.reconcilerEnv(), "ADMIN_ADDR="+a[0], "RECONCILE_MODE=daemon")
		})
		s.admin[name] = addrs[0]
	}
	for _, p := range s.cluster.nodes {
		s.pids = append(s.pids, p.Pid())
	}
	return s
}

// reconcilerEnv is a reconciler's settings: short intervals, the daily
// full pull twelve hours away (the daemon pulls in full at its first
// start, and the test runs the last one itself).
func (s *system) reconcilerEnv() []string {
	fullAt := time.Now().UTC().Add(12 * time.Hour).Format("15:04")
	return append(append(append([]string(nil), s.env...), s.app...),
		"RECONCILE_DELTA_EVERY=4s", "REDELIVER_EVERY=3s", "RECONCILE_FULL_AT="+fullAt,
		"RECONCILE_LEASE_TTL="+testTopology.leaseTTL.String(), "GITHUB_RETRY_MAX_ELAPSED=20s")
}

// repos is the fake GitHub's repositories.
func (s *system) repos() []ghtest.Repository { return s.world }

// strike applies the plan in time, reverting each fault after its For,
// and returns once every fault was applied and reverted. A process that
// exits without being killed is a violation; it is started again.
//
// A fault waits until the one before it on its target (on any NATS node,
// for a node) is reverted in full: a killed process is ready again. The
// plan spaces them by their For alone, and a restart takes seconds, so
// without the wait a second kill met a process still starting, and its
// restart failed as if the process could not start (seed 229702).
func (s *system) strike(ctx context.Context, plan []fault) {
	start := time.Now()
	var reverts sync.WaitGroup
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	for name := range s.procs {
		go s.watchExit(watchCtx, name)
	}
	turns := map[string]chan struct{}{} // target → its turn, taken by one fault at a time
	for _, f := range plan {
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(start.Add(f.At))):
		}
		key := f.Target
		if slices.Contains(testTopology.nats, key) {
			key = "nats"
		}
		if turns[key] == nil {
			turns[key] = make(chan struct{}, 1)
		}
		turn := turns[key]
		reverts.Add(1)
		go func() {
			defer reverts.Done()
			turn <- struct{}{}
			defer func() { <-turn }()
			s.mu.Lock()
			s.applied[f.Kind]++
			s.mu.Unlock()
			revert := s.apply(f)
			time.Sleep(f.For)
			revert()
		}()
	}
	reverts.Wait()
}

// apply strikes with f and returns what reverts it.
func (s *system) apply(f fault) (revert func()) {
	switch f.Kind {
	case faultKill:
		p := s.procs[f.Target]
		s.mu.Lock()
		s.down[f.Target] = true
		s.mu.Unlock()
		p.Kill()
		return func() { s.restart(f.Target) }
	case faultPause:
		p := s.procs[f.Target]
		_ = syscall.Kill(p.Pid(), syscall.SIGSTOP)
		return func() {
			// Marked before the SIGCONT too: the lease watch may read the
			// process's gauge (a request sent during the freeze, answered
			// at once after it) before this goroutine runs again.
			s.mu.Lock()
			s.resumed[f.Target] = time.Now()
			s.mu.Unlock()
			_ = syscall.Kill(p.Pid(), syscall.SIGCONT)
			s.mu.Lock()
			s.resumed[f.Target] = time.Now()
			s.mu.Unlock()
		}
	case faultSink5xx:
		s.sink.setMode(sink5xx)
		return func() { s.sink.setMode(sinkUp) }
	case faultSinkDown:
		s.sink.setMode(sinkDown)
		return func() { s.sink.setMode(sinkUp) }
	case faultGitHub5xx:
		s.gh.Inject(ghtest.ServerError("", 0, 0))
		return func() { s.gh.ClearFaults() }
	case faultPoison:
		s.poison()
		return func() {}
	}
	panic("unknown fault " + f.Kind)
}

// restart starts a killed process again; a process that does not come
// back is a violation.
func (s *system) restart(name string) {
	p := s.procs[name]
	if err := p.Restart(context.Background()); err != nil {
		s.v.add("%s did not start again: %v", name, err)
		return
	}
	s.mu.Lock()
	s.down[name] = false
	s.pids = append(s.pids, p.Pid())
	s.mu.Unlock()
}

// watchExit reports a process that exits while the test did not kill it,
// and starts it again.
func (s *system) watchExit(ctx context.Context, name string) {
	p := s.procs[name]
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.Done():
		}
		s.mu.Lock()
		down := s.down[name]
		s.mu.Unlock()
		if !down {
			s.v.add("%s exited by itself (exit code %d); log tail:\n%s", name, p.ExitCode(), tail(p.Logs(), 3000))
			s.mu.Lock()
			s.down[name] = true
			s.mu.Unlock()
			s.restart(name)
			continue
		}
		// Killed by the test: wait for its new run.
		for {
			s.mu.Lock()
			down = s.down[name]
			s.mu.Unlock()
			if !down || ctx.Err() != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// poison stores an event no processor can read in GHAS_EVENTS, as a
// broken producer would; the processors must dead-letter it, and only it.
func (s *system) poison() {
	s.mu.Lock()
	s.poisonN++
	id := fmt.Sprintf("poison-%d", s.poisonN)
	s.mu.Unlock()
	msg := &nats.Msg{Subject: stream.WebhookSubject("code_scanning_alert"), Header: nats.Header{}, Data: []byte(`{"action": "created", "alert": {"number": `)}
	msg.Header.Set(stream.HeaderMsgID, id)
	msg.Header.Set(stream.HeaderDelivery, id)
	msg.Header.Set(stream.HeaderEvent, "code_scanning_alert")
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := s.js.PublishMsg(ctx, msg)
		cancel()
		if err == nil {
			s.mu.Lock()
			s.poisons[id] = true
			s.mu.Unlock()
			return
		}
	}
	// Not stored (the cluster was busy for 20 s): nothing to find in the
	// DLQ. A publish that timed out may still have been stored, so the
	// id counts as poison either way.
	s.mu.Lock()
	s.poisons[id] = true
	s.mu.Unlock()
}

// watchLease samples which reconciler holds the lease. Two at once is a
// violation, except for a reconciler just let go after a freeze: it may
// finish the step it was in before its deadline timer runs (the lease's
// documented limit), for at most a third of the TTL.
func (s *system) watchLease(ctx context.Context) {
	last := ""
	for ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
		var holders []string
		for _, name := range testTopology.reconcilers {
			if metric(s.admin[name], "ghas_reconciler_lease_held") == 1 {
				holders = append(holders, name)
			}
		}
		if len(holders) == 1 && holders[0] != last {
			if last != "" {
				s.mu.Lock()
				s.takeover++
				s.mu.Unlock()
			}
			last = holders[0]
		}
		if len(holders) < 2 {
			continue
		}
		s.mu.Lock()
		excused := false
		ago := map[string]time.Duration{}
		for _, h := range holders {
			ago[h] = time.Since(s.resumed[h])
			if ago[h] < testTopology.leaseTTL/3 {
				excused = true
			}
		}
		s.mu.Unlock()
		if !excused {
			var logs strings.Builder
			for _, h := range holders {
				fmt.Fprintf(&logs, "--- %s (last let go %s ago)\n%s", h, ago[h].Round(time.Millisecond), linesWith(s.procs[h].Logs(), "lease", 12))
			}
			s.v.add("two reconcilers hold the lease at once: %s\n%s", strings.Join(holders, ", "), logs.String())
		}
	}
}

// heal makes sure every process runs, the sink and GitHub answer, and the
// cluster's streams have their leaders and current replicas.
func (s *system) heal() {
	s.sink.setMode(sinkUp)
	s.gh.ClearFaults()
	for name, p := range s.procs {
		_ = syscall.Kill(p.Pid(), syscall.SIGCONT)
		select {
		case <-p.Done():
			s.v.add("%s exited by itself (exit code %d); log tail:\n%s", name, p.ExitCode(), tail(p.Logs(), 3000))
			s.restart(name)
		default:
		}
	}
	s.waitFor(2*time.Minute, "the NATS cluster to be whole", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return healthy(ctx, s.js)
	})
}

// sinkCaughtUp reports whether the sink's durable consumer has nothing
// pending or unacknowledged.
func (s *system) sinkCaughtUp() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := s.js.Consumer(ctx, stream.FindingsStream, sink.DefaultDurable)
	if err != nil {
		return false
	}
	info, err := c.Info(ctx)
	return err == nil && info.NumPending == 0 && info.NumAckPending == 0
}

// waitFor waits for cond, and fails the test with the processes' log
// tails when it does not hold in time.
func (s *system) waitFor(within time.Duration, what string, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			var b strings.Builder
			for _, name := range testTopology.processes() {
				fmt.Fprintf(&b, "--- %s\n%s\n", name, tail(s.procs[name].Logs(), 1500))
			}
			s.t.Fatalf("timed out after %s waiting for %s; logs:\n%s", within, what, b.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stopAll stops every process with SIGTERM: each must exit 0 within 30 s
// (NATS nodes: exit at all), and no process the test started may be left.
func (s *system) stopAll() {
	names := slices.Concat(testTopology.receivers, testTopology.processors, testTopology.nats)
	for _, name := range names {
		p := s.procs[name]
		code := p.Stop(30 * time.Second)
		if strings.HasPrefix(name, "nats-") {
			continue
		}
		if code != 0 {
			s.v.add("%s: exit code %d after SIGTERM; log tail:\n%s", name, code, tail(p.Logs(), 3000))
		}
	}
	for _, pid := range s.pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			s.v.add("process %d is still there after the test stopped everything (%v)", pid, err)
		}
	}
}

// linesWith is the last n lines of log that contain word.
func linesWith(log, word string, n int) string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, word) {
			out = append(out, line)
		}
	}
	return strings.Join(out[max(0, len(out)-n):], "\n") + "\n"
}
