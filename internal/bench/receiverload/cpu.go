package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/proc"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// cpuSnap is the CPU time of the receiver, nats-server and this process.
type cpuSnap [3]time.Duration

func (e *env) cpu() cpuSnap {
	return cpuSnap{e.recv.CPUTime(), e.server.CPUTime(), proc.CPUTime(0)}
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
