// Command soak runs the whole pipeline for a long time under a steady
// load and reports whether any process grows: nats-server, the receiver,
// a processor forwarding to an HTTP sink (with write-back of decisions)
// and a reconciler daemon, each its own process, against a fake GitHub App
// in this program. The load is webhooks at a fixed rate (each the change
// of one of a fixed set of alerts, so the stored state stays the same
// size), a complete CSV import every few seconds and a triage decision
// every second or two; the reconciler pulls on its own schedule.
//
// Every -sample it reads each process's resident memory (/proc) and, for
// the three binaries, go_goroutines and go_gc_heap_live_bytes (the heap
// the last collection found live) from /metrics. At the end it prints a
// markdown table: per process the first and last readings, the range and
// the least-squares slope (per hour) over the last -window. A leak is a
// slope that stays positive however long the run; a flat process has a
// slope near zero and a range that does not move.
//
// Run from the module root: go run ./internal/bench/soak [-d 30m -rate 200]
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dur := fs.Duration("d", 30*time.Minute, "how long the load runs")
	rate := fs.Int("rate", 200, "webhook deliveries per second")
	importEvery := fs.Duration("import-every", 5*time.Second, "interval of the CSV imports (0: none)")
	decisionEvery := fs.Duration("decision-every", 2*time.Second, "interval of the triage decisions (0: none)")
	sampleEvery := fs.Duration("sample", 10*time.Second, "interval of the readings")
	window := fs.Duration("window", 10*time.Minute, "the last part of the run the slopes are computed over")
	repos := fs.Int("repos", 20, "repositories of the fake GitHub")
	perKind := fs.Int("alerts", 100, "alerts of each kind per repository")
	deltaEvery := fs.Duration("delta-every", 2*time.Minute, "the reconciler's RECONCILE_DELTA_EVERY and REDELIVER_EVERY")
	timeline := fs.Bool("timeline", false, "print every reading to stderr")
	seed := fs.Uint64("seed", 1, "seed of the load's choices")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rate <= 0 || *dur <= 0 || *sampleEvery <= 0 {
		return errors.New("-rate, -d and -sample must be positive")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	e, err := start(ctx, stderr, *repos, *perKind, *deltaEvery)
	if err != nil {
		return err
	}
	defer e.stop()
	fmt.Fprintf(stderr, "soak: %d repositories × %d alerts × 3 kinds; %d deliveries/s, an import every %s, a decision every %s, for %s (logs in %s)\n",
		*repos, *perKind, *rate, *importEvery, *decisionEvery, *dur, e.dir)

	l := newLoad(e, *seed)
	lctx, lstop := context.WithTimeout(ctx, *dur)
	defer lstop()
	done := make(chan struct{}, 3)
	go func() { l.webhooks(lctx, *rate); done <- struct{}{} }()
	go func() { every(lctx, *importEvery, l.importScan); done <- struct{}{} }()
	go func() { every(lctx, *decisionEvery, l.decide); done <- struct{}{} }()

	samples := map[string]series{}
	began := time.Now()
	read := func() {
		at := time.Since(began)
		var line []string
		for _, w := range e.watched {
			rss, err := w.p.Memory("VmRSS")
			if err != nil {
				continue
			}
			g, h := -1.0, -1.0
			if w.admin != "" {
				g, h = scrape(w.admin, "go_goroutines"), scrape(w.admin, "go_gc_heap_live_bytes")
			}
			samples[w.name] = append(samples[w.name], sample{at: at, rss: rss, goroutines: g, heap: h})
			line = append(line, fmt.Sprintf("%s %.1f MiB (live heap %.1f) %.0f g", w.name, float64(rss)/(1<<20), h/(1<<20), g))
		}
		if *timeline {
			fmt.Fprintf(stderr, "%7.0fs  %s  sink %d  webhooks %s\n", at.Seconds(), strings.Join(line, "  "), e.sunk.Load(), l.hooks.String())
		}
	}
	tick := time.NewTicker(*sampleEvery)
	defer tick.Stop()
	read()
	for lctx.Err() == nil {
		select {
		case <-lctx.Done():
		case <-tick.C:
			read()
		}
	}
	for range 3 {
		<-done
	}
	read()
	elapsed := time.Since(began)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	report(stdout, e, l, samples, elapsed, *window, *rate)
	return nil
}

// report prints the readings as markdown.
func report(w io.Writer, e *env, l *load, samples map[string]series, elapsed, window time.Duration, rate int) {
	from := max(0, elapsed-window)
	fmt.Fprintf(w, "Soak: %s at %d deliveries/s; slopes over the last %s (from %s on).\n\n", elapsed.Round(time.Second), rate, window, from.Round(time.Second))
	fmt.Fprintln(w, "| process | RSS first → last (MiB) | RSS range, last window | RSS slope (MiB/h) | live heap first → last (MiB) | live heap range, last window | live heap slope (MiB/h) | goroutines first → last | goroutines range, last window | goroutines slope (/h) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, wt := range e.watched {
		s := samples[wt.name]
		if len(s) == 0 {
			continue
		}
		lo, hi := s.span(from, rssMiB)
		slope, n := s.slope(from, rssMiB)
		row := fmt.Sprintf("| %s | %.1f → %.1f | %.1f–%.1f | %s (%d readings) |", wt.name, rssMiB(s[0]), rssMiB(s[len(s)-1]), lo, hi, signed(slope), n)
		if wt.admin == "" {
			row += " — | — | — | — | — | — |"
		} else {
			hlo, hhi := s.span(from, heapMiB)
			hs, _ := s.slope(from, heapMiB)
			row += fmt.Sprintf(" %.1f → %.1f | %.1f–%.1f | %s |", heapMiB(s[0]), heapMiB(s[len(s)-1]), hlo, hhi, signed(hs))
			glo, ghi := s.span(from, goroutineCount)
			gs, _ := s.slope(from, goroutineCount)
			row += fmt.Sprintf(" %.0f → %.0f | %.0f–%.0f | %s |", s[0].goroutines, s[len(s)-1].goroutines, glo, ghi, signed(gs))
		}
		fmt.Fprintln(w, row)
	}
	fmt.Fprintf(w, "\nWebhooks by status %s (-1: not sent, 512 in flight); imports %s; decisions %s; the sink took %d POSTs.\n",
		l.hooks.String(), l.imports.String(), l.decided.String(), e.sunk.Load())
}

func signed(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf("%+.1f", v)
}

// scrape reads one unlabelled value from a binary's /metrics (-1 when it
// cannot).
func scrape(admin, name string) float64 {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + admin + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				return f
			}
		}
	}
	return -1
}
