package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/proc"
)

// env is the system under test: nats-server, receiver and processor
// processes, and this program's own NATS connection.
type env struct {
	dir                   string
	natsURL, webhook      string
	procs                 proc.Group
	server, recv, process *proc.Process
	nc                    *nats.Conn
	js                    jetstream.JetStream
}

func (e *env) stop() {
	if e.nc != nil {
		e.nc.Close()
	}
	e.procs.StopAll()
	_ = os.RemoveAll(e.dir)
}

func start(ctx context.Context, stderr io.Writer, o options) (*env, error) {
	dir, err := os.MkdirTemp("", "e2elatency-")
	if err != nil {
		return nil, err
	}
	e := &env{dir: dir}
	fail := func(err error) (*env, error) { e.stop(); return nil, err }
	builds := []string{"github.com/nats-io/nats-server/v2", "./cmd/receiver", "./cmd/processor"}
	receiverBin := filepath.Join(dir, "receiver")
	if o.receiver != "" {
		builds, receiverBin = []string{builds[0], builds[2]}, o.receiver
	}
	if err := proc.Build(ctx, ".", dir, stderr, builds...); err != nil {
		return fail(err)
	}
	// The binaries start once the server listens, so their start-up is quiet.
	e.server, e.natsURL, err = e.procs.StartJetStream(ctx, filepath.Join(dir, "nats-server"), dir, o.natsEnv)
	if err != nil {
		return fail(err)
	}
	var addrs []string
	e.recv, addrs, err = e.procs.StartOnFreeAddrs(ctx, 2, func(a []string) proc.Spec {
		return proc.Spec{
			Name: "receiver", Path: receiverBin, Output: stderr,
			Env: append([]string{"NATS_URL=" + e.natsURL, "LISTEN_ADDR=" + a[0], "ADMIN_ADDR=" + a[1],
				"GITHUB_WEBHOOK_SECRET=" + secret, "LOG_LEVEL=warn"}, o.recvEnv...),
			Ready: proc.HTTPReady("http://" + a[1] + "/readyz"), ReadyTimeout: readyTimeout,
		}
	})
	if err != nil {
		return fail(err)
	}
	e.webhook = addrs[0]
	e.process, _, err = e.procs.StartOnFreeAddrs(ctx, 1, func(a []string) proc.Spec {
		env := []string{"NATS_URL=" + e.natsURL, "ADMIN_ADDR=" + a[0], "LOG_LEVEL=warn", "ENRICH=never", "SINK_URL="}
		if o.workers > 0 {
			env = append(env, "PROCESSOR_WORKERS="+strconv.Itoa(o.workers))
		}
		return proc.Spec{
			Name: "processor", Path: filepath.Join(dir, "processor"), Output: stderr,
			Env:   append(env, o.procEnv...),
			Ready: proc.HTTPReady("http://" + a[0] + "/readyz"), ReadyTimeout: readyTimeout,
		}
	})
	if err != nil {
		return fail(err)
	}
	e.nc, err = nats.Connect(e.natsURL, nats.Name("e2elatency"))
	if err != nil {
		return fail(fmt.Errorf("connect: %w", err))
	}
	e.js, _ = jetstream.New(e.nc)
	return e, nil
}
