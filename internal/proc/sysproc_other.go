//go:build unix && !linux

package proc

import "syscall"

// sysProcAttr puts the child in its own process group when ownGroup is set.
func sysProcAttr(ownGroup bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: ownGroup}
}
