package proc

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat on Linux.
const userHZ = 100

// CPUTime is the user and system CPU time process pid (0: this process)
// has used so far, from /proc; 0 when it cannot be read (not Linux, or the
// process is gone).
func CPUTime(pid int) time.Duration {
	name := "self"
	if pid != 0 {
		name = strconv.Itoa(pid)
	}
	b, err := os.ReadFile("/proc/" + name + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / userHZ)
}

// Memory is a memory field of /proc/<pid>/status (VmRSS, VmHWM, …) in
// bytes.
func Memory(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("memory of %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("memory of %d: %s: %w", pid, field, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("memory of %d: no %s in /proc/%d/status", pid, field, pid)
}

// CPUTime is the CPU time the child's current run has used so far.
func (p *Process) CPUTime() time.Duration { return CPUTime(p.Pid()) }

// Memory is a memory field (VmRSS, VmHWM, …) of the child's current run,
// in bytes.
func (p *Process) Memory(field string) (int64, error) { return Memory(p.Pid(), field) }
