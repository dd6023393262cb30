// Command e2elatency measures the end-to-end latency of ghas-relay: from
// a webhook POST to the receiver until the finding it
// produces is on stream GHAS_FINDINGS. It builds nats-server, cmd/receiver
// and cmd/processor, runs each as its own process on loopback (JetStream
// with file storage, processor with ENRICH=never and no sink), and drives an
// open loop of signed code scanning deliveries at each fixed rate. Every
// delivery is a distinct alert (its own number, one repository, increasing
// updated_at), so each yields exactly one finding message.
//
// For each delivery it records, from the request's scheduled send time (so a
// stall shows in the tail; no coordinated omission):
//
//   - the HTTP latency until the receiver's 202;
//   - the end-to-end latency until an ordered JetStream consumer on
//     GHAS_FINDINGS (ghas.findings.>) delivers the finding, i.e. once the
//     finding is stored in the stream (the headline number);
//   - the same until a core NATS subscription on ghas.findings.> sees it
//     (the publish itself, before the stream's own delivery path);
//   - the stages in between, from the server's stream timestamps (a
//     headers-only ordered consumer on GHAS_EVENTS gives each event's store
//     time): generator, ingest, processor, delivery.
//
// Each rate runs after a warm-up, -reps times; the medians of the
// percentiles are reported in markdown tables together with the CPU time
// each process spent per delivery, the CPU the rest of the machine used
// (latency is also split by it, per second) and the load average.
//
// Run from the module root: go run ./internal/bench/e2elatency
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/webhook/webhooktest"
)

const (
	secret = "bench-secret"
	repoID = 337911632 // repository.id of the sample; fixed for every delivery
)

