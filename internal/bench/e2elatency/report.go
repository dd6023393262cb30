package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// row is one rate's measured runs.
type row struct {
	rate int
	c    collect
	runs []stats
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

	return report(stdout, rows)
}

// report prints the tables of every rate's runs and fails when a run lost
// a finding or an accepted delivery.
func report(stdout io.Writer, rows []row) error {
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
