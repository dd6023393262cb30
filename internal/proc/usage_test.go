package proc

import (
	"os"
	"runtime"
	"testing"
	"time"
)

func TestUsage(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	// Spin until 100 ms of CPU time show, or fail after 20 s of wall time:
	// on a loaded machine the spin gets only part of a core, so a fixed
	// wall-time spin says nothing.
	start, spin := CPUTime(0), time.Now()
	var used time.Duration
	for used < 100*time.Millisecond && time.Since(spin) < 20*time.Second {
		for t0 := time.Now(); time.Since(t0) < 10*time.Millisecond; {
		}
		used = CPUTime(0) - start
	}
	if used < 100*time.Millisecond {
		t.Errorf("CPU time grew by %s over a %s spin", used, time.Since(spin).Round(time.Millisecond))
	}
	if wall := time.Since(spin); used > wall*time.Duration(runtime.NumCPU())+time.Second/userHZ {
		t.Errorf("CPU time grew by %s in %s of wall time on %d CPUs", used, wall, runtime.NumCPU())
	}
	if CPUTime(os.Getpid()) < CPUTime(0)-time.Second/userHZ {
		t.Error("CPUTime(own pid) differs from CPUTime(0)")
	}
	rss, err := Memory(os.Getpid(), "VmRSS")
	if err != nil || rss < 1<<20 {
		t.Errorf("VmRSS %d, %v", rss, err)
	}
	if _, err := Memory(os.Getpid(), "NoSuchField"); err == nil {
		t.Error("a missing field gave no error")
	}
}
