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
	start := CPUTime(0)
	for spin := time.Now(); time.Since(spin) < 300*time.Millisecond; {
	}
	if used := CPUTime(0) - start; used < 100*time.Millisecond {
		t.Errorf("CPU time grew by %s over a 300 ms spin", used)
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
