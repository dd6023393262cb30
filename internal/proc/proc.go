// Package proc owns running the module's binaries as child processes:
// building them with go build, starting each with its environment and a
// log, waiting until it is ready, starting it again with fresh loopback
// addresses when another process took one before it bound, and stopping
// it. The demo (cmd/demo), the end-to-end tests (internal/e2e), the load
// benchmarks (internal/bench) and the deploy/nats tests start processes
// through it.
package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Defaults of a Spec's waits.
const (
	defaultReadyTimeout = 60 * time.Second
	readyPoll           = 50 * time.Millisecond
)

// ErrExited is returned by Start when the child exits before it is ready.
var ErrExited = errors.New("exited before it was ready")

// Build runs go build in root, writing the binary of each of pkgs (import
// paths, or ./cmd/... relative to root) into dir; each is named by the
// last element of its path without a major version (nats-server for
// github.com/nats-io/nats-server/v2). The compiler's output goes to out;
// with out nil it is part of the error.
func Build(ctx context.Context, root, dir string, out io.Writer, pkgs ...string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", dir + string(os.PathSeparator)}, pkgs...)...)
	cmd.Dir = root
	var buf bytes.Buffer
	if out == nil {
		out = &buf
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %v (run from the module root): %w\n%s", pkgs, err, buf.String())
	}
	return nil
}

// Spec is a child process to start.
type Spec struct {
	Name string   // in errors, and the log's file name in a Group's folder
	Path string   // the binary
	Args []string // its arguments
	// BaseEnv is the environment Env is added to; nil: this process's own.
	BaseEnv []string
	// Env holds KEY=VALUE entries added to BaseEnv; a later entry wins.
	Env []string
	// Log is the file that receives the child's stdout and stderr
	// (appended, so a restart keeps the earlier output); "": Output.
	Log string
	// Output receives stdout and stderr when Log is ""; nil discards them.
	Output io.Writer
	// Ready reports whether the child serves (HTTPReady, Listening);
	// Start waits for it. nil: ready once started.
	Ready func(ctx context.Context) bool
	// ReadyTimeout bounds the wait for Ready; 0: 60 s.
	ReadyTimeout time.Duration
	// OwnGroup puts the child in its own process group, so that a
	// terminal's Ctrl-C reaches only the parent, which then stops its
	// children in order.
	OwnGroup bool
}

// Process is one started child. On Linux the kernel kills it when the
// process that started it dies, so none is left behind after a crash.
type Process struct {
	spec Spec
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts s and waits until it is ready. A child that exits first
// is reported with ErrExited and the end of its log.
func Start(ctx context.Context, s Spec) (*Process, error) {
	p := &Process{spec: s}
	if err := p.Restart(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// Restart starts the child again with the same Spec (the same addresses)
// after it exited, and waits until it is ready; one that is not ready in
// time is killed.
func (p *Process) Restart(ctx context.Context) error {
	s := p.spec
	var out io.Writer = s.Output
	var logf *os.File
	if s.Log != "" {
		f, err := os.OpenFile(s.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("start %s: %w", s.Name, err)
		}
		logf, out = f, f
	}
	cmd := exec.Command(s.Path, s.Args...)
	if s.BaseEnv != nil || len(s.Env) > 0 {
		base := s.BaseEnv
		if base == nil {
			base = os.Environ()
		}
		cmd.Env = append(append([]string(nil), base...), s.Env...)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr(s.OwnGroup)
	if err := cmd.Start(); err != nil {
		if logf != nil {
			logf.Close()
		}
		return fmt.Errorf("start %s: %w", s.Name, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		if logf != nil {
			logf.Close()
		}
		close(done)
	}()
	if err := p.waitReady(ctx); err != nil {
		p.Kill() // a child that is not ready is not left running
		return err
	}
	return nil
}

// waitReady polls the Spec's Ready until it holds, the child exits, the
// timeout passes or ctx ends.
func (p *Process) waitReady(ctx context.Context) error {
	if p.spec.Ready == nil {
		return nil
	}
	timeout := p.spec.ReadyTimeout
	if timeout <= 0 {
		timeout = defaultReadyTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	done := p.Done()
	for !p.spec.Ready(ctx) {
		select {
		case <-done:
			return fmt.Errorf("%s: %w (exit code %d)%s", p.spec.Name, ErrExited, p.ExitCode(), p.logTail())
		case <-ctx.Done():
			return fmt.Errorf("%s not ready within %s: %w%s", p.spec.Name, timeout, ctx.Err(), p.logTail())
		case <-time.After(readyPoll):
		}
	}
	return nil
}

// logTail is the end of the child's log for an error message, or "".
func (p *Process) logTail() string {
	l := p.Logs()
	if l == "" {
		return ""
	}
	const keep = 4000
	if len(l) > keep {
		l = "…" + l[len(l)-keep:]
	}
	return "; log:\n" + l
}

// Name is the Spec's name.
func (p *Process) Name() string { return p.spec.Name }

// Done is closed when the current run of the child has exited.
func (p *Process) Done() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// Pid is the current run's process id.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// ExitCode is the exit code of the child once Done is closed, else -1.
func (p *Process) ExitCode() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	default:
		return -1
	}
}

// Stop ends the child gracefully (SIGTERM), kills it if it is still
// running after grace, and returns its exit code.
func (p *Process) Stop(grace time.Duration) int {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	select {
	case <-done:
		return p.ExitCode()
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
	}
	return p.ExitCode()
}

// Kill ends the child at once (SIGKILL): nothing is flushed or acked.
func (p *Process) Kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	_ = cmd.Process.Kill()
	<-done
}

// Logs is what the child wrote to its Log file so far ("" without one).
func (p *Process) Logs() string {
	if p.spec.Log == "" {
		return ""
	}
	b, _ := os.ReadFile(p.spec.Log)
	return string(b)
}
