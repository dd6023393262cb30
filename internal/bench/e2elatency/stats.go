package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/stream"
)

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