type options struct {
	rates   []int
	reps    int
	dur     time.Duration
	warm    time.Duration
	settle  time.Duration
	workers int
	// timeline prints each second's end-to-end p50/p99/max and CPU use
	timeline bool
	// extra environment (KEY=VALUE) of each process, e.g. GOGC=400
	natsEnv, recvEnv, procEnv []string
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "e2elatency:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("e2elatency", flag.ContinueOnError)
	rates := fs.String("rates", "200,1000", "open-loop rates, deliveries per second, comma-separated")
	reps := fs.Int("reps", 3, "repetitions of each rate (medians reported)")
	dur := fs.Duration("d", 30*time.Second, "duration of each measured run")
	warm := fs.Duration("warm", 5*time.Second, "warm-up at each rate before its measured runs (not reported)")
	settle := fs.Duration("settle", 30*time.Second, "how long to wait after the last send for the remaining findings")
	workers := fs.Int("workers", 0, "PROCESSOR_WORKERS for the processor; 0 keeps its default")
	timeline := fs.Bool("timeline", false, "print each second's end-to-end p50/p99/max and CPU use of every run to stderr")
	natsEnv := fs.String("nats-env", "", "extra environment of nats-server, comma-separated KEY=VALUE (e.g. GOGC=400)")
	recvEnv := fs.String("receiver-env", "", "extra environment of the receiver, comma-separated KEY=VALUE")
	procEnv := fs.String("processor-env", "", "extra environment of the processor, comma-separated KEY=VALUE")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o := options{reps: *reps, dur: *dur, warm: *warm, settle: *settle, workers: *workers, timeline: *timeline}
	for _, x := range []struct {
		flag string
		dst  *[]string
	}{{*natsEnv, &o.natsEnv}, {*recvEnv, &o.recvEnv}, {*procEnv, &o.procEnv}} {
		for _, kv := range strings.Split(x.flag, ",") {
			if kv = strings.TrimSpace(kv); kv == "" {
				continue
			}
			if !strings.Contains(kv, "=") {
				return fmt.Errorf("bad environment entry %q: want KEY=VALUE", kv)
			}
			*x.dst = append(*x.dst, kv)
		}
	}
	for _, r := range strings.Split(*rates, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || n < 1 {
			return fmt.Errorf("bad rate %q", r)
		}
		o.rates = append(o.rates, n)
	}
	if o.reps < 1 || o.dur <= 0 {
		return errors.New("-reps and -d must be positive")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e, err := start(ctx, stderr, o)
	if err != nil {
		return err
	}
	defer e.stop()
	return measure(ctx, e, o, stdout, stderr)
}

// env is the system under test: nats-server, receiver and processor
// processes, and this program's own NATS connection.
type env struct {
	dir                       string
	natsURL, webhook          string
	recvAdmin, procAdmin      string
	natsCmd, recvCmd, procCmd *exec.Cmd
	nc                        *nats.Conn
	js                        jetstream.JetStream
}

func (e *env) stop() {
	if e.nc != nil {
		e.nc.Close()
	}
	for _, c := range []*exec.Cmd{e.procCmd, e.recvCmd, e.natsCmd} {
		if c != nil && c.Process != nil {
			_ = c.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { _ = c.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = c.Process.Kill()
				<-done
			}
		}
	}
	_ = os.RemoveAll(e.dir)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitReady(ctx context.Context, name, addr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 30s", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func start(ctx context.Context, stderr io.Writer, o options) (*env, error) {
	dir, err := os.MkdirTemp("", "e2elatency-")
	if err != nil {
		return nil, err
	}
	e := &env{dir: dir}
	fail := func(err error) (*env, error) { e.stop(); return nil, err }
	for _, b := range [][2]string{
		{"nats-server", "github.com/nats-io/nats-server/v2"},
		{"receiver", "./cmd/receiver"},
		{"processor", "./cmd/processor"},
	} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, b[0]), b[1])
		cmd.Stdout, cmd.Stderr = stderr, stderr
		if err := cmd.Run(); err != nil {
			return fail(fmt.Errorf("build %s (run from the module root): %w", b[1], err))
		}
	}
	var addrs [4]string
	for i := range addrs {
		if addrs[i], err = freeAddr(); err != nil {
			return fail(err)
		}
	}
	natsAddr := addrs[0]
	e.webhook, e.recvAdmin, e.procAdmin = addrs[1], addrs[2], addrs[3]
	host, port, _ := net.SplitHostPort(natsAddr)
	conf := fmt.Sprintf("listen: %s:%s\nmax_payload: 33554432\njetstream { store_dir: %q }\n", host, port, filepath.Join(dir, "js"))
	if err := os.WriteFile(filepath.Join(dir, "nats.conf"), []byte(conf), 0o600); err != nil {
		return fail(err)
	}
	e.natsURL = "nats://" + natsAddr
	e.natsCmd = exec.Command(filepath.Join(dir, "nats-server"), "-c", filepath.Join(dir, "nats.conf"))
	e.natsCmd.Env = append(os.Environ(), o.natsEnv...)
	if err := e.natsCmd.Start(); err != nil {
		return fail(fmt.Errorf("start nats-server: %w", err))
	}
	// Start the binaries once the server listens, so their start-up is quiet.
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", natsAddr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return fail(errors.New("nats-server not listening after 10s"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.recvCmd = exec.Command(filepath.Join(dir, "receiver"))
	e.recvCmd.Env = append(os.Environ(),
		"NATS_URL="+e.natsURL, "LISTEN_ADDR="+e.webhook, "ADMIN_ADDR="+e.recvAdmin,
		"GITHUB_WEBHOOK_SECRET="+secret, "LOG_LEVEL=warn")
	e.recvCmd.Env = append(e.recvCmd.Env, o.recvEnv...)
	e.recvCmd.Stderr = stderr
	if err := e.recvCmd.Start(); err != nil {
		return fail(fmt.Errorf("start receiver: %w", err))
	}
	e.procCmd = exec.Command(filepath.Join(dir, "processor"))
	e.procCmd.Env = append(os.Environ(),
		"NATS_URL="+e.natsURL, "ADMIN_ADDR="+e.procAdmin, "LOG_LEVEL=warn", "ENRICH=never", "SINK_URL=")
	if o.workers > 0 {
		e.procCmd.Env = append(e.procCmd.Env, "PROCESSOR_WORKERS="+strconv.Itoa(o.workers))
	}
	e.procCmd.Env = append(e.procCmd.Env, o.procEnv...)
	e.procCmd.Stderr = stderr
	if err := e.procCmd.Start(); err != nil {
		return fail(fmt.Errorf("start processor: %w", err))
	}
	if err := waitReady(ctx, "receiver", e.recvAdmin); err != nil {
		return fail(err)
	}
	if err := waitReady(ctx, "processor", e.procAdmin); err != nil {
		return fail(err)
	}
	e.nc, err = nats.Connect(e.natsURL, nats.Name("e2elatency"))
	if err != nil {
		return fail(err)
	}
	e.js, _ = jetstream.New(e.nc)
	return e, nil
}

// template is the sample created code scanning alert split around its
// alert number and updated_at, so a delivery is built by concatenation.
type template struct{ head, mid, tail []byte }

const (
	numMark     = 987654321987654
	updatedMark = "UPDATED-AT-MARK"
)

