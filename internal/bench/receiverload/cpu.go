package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/proc"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// cpuSnap is the CPU time of the receiver, nats-server, this process and
// the net/http floor (0 without it).
type cpuSnap [4]time.Duration

func (e *env) cpu() cpuSnap {
	s := cpuSnap{e.recv.CPUTime(), e.server.CPUTime(), proc.CPUTime(0)}
	if e.floor != nil {
		s[3] = e.floor.CPUTime()
	}
	return s
}

// perOp is the CPU microseconds per operation of each process between two snapshots.
func perOp(a, b cpuSnap, n int) [4]float64 {
	var out [4]float64
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

// fixedRateCPU measures the receiver's CPU per delivery at the open-loop
// rate, where nothing saturates the machine, and the floors' at the same
// rate. The direct publisher is not measured here: at a fixed rate the
// load generator's own pacing (a timer and a goroutine per operation) costs
// more than a publish, and it cannot be told apart from the publish in the
// process's CPU time.
func fixedRateCPU(ctx context.Context, e *env, o options, vs []variant, stdout io.Writer) error {
	var paths []variant
	for _, v := range vs {
		if v.own != cpuLoadGen {
			paths = append(paths, v)
		}
	}
	cpu := make([][]float64, len(paths))
	for rep := 0; rep < o.reps; rep++ {
		for i, v := range paths {
			c0 := e.cpu()
			res := openLoop(ctx, v.send, o.rate, o.fixed, nil)
			if res.errs > 0 {
				return fmt.Errorf("%s at %d/s: %d errors, first: %s", v.name, o.rate, res.errs, res.firstErr)
			}
			cpu[i] = append(cpu[i], perOp(c0, e.cpu(), res.n)[v.own])
			if err := purge(ctx, e.js); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(stdout, "\n### CPU per 8 KB delivery at %d/s (open loop, %s each, medians of %d)\n\n", o.rate, o.fixed, o.reps)
	fmt.Fprint(stdout, "| rate |")
	for _, v := range paths {
		fmt.Fprintf(stdout, " %s CPU µs/delivery |", v.name)
	}
	last := len(paths) - 1
	if last > 0 {
		fmt.Fprintf(stdout, " receiver ÷ %s |", paths[last].name)
	}
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, "|---:|"+strings.Repeat("---:|", len(paths)+min(last, 1)))
	fmt.Fprintf(stdout, "| %d |", o.rate)
	for i := range paths {
		fmt.Fprintf(stdout, " %.1f |", median(cpu[i]))
	}
	if last > 0 {
		fmt.Fprintf(stdout, " %.2f |", median(cpu[0])/median(cpu[last]))
	}
	fmt.Fprintln(stdout)
	return nil
}
