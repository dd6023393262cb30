package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// procStatus reads a kB field of /proc/<pid>/status.
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// cpuTime is the user+system CPU time of a process so far.
func cpuTime(pid string) time.Duration {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ is 100 on Linux
}

// cpuSnap is the CPU time of the receiver, nats-server and this process.
type cpuSnap [3]time.Duration

func (e *env) cpu() cpuSnap {
	return cpuSnap{cpuTime(strconv.Itoa(e.recv.Pid())), cpuTime(strconv.Itoa(e.server.Pid())), cpuTime("self")}
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