func loadTemplate() (template, error) {
	dir, err := webhooktest.Dir()
	if err != nil {
		return template{}, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "code_scanning_alert", "created.payload.json"))
	if err != nil {
		return template{}, err
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return template{}, err
	}
	alert, ok := doc["alert"].(map[string]any)
	if !ok {
		return template{}, errors.New("sample has no alert object")
	}
	repo, ok := doc["repository"].(map[string]any)
	if !ok {
		return template{}, errors.New("sample has no repository object")
	}
	alert["number"] = numMark
	alert["updated_at"] = updatedMark
	repo["id"] = repoID
	out, err := json.Marshal(doc)
	if err != nil {
		return template{}, err
	}
	n := []byte(strconv.Itoa(numMark))
	u := []byte(`"` + updatedMark + `"`)
	if bytes.Count(out, n) != 1 || bytes.Count(out, u) != 1 {
		return template{}, errors.New("markers not unique in the sample")
	}
	var t template
	i, j := bytes.Index(out, n), bytes.Index(out, u)
	if i > j {
		return template{}, errors.New("expected alert.number before alert.updated_at")
	}
	t.head, t.mid, t.tail = out[:i], out[i+len(n):j], out[j+len(u):]
	return t, nil
}

// body is the delivery of alert number num updated at t.
func (t template) body(num int64, at time.Time) []byte {
	b := make([]byte, 0, len(t.head)+len(t.mid)+len(t.tail)+48)
	b = append(b, t.head...)
	b = strconv.AppendInt(b, num, 10)
	b = append(b, t.mid...)
	b = append(b, '"')
	b = at.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	return append(b, t.tail...)
}

// probe is one measured run: the scheduled send time, 202 time and finding
// arrival times of each delivery, indexed by alert number - base.
type probe struct {
	base     int64
	due      []atomic.Int64 // unix ns
	sent     []atomic.Int64 // the request left the generator's goroutine
	accepted []atomic.Int64
	ordered  []atomic.Int64
	core     []atomic.Int64
	evStored []atomic.Int64 // the event's stream timestamp on GHAS_EVENTS
	fStored  []atomic.Int64 // the finding's stream timestamp on GHAS_FINDINGS
	dupes    atomic.Int64   // findings seen twice on the ordered consumer
	strays   atomic.Int64   // findings of no delivery of this run
	got      atomic.Int64   // distinct findings on the ordered consumer
	errs     atomic.Int64
	firstErr atomic.Value
}

func newProbe(base int64, n int) *probe {
	return &probe{base: base, due: make([]atomic.Int64, n), sent: make([]atomic.Int64, n), accepted: make([]atomic.Int64, n),
		ordered: make([]atomic.Int64, n), core: make([]atomic.Int64, n),
		evStored: make([]atomic.Int64, n), fStored: make([]atomic.Int64, n)}
}

// active is the probe findings are attributed to; nil between runs.
type active struct{ p atomic.Pointer[probe] }

// index finds the delivery of a finding key (<type>.<repo>.<number>) or a
// delivery GUID (e2e-<epoch>-<number>): both end in the alert number.
func (a *active) index(id string) (*probe, int, bool) {
	p := a.p.Load()
	if p == nil {
		return nil, 0, false
	}
	num, err := strconv.ParseInt(id[max(strings.LastIndexByte(id, '.'), strings.LastIndexByte(id, '-'))+1:], 10, 64)
	if err != nil || num < p.base || num >= p.base+int64(len(p.due)) {
		p.strays.Add(1)
		return p, 0, false
	}
	return p, int(num - p.base), true
}

func (a *active) onOrdered(m jetstream.Msg, now int64) {
	p, i, ok := a.index(m.Headers().Get(stream.HeaderFindingKey))
	if !ok {
		return
	}
	if p.ordered[i].CompareAndSwap(0, now) {
		p.got.Add(1)
		if md, err := m.Metadata(); err == nil {
			p.fStored[i].Store(md.Timestamp.UnixNano())
		}
	} else {
		p.dupes.Add(1)
	}
}

func (a *active) onEvent(m jetstream.Msg) {
	p := a.p.Load()
	if p == nil {
		return
	}
	d := m.Headers().Get(stream.HeaderDelivery)
	if !strings.HasPrefix(d, "e2e-") {
		return
	}
	if _, i, ok := a.index(d); ok {
		if md, err := m.Metadata(); err == nil {
			p.evStored[i].Store(md.Timestamp.UnixNano())
		}
	}
}

