package e2e

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// Kinds of fault of the random-fault test.
const (
	faultKill      = "kill"       // SIGKILL the process, start it again after For
	faultPause     = "pause"      // SIGSTOP the process, SIGCONT after For
	faultSink5xx   = "sink-5xx"   // the sink answers 500 or 503 for For
	faultSinkDown  = "sink-down"  // the sink drops every connection for For
	faultGitHub5xx = "github-5xx" // the fake GitHub answers 500 for For
	faultPoison    = "poison"     // an undecodable event is stored in GHAS_EVENTS
)

// Targets of the faults that are not processes.
const (
	targetSink   = "sink"
	targetGitHub = "github"
	targetEvents = "GHAS_EVENTS"
)

// fault is one entry of a fault plan: at At after the start, Kind strikes
// Target for For.
type fault struct {
	At     time.Duration
	Kind   string
	Target string
	For    time.Duration
}

func (f fault) String() string {
	if f.For == 0 {
		return fmt.Sprintf("%+6.1fs %-10s %s", f.At.Seconds(), f.Kind, f.Target)
	}
	return fmt.Sprintf("%+6.1fs %-10s %-12s for %.1fs", f.At.Seconds(), f.Kind, f.Target, f.For.Seconds())
}

// topology names the processes a plan may strike.
type topology struct {
	nats, processors, receivers, reconcilers []string
	leaseTTL                                 time.Duration
}

// processes is every process of t.
func (t topology) processes() []string {
	return slices.Concat(t.nats, t.processors, t.receivers, t.reconcilers)
}

// pausable is every process that SIGSTOP may freeze: NATS nodes,
// processors and reconcilers (the receiver's answers are its own fault:
// a frozen receiver is one that is slow to answer, which a kill covers).
func (t topology) pausable() []string {
	return slices.Concat(t.nats, t.processors, t.reconcilers)
}

// weights of the kinds, in the order of the switch in makePlan.
var faultWeights = []struct {
	kind   string
	weight int
}{
	{faultKill, 30}, {faultPause, 24}, {faultSink5xx, 12}, {faultSinkDown, 10}, {faultGitHub5xx, 14}, {faultPoison, 10},
}

// makePlan draws the fault plan of seed for a run of length d: a fault
// every 0.8–3.5 s from 1.5 s on, every one over by d. A target is struck
// by one fault at a time, and only one NATS node is down or frozen at a
// time, so the cluster keeps its quorum (two nodes of three) between the
// faults of a node: what is tested is the system's recovery, not
// JetStream's availability without a quorum.
func makePlan(seed int64, d time.Duration, top topology) []fault {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo)+1)) }
	busyUntil := map[string]time.Duration{}
	natsBusyUntil := time.Duration(0)
	isNATS := func(name string) bool { return slices.Contains(top.nats, name) }
	free := func(names []string, at time.Duration) []string {
		var out []string
		for _, n := range names {
			if busyUntil[n] > at || (isNATS(n) && natsBusyUntil > at) {
				continue
			}
			out = append(out, n)
		}
		return out
	}
	total := 0
	for _, w := range faultWeights {
		total += w.weight
	}
	var plan []fault
	for at := 1500 * time.Millisecond; ; at += between(800*time.Millisecond, 3500*time.Millisecond) {
		if at > d-time.Second {
			break
		}
		pick := rng.IntN(total)
		kind := ""
		for _, w := range faultWeights {
			if pick < w.weight {
				kind = w.kind
				break
			}
			pick -= w.weight
		}
		f := fault{At: at, Kind: kind}
		switch kind {
		case faultKill:
			c := free(top.processes(), at)
			if len(c) == 0 {
				continue
			}
			f.Target, f.For = c[rng.IntN(len(c))], between(300*time.Millisecond, 4*time.Second)
		case faultPause:
			c := free(top.pausable(), at)
			if len(c) == 0 {
				continue
			}
			// Up to two lease TTLs: a reconciler frozen that long loses its
			// lease to the other, and wakes up as a holder past its deadline.
			f.Target, f.For = c[rng.IntN(len(c))], between(500*time.Millisecond, max(2*top.leaseTTL, 3*time.Second))
		case faultSink5xx, faultSinkDown:
			if busyUntil[targetSink] > at {
				continue
			}
			f.Target, f.For = targetSink, between(time.Second, 8*time.Second)
		case faultGitHub5xx:
			if busyUntil[targetGitHub] > at {
				continue
			}
			f.Target, f.For = targetGitHub, between(time.Second, 6*time.Second)
		case faultPoison:
			f.Target = targetEvents
		}
		f.For = min(f.For, d-f.At)
		busyUntil[f.Target] = at + f.For + 300*time.Millisecond
		if isNATS(f.Target) {
			// A restarted node catches up before the next one goes.
			natsBusyUntil = at + f.For + 3*time.Second
		}
		plan = append(plan, f)
	}
	return plan
}

// planText is the plan one fault a line, as the test prints it.
func planText(plan []fault) string {
	var b strings.Builder
	for _, f := range plan {
		b.WriteString("  " + f.String() + "\n")
	}
	return b.String()
}

var testTopology = topology{
	nats:        []string{"nats-1", "nats-2", "nats-3"},
	processors:  []string{"processor-1", "processor-2"},
	receivers:   []string{"receiver"},
	reconcilers: []string{"reconciler-1", "reconciler-2"},
	leaseTTL:    3 * time.Second,
}

// The plan is a function of its seed; it keeps its rules (one fault a
// target at a time, one NATS node at a time, all over by the end) and
// over a few seeds strikes with every kind at every process.
func TestFaultPlan(t *testing.T) {
	const d = 60 * time.Second
	if a, b := planText(makePlan(7, d, testTopology)), planText(makePlan(7, d, testTopology)); a != b {
		t.Fatalf("seed 7 gave two plans:\n%s\n%s", a, b)
	}
	if planText(makePlan(7, d, testTopology)) == planText(makePlan(8, d, testTopology)) {
		t.Error("seeds 7 and 8 gave the same plan")
	}
	struck := map[string]bool{}
	for seed := range int64(20) {
		plan := makePlan(seed, d, testTopology)
		if len(plan) < 10 {
			t.Errorf("seed %d: %d faults in %s", seed, len(plan), d)
		}
		for i, f := range plan {
			struck[f.Kind] = true
			struck[f.Kind+" "+f.Target] = true
			if f.At+f.For > d {
				t.Errorf("seed %d: %v ends after %s", seed, f, d)
			}
			for _, g := range plan[:i] {
				overlap := g.At+g.For > f.At
				if overlap && g.Target == f.Target {
					t.Errorf("seed %d: %v and %v strike %s at once", seed, g, f, f.Target)
				}
				if overlap && slices.Contains(testTopology.nats, g.Target) && slices.Contains(testTopology.nats, f.Target) {
					t.Errorf("seed %d: %v and %v: two NATS nodes at once", seed, g, f)
				}
			}
		}
	}
	for _, w := range faultWeights {
		if !struck[w.kind] {
			t.Errorf("no %s in 20 seeds", w.kind)
		}
	}
	for _, p := range testTopology.processes() {
		if !struck[faultKill+" "+p] {
			t.Errorf("%s never killed in 20 seeds", p)
		}
	}
	for _, p := range testTopology.pausable() {
		if !struck[faultPause+" "+p] {
			t.Errorf("%s never paused in 20 seeds", p)
		}
	}
}
