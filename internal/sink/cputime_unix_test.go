//go:build unix

package sink_test

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user + system) this process has used: on a
// machine shared with other work it measures a benchmark's cost more
// steadily than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
