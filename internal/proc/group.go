package proc

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Group owns several children: it writes each one's log to LogDir and
// stops them all, newest first.
type Group struct {
	// LogDir receives <name>.log of every child whose Spec has no Log and
	// no Output; "": such children's output is discarded.
	LogDir string
	// Grace is how long StopAll waits after SIGTERM before SIGKILL; 0: 10 s.
	Grace time.Duration

	mu   sync.Mutex
	list []*Process
}

// Start starts s as a member of the group (see Start).
func (g *Group) Start(ctx context.Context, s Spec) (*Process, error) {
	p, err := Start(ctx, g.withLog(s))
	if p != nil {
		g.add(p)
	}
	return p, err
}

// StartOnFreeAddrs starts a member of the group on fresh loopback
// addresses (see StartOnFreeAddrs).
func (g *Group) StartOnFreeAddrs(ctx context.Context, n int, spec func(addrs []string) Spec) (*Process, []string, error) {
	p, addrs, err := StartOnFreeAddrs(ctx, n, func(addrs []string) Spec { return g.withLog(spec(addrs)) })
	if p != nil {
		g.add(p)
	}
	return p, addrs, err
}

func (g *Group) withLog(s Spec) Spec {
	if s.Log == "" && s.Output == nil && g.LogDir != "" {
		s.Log = filepath.Join(g.LogDir, s.Name+".log")
		_ = os.Remove(s.Log) // a new run of the group starts a new log
	}
	return s
}

func (g *Group) add(p *Process) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.list = append(g.list, p)
}

// StopAll stops every member, newest first: SIGTERM, then SIGKILL after
// Grace.
func (g *Group) StopAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	grace := g.Grace
	if grace <= 0 {
		grace = 10 * time.Second
	}
	for i := len(g.list) - 1; i >= 0; i-- {
		g.list[i].Stop(grace)
	}
	g.list = nil
}
