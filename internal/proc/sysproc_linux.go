package proc

import "syscall"

// sysProcAttr asks the kernel to kill the child when the process that
// started it dies, so that no child is left behind even after a kill -9;
// ownGroup puts it in its own process group.
func sysProcAttr(ownGroup bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: ownGroup, Pdeathsig: syscall.SIGKILL}
}
