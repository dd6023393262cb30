package main

import (
	"context"
	"fmt"
	"io"

	"github.com/ghas-relay/ghas-relay/internal/bench/pace"
)

// variant is one path measured in the closed loop.
type variant struct {
	name string
	send pace.Op
	// own is the index in cpuSnap of the process whose CPU is the path's
	// own cost: the receiver, the load generator for the direct publisher,
	// the floor server.
	own int
}

// Indexes in cpuSnap.
const (
	cpuReceiver = iota
	cpuServer
	cpuLoadGen
	cpuFloor
)

// loopStats are one variant's measurements at one concurrency.
type loopStats struct {
	rate, p50, p99 []float64
	cpu            [4][]float64 // per operation, by cpuSnap index
	errs           int
}

func (s *loopStats) ownCPU(v variant) float64 { return median(s.cpu[v.own]) }

// closedLoops measures every variant at every concurrency, the variants
// alternating within each repetition so that a change in the machine's
// load falls on all of them, and prints two tables: throughput and latency
// of the receiver against the direct publisher, and each path's own CPU per
// operation. vs[0] is the receiver and vs[1] the direct publisher; vs[2],
// when present, is the net/http floor.
func closedLoops(ctx context.Context, e *env, o options, vs []variant, size int, stdout, stderr io.Writer) error {
	fmt.Fprintf(stdout, "### Closed loop: %d-byte deliveries, %s per measurement, median of %d\n\n", size, o.dur, o.reps)
	fmt.Fprintln(stdout, "| concurrency | receiver deliveries/s | receiver p50 ms | receiver p99 ms | baseline publishes/s | baseline p50 ms | baseline p99 ms | ratio | errors | CPU µs/delivery: receiver / nats-server / load generator | CPU µs/publish: nats-server / load generator |")
	fmt.Fprintln(stdout, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
	var cpuRows []string
	for _, c := range o.concs {
		st := make([]loopStats, len(vs))
		for rep := 0; rep < o.reps; rep++ {
			for i, v := range vs {
				c0 := e.cpu()
				res := pace.Closed(ctx, v.send, c, o.dur)
				per := perOp(c0, e.cpu(), res.N)
				s := &st[i]
				for k := range per {
					s.cpu[k] = append(s.cpu[k], per[k])
				}
				if res.Errs > 0 {
					fmt.Fprintf(stderr, "%s c=%d: %d errors, first: %s\n", v.name, c, res.Errs, res.FirstErr)
				}
				s.errs += res.Errs
				s.rate = append(s.rate, res.Rate())
				s.p50 = append(s.p50, float64(res.Pct(0.50))/1e6)
				s.p99 = append(s.p99, float64(res.Pct(0.99))/1e6)
				if err := purge(ctx, e.js); err != nil {
					return err
				}
			}
		}
		r, b := &st[0], &st[1]
		fmt.Fprintf(stdout, "| %d | %.0f | %.2f | %.2f | %.0f | %.2f | %.2f | %.2f | %d | %.0f / %.0f / %.0f | %.0f / %.0f |\n",
			c, median(r.rate), median(r.p50), median(r.p99), median(b.rate), median(b.p50), median(b.p99), median(r.rate)/median(b.rate),
			r.errs+b.errs, median(r.cpu[cpuReceiver]), median(r.cpu[cpuServer]), median(r.cpu[cpuLoadGen]),
			median(b.cpu[cpuServer]), median(b.cpu[cpuLoadGen]))
		rc, bc := r.ownCPU(vs[0]), b.ownCPU(vs[1])
		floor, floorRatio, overFloor := "—", "—", "—"
		if len(vs) > 2 {
			fc := st[2].ownCPU(vs[2])
			floor, floorRatio, overFloor = fmt.Sprintf("%.1f", fc), fmt.Sprintf("%.2f", fc/bc), fmt.Sprintf("**%.2f**", rc/fc)
		}
		cpuRows = append(cpuRows, fmt.Sprintf("| %d | %.1f | %s | %.1f | %.2f | %s | %s |", c, rc, floor, bc, rc/bc, floorRatio, overFloor))
	}
	// The receiver's own CPU per delivery against the CPU of a client that
	// publishes the same payload to JetStream directly (the load generator
	// during the baseline does nothing else), and against the net/http
	// floor that publishes the same way.
	fmt.Fprintf(stdout, "\n### CPU per 8 KB delivery: receiver vs direct JetStream publisher and the net/http floor (medians of %d)\n\n", o.reps)
	fmt.Fprintln(stdout, "| concurrency | receiver CPU µs/delivery | net/http floor µs | publisher CPU µs/publish | receiver ÷ publisher | net/http floor ÷ publisher | receiver ÷ net/http floor |")
	fmt.Fprintln(stdout, "|---:|---:|---:|---:|---:|---:|---:|")
	for _, row := range cpuRows {
		fmt.Fprintln(stdout, row)
	}
	return nil
}
