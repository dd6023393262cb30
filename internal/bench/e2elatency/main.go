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
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

const (
	readyTimeout = 30 * time.Second // of each process at start
	secret       = "bench-secret"
	repoID       = 337911632 // repository.id of the sample; fixed for every delivery
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
	// receiver is a prebuilt receiver binary to run instead of building
	// ./cmd/receiver (to compare two versions beside the same processor)
	receiver string
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
	receiver := fs.String("receiver", "", "a receiver binary to run instead of building ./cmd/receiver (to compare two versions)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o := options{reps: *reps, dur: *dur, warm: *warm, settle: *settle, workers: *workers, timeline: *timeline, receiver: *receiver}
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