func (a *active) onCore(m *nats.Msg, now int64) {
	if p, i, ok := a.index(m.Header.Get(stream.HeaderFindingKey)); ok {
		p.core[i].CompareAndSwap(0, now)
	}
}

// subscribe attaches the ordered consumer on the findings, the core
// subscription, and a headers-only ordered consumer on GHAS_EVENTS that
// gives each event's store time.
func subscribe(ctx context.Context, e *env, a *active) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for _, f := range stops {
			f()
		}
	}
	cons, err := e.js.OrderedConsumer(ctx, stream.FindingsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{stream.FindingsPrefix + ">"},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("ordered consumer: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { a.onOrdered(m, time.Now().UnixNano()) })
	if err != nil {
		return nil, fmt.Errorf("consume: %w", err)
	}
	stops = append(stops, cc.Stop)
	evCons, err := e.js.OrderedConsumer(ctx, stream.EventsStream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverNewPolicy,
		HeadersOnly:   true,
	})
	if err != nil {
		stop()
		return nil, fmt.Errorf("ordered consumer: %w", err)
	}
	ec, err := evCons.Consume(a.onEvent)
	if err != nil {
		stop()
		return nil, fmt.Errorf("consume: %w", err)
	}
	stops = append(stops, ec.Stop)
	sub, err := e.nc.Subscribe(stream.FindingsPrefix+">", func(m *nats.Msg) {
		a.onCore(m, time.Now().UnixNano())
	})
	if err != nil {
		stop()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	stops = append(stops, func() { _ = sub.Unsubscribe() })
	return stop, nil
}

type sender struct {
	client *http.Client
	url    string
	tmpl   template
	epoch  time.Time
}

// send posts the delivery of alert number num and returns the 202 time;
// sent is called just before the request goes out.
func (s *sender) send(ctx context.Context, num int64, sent func()) (time.Time, error) {
	body := s.tmpl.body(num, s.epoch.Add(time.Duration(num)*time.Millisecond))
	delivery := fmt.Sprintf("e2e-%d-%d", s.epoch.UnixNano(), num)
	req := webhooktest.NewRequest(s.url, "code_scanning_alert", delivery, body, secret)
	req = req.WithContext(ctx)
	sent()
	resp, err := s.client.Do(req)
	if err != nil {
		return time.Time{}, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	at := time.Now()
	if resp.StatusCode != http.StatusAccepted {
		return at, fmt.Errorf("status %d", resp.StatusCode)
	}
	return at, nil
}

// openLoop sends n deliveries at rate per second, alert numbers p.base...
func openLoop(ctx context.Context, s *sender, p *probe, rate int) time.Duration {
	interval := time.Second / time.Duration(rate)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range p.due {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		p.due[i].Store(due.UnixNano())
		wg.Add(1)
		go func() {
			defer wg.Done()
			at, err := s.send(ctx, p.base+int64(i), func() { p.sent[i].Store(time.Now().UnixNano()) })
			if err != nil {
				if p.errs.Add(1) == 1 {
					p.firstErr.Store(err.Error())
				}
				return
			}
			p.accepted[i].Store(at.UnixNano())
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// cpuTime is the user+system CPU time of a process so far.
func cpuTime(pid string) time.Duration {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ is 100 on Linux
}

// procNames are the processes whose CPU time is reported, in table order;
// "other" is the rest of the machine (other users of the 2 cores).
var procNames = [5]string{"receiver", "processor", "nats-server", "load generator", "other"}

// cpuSnap is the CPU time of each process in procNames (the last entry is
// the machine's idle time until sub turns it into "other") at time at.
type cpuSnap struct {
	at  time.Time
	cpu [5]time.Duration
}

// machineIdle is the idle and iowait time of all CPUs. On a tickless kernel
// these are exact, unlike the tick-sampled busy fields of /proc/stat, so the
// machine's busy time is wall time × CPUs − idle.
func machineIdle() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait ...
	if len(f) < 6 {
		return 0
	}
	idle, _ := strconv.ParseInt(f[4], 10, 64)
	iowait, _ := strconv.ParseInt(f[5], 10, 64)
	return time.Duration(idle+iowait) * (time.Second / 100)
}

func (e *env) cpu() cpuSnap {
	return cpuSnap{at: time.Now(), cpu: [5]time.Duration{
		cpuTime(strconv.Itoa(e.recvCmd.Process.Pid)),
		cpuTime(strconv.Itoa(e.procCmd.Process.Pid)),
		cpuTime(strconv.Itoa(e.natsCmd.Process.Pid)),
		cpuTime("self"),
		machineIdle(),
	}}
}

// sub is the CPU time each process used from a to b, and the wall time.
func sub(a, b cpuSnap) (used [5]time.Duration, wall time.Duration) {
	wall = b.at.Sub(a.at)
	for i := range 4 {
		used[i] = b.cpu[i] - a.cpu[i]
	}
	busy := time.Duration(runtime.NumCPU())*wall - (b.cpu[4] - a.cpu[4])
	used[4] = max(0, busy-used[0]-used[1]-used[2]-used[3])
	return used, wall
}

func loadAvg() string {
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

// Stages of a delivery; e2e is the sum of gen, ingest, process and deliver.
const (
	stGen     = iota // scheduled → request leaves the generator
	stIngest         // → event stored on GHAS_EVENTS (HTTP, receiver, JetStream)
	stProcess        // → finding stored on GHAS_FINDINGS (processor)
	stDeliver        // → finding delivered to the ordered consumer
	stAck            // event stored → 202 back at the generator (not part of e2e)
	nStages
)

var stageNames = [nStages]string{
	"generator: scheduled → request sent",
	"ingest: sent → event stored on GHAS_EVENTS",
	"processor: event stored → finding stored on GHAS_FINDINGS",
	"delivery: finding stored → received by the ordered consumer",
	"(ack: event stored → 202 received)",
}

// stats of one run.
type stats struct {
	sent, accepted, found, dupes, strays, errs int
	firstErr                                   string
	rate                                       float64
	e2e, core, http                            []time.Duration // sorted
	stages                                     [nStages][]time.Duration
	tail                                       [nStages]float64 // mean ms of each stage over the slowest 1% by e2e
	byOther                                    [len(otherBands)][]time.Duration
	timeline                                   []string // one line per second
	secsByOther                                [len(otherBands)]int
	cpuPer                                     [5]float64 // µs per accepted delivery
	cpuUtil                                    [5]float64 // cores busy during the run
	loadBefore, loadAfter                      string
}

func pct(s []time.Duration, p float64) float64 {
	if len(s) == 0 {
		return 0
	}
	return float64(s[min(len(s)-1, int(p*float64(len(s))))]) / float64(time.Millisecond)
}

var quantiles = []float64{0.5, 0.9, 0.99, 0.999, 1}

// otherBands classify each second of a run by the cores the rest of the
// machine used in it (lower bounds), to tell our latency from theirs.
var otherBands = [3]float64{0, 0.25, 0.75}

func band(cores float64) int {
	b := 0
	for i, lo := range otherBands {
		if cores >= lo {
			b = i
		}
	}
	return b
}

// runOnce measures one run of d at rate; alert numbers start at base.
func runOnce(ctx context.Context, e *env, s *sender, a *active, base int64, rate int, d, settle time.Duration) (stats, error) {
	n := int(d.Seconds() * float64(rate))
	p := newProbe(base, n)
	a.p.Store(p)
	defer a.p.Store(nil)
	st := stats{sent: n, loadBefore: loadAvg()}
	c0, t0 := e.cpu(), time.Now()
	// Sample the machine every second of the run.
	samples := []cpuSnap{c0}
	sampled := make(chan struct{})
	stopSampling := make(chan struct{})
	go func() {
		defer close(sampled)
		for k := 1; ; k++ {
			select {
			case <-stopSampling:
				return
			case <-time.After(time.Until(t0.Add(time.Duration(k) * time.Second))):
				samples = append(samples, e.cpu())
			}
		}
	}()
	elapsed := openLoop(ctx, s, p, rate)
	close(stopSampling)
	<-sampled
	samples = append(samples, e.cpu()) // the last, partial second
	st.rate = float64(n) / elapsed.Seconds()
	for i := range p.accepted {
		if p.accepted[i].Load() != 0 {
			st.accepted++
		}
	}
	complete := func() bool {
		if int(p.got.Load()) < st.accepted {
			return false
		}
		for i := range p.ordered {
			if p.ordered[i].Load() != 0 && p.evStored[i].Load() == 0 {
				return false // the events consumer is behind
			}
		}
		return true
	}
	deadline := time.Now().Add(settle)
	for !complete() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	used, wall := sub(c0, e.cpu())
	st.loadAfter = loadAvg()
	for i := range used {
		st.cpuPer[i] = float64(used[i]) / float64(time.Microsecond) / float64(max(st.accepted, 1))
		st.cpuUtil[i] = float64(used[i]) / float64(wall)
	}
	type full struct {
		e2e    time.Duration
		stages [nStages]time.Duration
	}
	var all []full
	secBand := make([]int, len(samples)-1)
	for w := 1; w < len(samples); w++ {
		used, wall := sub(samples[w-1], samples[w])
		secBand[w-1] = band(float64(used[4]) / float64(wall))
		if wall >= time.Second/2 { // not the last, partial second
			st.secsByOther[secBand[w-1]]++
		}
	}
	perSec := make([][]time.Duration, len(secBand))
	for i := range p.due {
		due := p.due[i].Load()
		if at := p.ordered[i].Load(); at != 0 {
			w := min(int(time.Duration(due-t0.UnixNano())/time.Second), len(secBand)-1)
			st.byOther[secBand[w]] = append(st.byOther[secBand[w]], time.Duration(at-due))
			perSec[w] = append(perSec[w], time.Duration(at-due))
		}
		if at := p.accepted[i].Load(); at != 0 {
			st.http = append(st.http, time.Duration(at-due))
		}
		if at := p.core[i].Load(); at != 0 {
			st.core = append(st.core, time.Duration(at-due))
		}
		at := p.ordered[i].Load()
		if at == 0 {
			continue
		}
		st.e2e = append(st.e2e, time.Duration(at-due))
		sent, ev, fs, acc := p.sent[i].Load(), p.evStored[i].Load(), p.fStored[i].Load(), p.accepted[i].Load()
		if sent == 0 || ev == 0 || fs == 0 || acc == 0 {
			continue
		}
		f := full{e2e: time.Duration(at - due)}
		f.stages[stGen] = time.Duration(sent - due)
		f.stages[stIngest] = time.Duration(ev - sent)
		f.stages[stProcess] = time.Duration(fs - ev)
		f.stages[stDeliver] = time.Duration(at - fs)
		f.stages[stAck] = time.Duration(acc - ev)
		for k := range f.stages {
			st.stages[k] = append(st.stages[k], f.stages[k])
		}
		all = append(all, f)
	}
	slices.Sort(st.http)
	slices.Sort(st.e2e)
	slices.Sort(st.core)
	for k := range st.stages {
		slices.Sort(st.stages[k])
	}
	for k := range st.byOther {
		slices.Sort(st.byOther[k])
	}
	for w, l := range perSec {
		slices.Sort(l)
		used, wall := sub(samples[w], samples[w+1])
		var cores [5]string
		for i := range used {
			cores[i] = fmt.Sprintf("%.2f", float64(used[i])/float64(wall))
		}
		st.timeline = append(st.timeline, fmt.Sprintf("%3ds n=%4d e2e p50 %6.2f p99 %6.2f max %6.2f ms; cores rcv/proc/nats/gen/other %s",
			w, len(l), pct(l, .5), pct(l, .99), pct(l, 1), strings.Join(cores[:], "/")))
	}
	slices.SortFunc(all, func(a, b full) int { return int(b.e2e - a.e2e) })
	if tail := all[:max(1, len(all)/100)]; len(all) > 0 {
		for _, f := range tail {
			for k := range f.stages {
				st.tail[k] += float64(f.stages[k]) / float64(time.Millisecond) / float64(len(tail))
			}
		}
	}
	st.found, st.dupes, st.strays, st.errs = len(st.e2e), int(p.dupes.Load()), int(p.strays.Load()), int(p.errs.Load())
	if v, ok := p.firstErr.Load().(string); ok {
		st.firstErr = v
	}
	return st, drain(ctx, e)
}

// drain waits until the processor acked every event, then purges both
// streams so every run starts from the same (empty) state on disk.
func drain(ctx context.Context, e *env) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		cons, err := e.js.Consumer(ctx, stream.EventsStream, "ghas-processor")
		if err != nil {
			return fmt.Errorf("processor consumer: %w", err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return fmt.Errorf("processor consumer info: %w", err)
		}
		if info.NumPending == 0 && info.NumAckPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processor still has %d pending, %d unacked after 60s", info.NumPending, info.NumAckPending)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, name := range []string{stream.EventsStream, stream.FindingsStream} {
		s, err := e.js.Stream(ctx, name)
		if err != nil {
			return err
		}
		if err := s.Purge(ctx); err != nil {
			return fmt.Errorf("purge %s: %w", name, err)
		}
	}
	return nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// collect gathers one number per run for the medians.
type collect map[string][]float64

func (c collect) add(k string, v float64) { c[k] = append(c[k], v) }

func (c collect) med(k string) float64 { return median(c[k]) }

func measure(ctx context.Context, e *env, o options, stdout, stderr io.Writer) error {
	tmpl, err := loadTemplate()
	if err != nil {
		return err
	}
	a := &active{}
	stop, err := subscribe(ctx, e, a)
	if err != nil {
		return err
	}
	defer stop()
	conns := 256
	s := &sender{
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConns: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: time.Minute,
		}},
		url:   "http://" + e.webhook + "/webhook",
		tmpl:  tmpl,
		epoch: time.Now(),
	}
	base := int64(1)
	fmt.Fprintf(stdout, "Delivery: %d-byte code scanning alert (created), one distinct alert per delivery; %s per run after a %s warm-up; median of %d runs.\n\n",
		len(tmpl.body(1, time.Now())), o.dur, o.warm, o.reps)

	type row struct {
		rate int
		c    collect
		runs []stats
	}
	var rows []row
	for _, rate := range o.rates {
		if o.warm > 0 {
			st, err := runOnce(ctx, e, s, a, base, rate, o.warm, o.settle)
			base += int64(st.sent)
			if err != nil {
				return err
			}
			fmt.Fprintf(stderr, "warm-up %d/s: %d sent, %d accepted, %d findings, e2e p99 %.2f ms\n", rate, st.sent, st.accepted, st.found, pct(st.e2e, 0.99))
		}
		r := row{rate: rate, c: collect{}}
		for rep := 0; rep < o.reps; rep++ {
			st, err := runOnce(ctx, e, s, a, base, rate, o.dur, o.settle)
			base += int64(st.sent)
			if err != nil {
				return err
			}
			fmt.Fprintf(stderr, "%d/s run %d: sent %d (%.0f/s), 202 %d, findings %d, dupes %d, strays %d, errors %d %s; e2e p50 %.2f p99 %.2f max %.2f ms; 202 p99 %.2f ms; load %s -> %s; cores: rcv %.2f proc %.2f nats %.2f gen %.2f other %.2f\n",
				rate, rep+1, st.sent, st.rate, st.accepted, st.found, st.dupes, st.strays, st.errs, st.firstErr,
				pct(st.e2e, .5), pct(st.e2e, .99), pct(st.e2e, 1), pct(st.http, .99), st.loadBefore, st.loadAfter,
				st.cpuUtil[0], st.cpuUtil[1], st.cpuUtil[2], st.cpuUtil[3], st.cpuUtil[4])
			if o.timeline {
				fmt.Fprintln(stderr, strings.Join(st.timeline, "\n"))
			}
			r.c.add("rate", st.rate)
			for _, q := range quantiles {
				r.c.add(fmt.Sprint("e2e", q), pct(st.e2e, q))
				r.c.add(fmt.Sprint("core", q), pct(st.core, q))
				r.c.add(fmt.Sprint("http", q), pct(st.http, q))
			}
			for k := range st.stages {
				r.c.add(fmt.Sprint("st50-", k), pct(st.stages[k], .5))
				r.c.add(fmt.Sprint("st99-", k), pct(st.stages[k], .99))
				r.c.add(fmt.Sprint("tail-", k), st.tail[k])
			}
			for i := range st.cpuPer {
				r.c.add(fmt.Sprint("cpu", i), st.cpuPer[i])
				r.c.add(fmt.Sprint("util", i), st.cpuUtil[i])
			}
			r.runs = append(r.runs, st)
		}
		rows = append(rows, r)
	}

	qs := func(c collect, k string) string {
		var parts []string
		for _, q := range quantiles {
			parts = append(parts, fmt.Sprintf("%.2f", c.med(fmt.Sprint(k, q))))
		}
		return strings.Join(parts, " / ")
	}
	fmt.Fprintln(stdout, "Latencies in ms from each request's scheduled send time: p50 / p90 / p99 / p99.9 / max (medians over runs).")
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, "| rate/s | sent/s achieved | sent | 202s | findings (ordered consumer) | end to end: finding on GHAS_FINDINGS | finding published (core subscription) | POST → 202 |")
	fmt.Fprintln(stdout, "|---:|---:|---|---|---|---|---|---|")
	for _, r := range rows {
		var sent, acc, found []string
		for _, st := range r.runs {
			sent = append(sent, strconv.Itoa(st.sent))
			acc = append(acc, strconv.Itoa(st.accepted))
			f := strconv.Itoa(st.found)
			if st.dupes > 0 || st.strays > 0 {
				f += fmt.Sprintf(" (+%d dup, %d stray)", st.dupes, st.strays)
			}
			found = append(found, f)
		}
		fmt.Fprintf(stdout, "| %d | %.0f | %s | %s | %s | %s | %s | %s |\n", r.rate, r.c.med("rate"),
			strings.Join(sent, ", "), strings.Join(acc, ", "), strings.Join(found, ", "),
			qs(r.c, "e2e"), qs(r.c, "core"), qs(r.c, "http"))
	}

	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, "Per run, end to end p50 / p99 / max ms:")
	fmt.Fprintln(stdout)
	for _, r := range rows {
		var runs []string
		for _, st := range r.runs {
			runs = append(runs, fmt.Sprintf("%.2f / %.2f / %.2f", pct(st.e2e, .5), pct(st.e2e, .99), pct(st.e2e, 1)))
		}
		fmt.Fprintf(stdout, "- %d/s: %s\n", r.rate, strings.Join(runs, "; "))
	}

	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, "Where the time goes (ms; stream timestamps from the server, same clock): each stage's p50 / p99, and its mean over the slowest 1% of deliveries by end-to-end latency (medians over runs). The first four stages add up to the end-to-end latency.")
	fmt.Fprintln(stdout)
	var hdr, sep []string
	for _, r := range rows {
		hdr = append(hdr, fmt.Sprintf("%d/s p50 / p99", r.rate), fmt.Sprintf("%d/s slowest 1%%", r.rate))
		sep = append(sep, "---:", "---:")
	}
	fmt.Fprintf(stdout, "| stage | %s |\n|---|%s|\n", strings.Join(hdr, " | "), strings.Join(sep, "|"))
	for k := range nStages {
		var cells []string
		for _, r := range rows {
			cells = append(cells, fmt.Sprintf("%.2f / %.2f", r.c.med(fmt.Sprint("st50-", k)), r.c.med(fmt.Sprint("st99-", k))),
				fmt.Sprintf("%.2f", r.c.med(fmt.Sprint("tail-", k))))
		}
		fmt.Fprintf(stdout, "| %s | %s |\n", stageNames[k], strings.Join(cells, " | "))
	}

	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, "End to end by what the rest of the machine (other engineers' builds and tests) used in the second each delivery was sent, all runs pooled: seconds in the band, deliveries, p50 / p99 / max ms.")
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, "| rate/s | other processes' cores | seconds | deliveries | p50 / p99 / max ms |")
	fmt.Fprintln(stdout, "|---:|---|---:|---:|---|")
	for _, r := range rows {
		for b, lo := range otherBands {
			var pooled []time.Duration
			secs := 0
			for _, st := range r.runs {
				pooled = append(pooled, st.byOther[b]...)
				secs += st.secsByOther[b]
			}
			slices.Sort(pooled)
			name := fmt.Sprintf("≥ %.2f", lo)
			if b+1 < len(otherBands) {
				name = fmt.Sprintf("%.2f – %.2f", lo, otherBands[b+1])
			}
			fmt.Fprintf(stdout, "| %d | %s | %d | %d | %.2f / %.2f / %.2f |\n", r.rate, name, secs, len(pooled), pct(pooled, .5), pct(pooled, .99), pct(pooled, 1))
		}
	}

	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, "CPU per delivery (µs, median over runs) and, in parentheses, cores busy during the run; \"other\" is everything else on the machine:")
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "| rate/s | %s | load average (1/5/15 min) before → after each run |\n", strings.Join(procNames[:], " | "))
	fmt.Fprintln(stdout, "|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range rows {
		var cells []string
		for i := range procNames {
			cells = append(cells, fmt.Sprintf("%.0f µs (%.2f)", r.c.med(fmt.Sprint("cpu", i)), r.c.med(fmt.Sprint("util", i))))
		}
		var loads []string
		for _, st := range r.runs {
			loads = append(loads, st.loadBefore+" → "+st.loadAfter)
		}
		fmt.Fprintf(stdout, "| %d | %s | %s |\n", r.rate, strings.Join(cells, " | "), strings.Join(loads, "; "))
	}
	for _, r := range rows {
		for _, st := range r.runs {
			if st.found != st.accepted || st.errs > 0 {
				return fmt.Errorf("at %d/s a run had %d 202s but %d findings and %d errors (first: %s)", r.rate, st.accepted, st.found, st.errs, st.firstErr)
			}
		}
	}
	return nil
}
