package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/bench/pace"
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

// fixedRateCPU measures the receiver's CPU per delivery at each of
// o.rates, where nothing saturates the machine, and the net/http floor's at
// the same rates: receiver ÷ floor is the ratio the receiver is judged by. The direct publisher is measured at the same rate in the floor
// process (its POST /paced): here, in the load generator, the HTTP clients
// of the other paths would be counted with it. Its pacing (a timer and a
// goroutine per publish) is measured alone too, so that the ratio can be
// read both with it (each side woken once per operation) and without it
// (the publisher's bare cost: a bound that favours the publisher).
func fixedRateCPU(ctx context.Context, e *env, o options, vs []variant, body []byte, stdout io.Writer) error {
	var paths []variant
	for _, v := range vs {
		if v.own != cpuLoadGen {
			paths = append(paths, v)
		}
	}
	cols := []string{"rate /s"}
	for _, v := range paths {
		cols = append(cols, v.name+" µs/delivery")
	}
	if e.pacedURL != "" {
		cols = append(cols, "publisher µs/publish (own process, paced)", "its pacing alone µs", "receiver ÷ publisher", "receiver ÷ (publisher − pacing)")
	}
	if len(paths) > 1 {
		cols = append(cols, "receiver ÷ "+paths[len(paths)-1].name)
	}
	fmt.Fprintf(stdout, "\n### CPU per 8 KB delivery at fixed rates (open loop, %s each, medians of %d)\n\n", o.fixed, o.reps)
	fmt.Fprintf(stdout, "| %s |\n|%s\n", strings.Join(cols, " | "), strings.Repeat("---:|", len(cols)))
	for _, rate := range o.rates {
		row, err := fixedRateRow(ctx, e, o, paths, body, rate)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "| %s |\n", strings.Join(row, " | "))
	}
	return nil
}

// fixedRateRow measures every path, then the paced publisher and its
// pacing, at rate, o.reps times in turn, and returns the row of medians.
func fixedRateRow(ctx context.Context, e *env, o options, paths []variant, body []byte, rate int) ([]string, error) {
	cpu := make([][]float64, len(paths))
	var pub, pacing []float64
	for rep := 0; rep < o.reps; rep++ {
		for i, v := range paths {
			c0 := e.cpu()
			res := pace.Open(ctx, v.send, rate, o.fixed, nil)
			if res.Errs > 0 {
				return nil, fmt.Errorf("%s at %d/s: %d errors, first: %s", v.name, rate, res.Errs, res.FirstErr)
			}
			cpu[i] = append(cpu[i], perOp(c0, e.cpu(), res.N)[v.own])
			if err := purge(ctx, e.js); err != nil {
				return nil, err
			}
		}
		if e.pacedURL == "" {
			continue
		}
		for _, op := range []string{"publish", "none"} {
			c0 := e.cpu()
			n, err := paced(ctx, e.pacedURL, op, body, rate, o.fixed)
			if err != nil {
				return nil, err
			}
			per := perOp(c0, e.cpu(), n)[cpuFloor]
			if op == "none" {
				pacing = append(pacing, per)
			} else {
				pub = append(pub, per)
			}
		}
		if err := purge(ctx, e.js); err != nil {
			return nil, err
		}
	}
	row := []string{strconv.Itoa(rate)}
	for i := range paths {
		row = append(row, fmt.Sprintf("%.1f", median(cpu[i])))
	}
	recv := median(cpu[0])
	if len(pub) > 0 {
		p, t := median(pub), median(pacing)
		bare := "—" // the pacing measured above the publish: noise
		if p > t {
			bare = fmt.Sprintf("%.2f", recv/(p-t))
		}
		row = append(row, fmt.Sprintf("%.1f", p), fmt.Sprintf("%.1f", t), fmt.Sprintf("%.2f", recv/p), bare)
	}
	if len(paths) > 1 {
		row = append(row, fmt.Sprintf("**%.2f**", recv/median(cpu[len(paths)-1])))
	}
	return row, nil
}

// paced asks the floor process to publish body at rate for d (op
// "publish"), or only to pace (op "none"), and returns how many operations
// succeeded; any failed one is an error.
func paced(ctx context.Context, url, op string, body []byte, rate int, d time.Duration) (int, error) {
	u := fmt.Sprintf("%s?rate=%d&for=%s&op=%s", url, rate, d, op)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("paced publisher: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	var r pace.Summary
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, fmt.Errorf("paced publisher: %w", err)
	}
	if r.Errors > 0 {
		return 0, fmt.Errorf("paced publisher at %d/s: %d errors, first: %s", rate, r.Errors, r.FirstError)
	}
	return r.N, nil
}
