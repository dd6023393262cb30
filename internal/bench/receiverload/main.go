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
//   - in the same loop, the floor served by internal/bench/httpfloor: a bare
//     net/http server that publishes the same way and checks nothing; it
//     splits the receiver's cost into the publish, what net/http costs
//     around it, and the receiver's own work;
//   - the receiver's, the floor's and a direct publisher's CPU per operation
//     at fixed rates (-fixed-rates, open loop), where the machine is not
//     saturated and every path does the same number of operations per
//     second: receiver ÷ floor is the ratio the receiver's cost is judged
//     by; the publisher publishes from the floor process, paced by its own
//     timer, and its pacing alone is measured too;
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
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/bench/pace"
	"github.com/ghas-relay/ghas-relay/internal/proc"
)

const secret = "bench-secret"

type options struct {
	concs    []int
	reps     int
	dur      time.Duration
	size     int
	rate     int
	open     time.Duration
	fixed    time.Duration
	rates    []int // of the fixed-rate CPU measurement
	floor    bool
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
	fixed := fs.Duration("fixed", 5*time.Second, "duration of each CPU measurement at a fixed rate (every path in turn, -reps times); 0 skips")
	rates := fs.String("fixed-rates", "500,1000,2000", "rates of the fixed-rate CPU measurement, deliveries per second, comma-separated")
	big := fs.Int("big", 25_000_000, "size of the single large delivery; 0 skips")
	slow := fs.Int("slow", 1000, "stalled clients that announce the largest body (26214400 bytes) while an honest 2 MiB delivery is sent; 0 skips")
	floor := fs.Bool("floor", true, "also measure the floor (internal/bench/httpfloor: bare net/http with the same publish and no checks)")
	receiver := fs.String("receiver", "", "a receiver binary to measure instead of building ./cmd/receiver (to compare two versions)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o := options{reps: *reps, dur: *dur, size: *size, rate: *rate, open: *open, fixed: *fixed, floor: *floor, bigBytes: *big, slow: *slow, receiver: *receiver}
	var err error
	if o.concs, err = positives("concurrency", *concs); err != nil {
		return err
	}
	if o.rates, err = positives("rate", *rates); err != nil {
		return err
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

	// Warm up every path.
	pace.Closed(ctx, recv, maxConc, time.Second)
	pace.Closed(ctx, base, maxConc, time.Second)
	if e.floor != nil {
		pace.Closed(ctx, httpSender(client, e.floorURL, body), maxConc, time.Second)
	}
	if err := purge(ctx, e.js); err != nil {
		return err
	}

	vs := []variant{{"receiver", recv, cpuReceiver}, {"baseline", base, cpuLoadGen}}
	if e.floor != nil {
		vs = append(vs, variant{"net/http floor", httpSender(client, e.floorURL, body), cpuFloor})
	}
	if err := closedLoops(ctx, e, o, vs, len(body), stdout, stderr); err != nil {
		return err
	}
	if o.fixed > 0 {
		if err := fixedRateCPU(ctx, e, o, vs, body, stdout); err != nil {
			return err
		}
	}

	pid := e.recv.Pid()
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
		res := pace.Open(ctx, recv, o.rate, o.open, func(el time.Duration) {
			if v, err := proc.Memory(pid, "VmRSS"); err == nil {
				rss = append(rss, v)
				samples = append(samples, fmt.Sprintf("%ds: %s", int(el.Seconds()), mb(v)))
			}
		})
		_ = purge(ctx, e.js)
		fmt.Fprintln(stdout, "| sent/s achieved | p50 ms | p99 ms | p99.9 ms | max ms | errors |")
		fmt.Fprintln(stdout, "|---:|---:|---:|---:|---:|---:|")
		fmt.Fprintf(stdout, "| %.0f | %s | %s | %s | %s | %d |\n", float64(res.N+res.Errs)/res.Elapsed.Seconds(),
			ms(res.Pct(0.5)), ms(res.Pct(0.99)), ms(res.Pct(0.999)), ms(res.Pct(1)), res.Errs)
		if res.Errs > 0 {
			fmt.Fprintf(stdout, "\nfirst error: %s\n", res.FirstErr)
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
		before, _ := proc.Memory(pid, "VmRSS")
		err = httpSender(client, url, big)(ctx)
		peak, _ := proc.Memory(pid, "VmHWM")
		_ = purge(ctx, e.js)
		if err != nil {
			return fmt.Errorf("large delivery: %w", err)
		}
		fmt.Fprintf(stdout, "\n### One %d-byte delivery\n\nReceiver RSS before %s MiB, peak during %s MiB: growth %s MiB = %.2f × the body.\n",
			len(big), mb(before), mb(peak), mb(peak-before), float64(peak-before)/float64(len(big)))
	}
	return nil
}

// positives parses a comma-separated list of positive integers.
func positives(what, list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad %s %q", what, f)
		}
		out = append(out, n)
	}
	return out, nil
}
