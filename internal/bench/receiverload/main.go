// Command receiverload is the receiver's whole-process benchmark. It builds
// nats-server and cmd/receiver, runs each as its own process on loopback
// (JetStream with file storage), and measures in one run:
//
//   - closed-loop throughput and p50/p99 latency of signed 8 KB deliveries at
//     each concurrency, against a baseline of direct synchronous JetStream
//     publishes of the same payloads at the same concurrency and server,
//     repeated -reps times (medians reported), with each process's CPU time
//     per operation: the receiver's per delivery against the direct
//     publisher's per publish is the ratio the receiver's cost is judged by;
//   - the receiver's RSS with stalled clients that announce 25 MB bodies and
//     send nothing, while an honest 2 MiB delivery is sent;
//   - open-loop latency at a fixed rate (default 1,000/s) for -open seconds,
//     measured from each request's scheduled start, while sampling the
//     receiver's RSS;
//   - the receiver's peak RSS growth for one 25 MB delivery.
//
// Run from the module root: go run ./internal/bench/receiverload
package main

import (
	"bufio"
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

const secret = "bench-secret"

type options struct {
	concs    []int
	reps     int
	dur      time.Duration
	size     int
	rate     int
	open     time.Duration
	bigBytes int
	slow     int
	receiver string
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "receiverload:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("receiverload", flag.ContinueOnError)
	concs := fs.String("c", "1,8,32", "concurrency levels, comma-separated")
	reps := fs.Int("reps", 3, "repetitions of each closed-loop measurement (medians reported)")
	dur := fs.Duration("d", 3*time.Second, "duration of each closed-loop measurement")
	size := fs.Int("size", 8192, "payload size in bytes")
	rate := fs.Int("rate", 1000, "open-loop rate, deliveries per second")
	open := fs.Duration("open", 60*time.Second, "open-loop duration (RSS sampled during it); 0 skips")
	big := fs.Int("big", 25_000_000, "size of the single large delivery; 0 skips")
	slow := fs.Int("slow", 1000, "stalled clients that announce the largest body (26214400 bytes) while an honest 2 MiB delivery is sent; 0 skips")
	receiver := fs.String("receiver", "", "a receiver binary to measure instead of building ./cmd/receiver (to compare two versions)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o := options{reps: *reps, dur: *dur, size: *size, rate: *rate, open: *open, bigBytes: *big, slow: *slow, receiver: *receiver}
	for _, c := range strings.Split(*concs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			return fmt.Errorf("bad concurrency %q", c)
		}
		o.concs = append(o.concs, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env, err := start(ctx, stderr, o)
	if err != nil {
		return err
	}
	defer env.stop()
	return measure(ctx, env, o, stdout, stderr)
}

// env is the system under test: a nats-server process and a receiver process.
type env struct {
	dir                   string
	natsURL, webhook, adm string
	natsCmd, recvCmd      *exec.Cmd
	nc                    *nats.Conn
	js                    jetstream.JetStream
}

func (e *env) stop() {
	if e.nc != nil {
		e.nc.Close()
	}
	for _, c := range []*exec.Cmd{e.recvCmd, e.natsCmd} {
		if c != nil && c.Process != nil {
			_ = c.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { _ = c.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = c.Process.Kill()
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

func start(ctx context.Context, stderr io.Writer, o options) (*env, error) {
	dir, err := os.MkdirTemp("", "receiverload-")
	if err != nil {
		return nil, err
	}
	e := &env{dir: dir}
	fail := func(err error) (*env, error) { e.stop(); return nil, err }
	builds := [][2]string{{"nats-server", "github.com/nats-io/nats-server/v2"}, {"receiver", "./cmd/receiver"}}
	receiverBin := filepath.Join(dir, "receiver")
	if o.receiver != "" {
		builds, receiverBin = builds[:1], o.receiver
	}
	for _, b := range builds {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, b[0]), b[1])
		cmd.Stdout, cmd.Stderr = stderr, stderr
		if err := cmd.Run(); err != nil {
			return fail(fmt.Errorf("build %s (run from the module root): %w", b[1], err))
		}
	}
	natsAddr, _ := freeAddr()
	e.webhook, _ = freeAddr()
	e.adm, _ = freeAddr()
	host, port, _ := net.SplitHostPort(natsAddr)
	conf := fmt.Sprintf("listen: %s:%s\nmax_payload: 33554432\njetstream { store_dir: %q }\n", host, port, filepath.Join(dir, "js"))
	if err := os.WriteFile(filepath.Join(dir, "nats.conf"), []byte(conf), 0o600); err != nil {
		return fail(err)
	}
	e.natsURL = "nats://" + natsAddr
	e.natsCmd = exec.Command(filepath.Join(dir, "nats-server"), "-c", filepath.Join(dir, "nats.conf"))
	if err := e.natsCmd.Start(); err != nil {
		return fail(fmt.Errorf("start nats-server: %w", err))
	}
	e.recvCmd = exec.Command(receiverBin)
	e.recvCmd.Env = append(os.Environ(),
		"NATS_URL="+e.natsURL, "LISTEN_ADDR="+e.webhook, "ADMIN_ADDR="+e.adm,
		"GITHUB_WEBHOOK_SECRET="+secret, "LOG_LEVEL=warn")
	e.recvCmd.Stderr = stderr
	if err := e.recvCmd.Start(); err != nil {
		return fail(fmt.Errorf("start receiver: %w", err))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + e.adm + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			return fail(errors.New("receiver not ready after 30s"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.nc, err = nats.Connect(e.natsURL)
	if err != nil {
		return fail(err)
	}
	e.js, _ = jetstream.New(e.nc)
	return e, nil
}

// payload is a real code scanning alert padded to size bytes.
func payload(size int) ([]byte, error) {
	dir, err := webhooktest.Dir()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "code_scanning_alert", "created.payload.json"))
	if err != nil {
		return nil, err
	}
	var c bytes.Buffer
	if err := json.Compact(&c, b); err != nil {
		return nil, err
	}
	b = c.Bytes()
	head := append(bytes.Clone(b[:len(b)-1]), []byte(`,"bench_pad":"`)...)
	pad := size - len(head) - len(`"}`)
	if pad < 0 {
		return nil, fmt.Errorf("size %d is smaller than the sample", size)
	}
	return append(append(head, bytes.Repeat([]byte("x"), pad)...), '"', '}'), nil
}

// result of one measurement.
type result struct {
	n        int
	errs     int
	elapsed  time.Duration
	lat      []time.Duration
	firstErr string
}

func (r result) rate() float64 { return float64(r.n) / r.elapsed.Seconds() }

func (r result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	s := slices.Clone(r.lat)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

var seq atomic.Int64

func nextID(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), seq.Add(1))
}

type sender func(ctx context.Context) error

func httpSender(client *http.Client, url string, body []byte) sender {
	sig := webhooktest.Sign(secret, body)
	return func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "code_scanning_alert")
		req.Header.Set("X-GitHub-Delivery", nextID("r"))
		req.Header.Set("X-GitHub-Hook-ID", "4242")
		req.Header.Set("X-Hub-Signature-256", sig)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
}

func publishSender(js jetstream.JetStream, body []byte) sender {
	return func(ctx context.Context) error {
		id := nextID("b")
		m := &nats.Msg{Subject: stream.WebhookSubject("code_scanning_alert"), Data: body, Header: nats.Header{}}
		m.Header.Set(stream.HeaderMsgID, id)
		m.Header.Set(stream.HeaderEvent, "code_scanning_alert")
		m.Header.Set(stream.HeaderDelivery, id)
		m.Header.Set(stream.HeaderHookID, "4242")
		m.Header.Set(stream.HeaderReceivedAt, time.Now().UTC().Format(time.RFC3339Nano))
		m.Header.Set(stream.HeaderOrigin, stream.OriginWebhook)
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := js.PublishMsg(ctx, m, jetstream.WithExpectStream(stream.EventsStream))
		return err
	}
}

// closedLoop runs conc workers sending back to back for d.
func closedLoop(ctx context.Context, send sender, conc int, d time.Duration) result {
	var (
		mu  sync.Mutex
		res result
		wg  sync.WaitGroup
	)
	start := time.Now()
	end := start.Add(d)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			errs, firstErr := 0, ""
			for time.Now().Before(end) {
				t := time.Now()
				if err := send(ctx); err != nil {
					errs++
					if firstErr == "" {
						firstErr = err.Error()
					}
					continue
				}
				lat = append(lat, time.Since(t))
			}
			mu.Lock()
			res.lat = append(res.lat, lat...)
			res.errs += errs
			if res.firstErr == "" {
				res.firstErr = firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.n = len(res.lat)
	return res
}

// openLoop sends at a fixed rate for d; latency counts from each request's
// scheduled time, so a stall shows in the tail (no coordinated omission).
func openLoop(ctx context.Context, send sender, rate int, d time.Duration, tick func(elapsed time.Duration)) result {
	var (
		mu  sync.Mutex
		res result
		wg  sync.WaitGroup
	)
	interval := time.Second / time.Duration(rate)
	total := int(d / interval)
	start := time.Now()
	nextTick := time.Duration(0)
	for i := 0; i < total; i++ {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		if el := time.Since(start); tick != nil && el >= nextTick {
			tick(el)
			nextTick += 5 * time.Second
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := send(ctx)
			l := time.Since(due)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.errs++
				if res.firstErr == "" {
					res.firstErr = err.Error()
				}
				return
			}
			res.lat = append(res.lat, l)
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.n = len(res.lat)
	return res
}

// procStatus reads a kB field of /proc/<pid>/status.
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// cpuTime is the user+system CPU time of a process so far.
func cpuTime(pid string) time.Duration {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ is 100 on Linux
}

// cpuSnap is the CPU time of the receiver, nats-server and this process.
type cpuSnap [3]time.Duration

func (e *env) cpu() cpuSnap {
	return cpuSnap{cpuTime(strconv.Itoa(e.recvCmd.Process.Pid)), cpuTime(strconv.Itoa(e.natsCmd.Process.Pid)), cpuTime("self")}
}

// perOp is the CPU microseconds per operation of each process between two snapshots.
func perOp(a, b cpuSnap, n int) [3]float64 {
	var out [3]float64
	for i := range a {
		if n > 0 {
			out[i] = float64(b[i]-a[i]) / float64(time.Microsecond) / float64(n)
		}
	}
	return out
}

func purge(ctx context.Context, js jetstream.JetStream) error {
	s, err := js.Stream(ctx, stream.EventsStream)
	if err != nil {
		return err
	}
	return s.Purge(ctx)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func mb(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

func measure(ctx context.Context, e *env, o options, stdout, stderr io.Writer) error {
	body, err := payload(o.size)
	if err != nil {
		return err
	}
	maxConc := slices.Max(o.concs)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: maxConc * 2, MaxIdleConnsPerHost: maxConc * 2, IdleConnTimeout: time.Minute,
	}}
	url := "http://" + e.webhook + "/webhook"
	recv, base := httpSender(client, url, body), publishSender(e.js, body)

	// Warm up both paths.
	closedLoop(ctx, recv, maxConc, time.Second)
	closedLoop(ctx, base, maxConc, time.Second)
	if err := purge(ctx, e.js); err != nil {
		return err
	}

	fmt.Fprintf(stdout, "### Closed loop: %d-byte deliveries, %s per measurement, median of %d\n\n", len(body), o.dur, o.reps)
	fmt.Fprintln(stdout, "| concurrency | receiver deliveries/s | receiver p50 ms | receiver p99 ms | baseline publishes/s | baseline p50 ms | baseline p99 ms | ratio | errors | CPU µs/delivery: receiver / nats-server / load generator | CPU µs/publish: nats-server / load generator |")
	fmt.Fprintln(stdout, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
	var cpuRows []string
	for _, c := range o.concs {
		var rr, rp50, rp99, br, bp50, bp99 []float64
		var rcpu, bcpu [3][]float64
		errs := 0
		for rep := 0; rep < o.reps; rep++ {
			for _, which := range []string{"receiver", "baseline"} {
				send := recv
				if which == "baseline" {
					send = base
				}
				c0 := e.cpu()
				res := closedLoop(ctx, send, c, o.dur)
				per := perOp(c0, e.cpu(), res.n)
				for i := range per {
					if which == "receiver" {
						rcpu[i] = append(rcpu[i], per[i])
					} else {
						bcpu[i] = append(bcpu[i], per[i])
					}
				}
				if res.errs > 0 {
					fmt.Fprintf(stderr, "%s c=%d: %d errors, first: %s\n", which, c, res.errs, res.firstErr)
				}
				errs += res.errs
				p50, p99 := float64(res.pct(0.50))/1e6, float64(res.pct(0.99))/1e6
				if which == "receiver" {
					rr, rp50, rp99 = append(rr, res.rate()), append(rp50, p50), append(rp99, p99)
				} else {
					br, bp50, bp99 = append(br, res.rate()), append(bp50, p50), append(bp99, p99)
				}
				if err := purge(ctx, e.js); err != nil {
					return err
				}
			}
		}
		fmt.Fprintf(stdout, "| %d | %.0f | %.2f | %.2f | %.0f | %.2f | %.2f | %.2f | %d | %.0f / %.0f / %.0f | %.0f / %.0f |\n",
			c, median(rr), median(rp50), median(rp99), median(br), median(bp50), median(bp99), median(rr)/median(br), errs,
			median(rcpu[0]), median(rcpu[1]), median(rcpu[2]), median(bcpu[1]), median(bcpu[2]))
		cpuRows = append(cpuRows, fmt.Sprintf("| %d | %.1f | %.1f | %.2f |", c, median(rcpu[0]), median(bcpu[2]), median(rcpu[0])/median(bcpu[2])))
	}
	// The receiver's own CPU per delivery against the CPU of a client that
	// publishes the same payload to JetStream directly (the load generator
	// during the baseline does nothing else).
	fmt.Fprintf(stdout, "\n### CPU per 8 KB delivery: receiver vs direct JetStream publisher (medians of %d)\n\n", o.reps)
	fmt.Fprintln(stdout, "| concurrency | receiver CPU µs/delivery | publisher CPU µs/publish | ratio |")
	fmt.Fprintln(stdout, "|---:|---:|---:|---:|")
	for _, row := range cpuRows {
		fmt.Fprintln(stdout, row)
	}

	pid := e.recvCmd.Process.Pid
	// Before the open loop, whose backlog on a busy machine would leave the
	// RSS high.
	if o.slow > 0 {
		if err := slowClients(ctx, client, url, pid, o.slow, stdout); err != nil {
			return err
		}
		_ = purge(ctx, e.js)
	}

	if o.open > 0 {
		fmt.Fprintf(stdout, "\n### Open loop: %d deliveries/s for %s (latency from scheduled start)\n\n", o.rate, o.open)
		var samples []string
		var rss []int64
		res := openLoop(ctx, recv, o.rate, o.open, func(el time.Duration) {
			if v, err := procStatus(pid, "VmRSS"); err == nil {
				rss = append(rss, v)
				samples = append(samples, fmt.Sprintf("%ds: %s", int(el.Seconds()), mb(v)))
			}
		})
		_ = purge(ctx, e.js)
		fmt.Fprintln(stdout, "| sent/s achieved | p50 ms | p99 ms | p99.9 ms | max ms | errors |")
		fmt.Fprintln(stdout, "|---:|---:|---:|---:|---:|---:|")
		fmt.Fprintf(stdout, "| %.0f | %s | %s | %s | %s | %d |\n", float64(res.n+res.errs)/res.elapsed.Seconds(),
			ms(res.pct(0.5)), ms(res.pct(0.99)), ms(res.pct(0.999)), ms(res.pct(1)), res.errs)
		if res.errs > 0 {
			fmt.Fprintf(stdout, "\nfirst error: %s\n", res.firstErr)
		}
		if len(rss) > 1 {
			fmt.Fprintf(stdout, "\nReceiver RSS (MiB) every 5 s: %s. First sample after warm-up (%s) vs last: %+.1f MiB.\n",
				strings.Join(samples, ", "), samples[min(1, len(samples)-1)], float64(rss[len(rss)-1]-rss[min(1, len(rss)-1)])/(1<<20))
		}
	}

	if o.bigBytes > 0 {
		big, err := payload(o.bigBytes)
		if err != nil {
			return err
		}
		// Reset the peak RSS (VmHWM) of the receiver, then send one delivery.
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
			return fmt.Errorf("reset peak RSS: %w", err)
		}
		before, _ := procStatus(pid, "VmRSS")
		err = httpSender(client, url, big)(ctx)
		peak, _ := procStatus(pid, "VmHWM")
		_ = purge(ctx, e.js)
		if err != nil {
			return fmt.Errorf("large delivery: %w", err)
		}
		fmt.Fprintf(stdout, "\n### One %d-byte delivery\n\nReceiver RSS before %s MiB, peak during %s MiB: growth %s MiB = %.2f × the body.\n",
			len(big), mb(before), mb(peak), mb(peak-before), float64(peak-before)/float64(len(big)))
	}
	return nil
}
