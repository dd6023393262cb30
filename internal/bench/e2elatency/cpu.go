package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/proc"
)

// procNames are the processes whose CPU time is reported, in table order;
// "other" is the rest of the machine (other users of the 2 cores).
var procNames = [5]string{"receiver", "processor", "nats-server", "load generator", "other"}

// cpuSnap is the CPU time of each process in procNames (the last entry is
// the machine's idle time until sub turns it into "other") at time at.
type cpuSnap struct {
	at  time.Time
	cpu [5]time.Duration
}

// machineIdle is the idle and iowait time of all CPUs. On a tickless kernel
// these are exact, unlike the tick-sampled busy fields of /proc/stat, so the
// machine's busy time is wall time × CPUs − idle.
func machineIdle() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait ...
	if len(f) < 6 {
		return 0
	}
	idle, _ := strconv.ParseInt(f[4], 10, 64)
	iowait, _ := strconv.ParseInt(f[5], 10, 64)
	return time.Duration(idle+iowait) * (time.Second / 100)
}

func (e *env) cpu() cpuSnap {
	return cpuSnap{at: time.Now(), cpu: [5]time.Duration{
		e.recv.CPUTime(),
		e.process.CPUTime(),
		e.server.CPUTime(),
		proc.CPUTime(0),
		machineIdle(),
	}}
}

// sub is the CPU time each process used from a to b, and the wall time.
func sub(a, b cpuSnap) (used [5]time.Duration, wall time.Duration) {
	wall = b.at.Sub(a.at)
	for i := range 4 {
		used[i] = b.cpu[i] - a.cpu[i]
	}
	busy := time.Duration(runtime.NumCPU())*wall - (b.cpu[4] - a.cpu[4])
	used[4] = max(0, busy-used[0]-used[1]-used[2]-used[3])
	return used, wall
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
