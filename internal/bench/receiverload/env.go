package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/proc"
)

// env is the system under test: a nats-server process and a receiver process.
type env struct {
	dir              string
	natsURL, webhook string
	procs            proc.Group
	server, recv     *proc.Process
	floor            *proc.Process // nil without -floor
	floorURL         string        // the net/http floor
	pacedURL         string        // the floor process's paced publisher
	nc               *nats.Conn
	js               jetstream.JetStream
}

func (e *env) stop() {
	if e.nc != nil {
		e.nc.Close()
	}
	e.procs.StopAll()
	_ = os.RemoveAll(e.dir)
}

func start(ctx context.Context, stderr io.Writer, o options) (*env, error) {
	dir, err := os.MkdirTemp("", "receiverload-")
	if err != nil {
		return nil, err
	}
	e := &env{dir: dir}
	fail := func(err error) (*env, error) { e.stop(); return nil, err }
	builds := []string{"github.com/nats-io/nats-server/v2", "./cmd/receiver"}
	receiverBin := filepath.Join(dir, "receiver")
	if o.receiver != "" {
		builds, receiverBin = builds[:1], o.receiver
	}
	if o.floor {
		builds = append(builds, "./internal/bench/httpfloor")
	}
	if err := proc.Build(ctx, ".", dir, stderr, builds...); err != nil {
		return fail(err)
	}
	e.server, e.natsURL, err = e.procs.StartJetStream(ctx, filepath.Join(dir, "nats-server"), dir, nil)
	if err != nil {
		return fail(err)
	}
	var addrs []string
	e.recv, addrs, err = e.procs.StartOnFreeAddrs(ctx, 2, func(a []string) proc.Spec {
		return proc.Spec{
			Name: "receiver", Path: receiverBin, Output: stderr,
			Env: []string{"NATS_URL=" + e.natsURL, "LISTEN_ADDR=" + a[0], "ADMIN_ADDR=" + a[1],
				"GITHUB_WEBHOOK_SECRET=" + secret, "LOG_LEVEL=warn"},
			Ready: proc.HTTPReady("http://" + a[1] + "/readyz"), ReadyTimeout: 30 * time.Second,
		}
	})
	if err != nil {
		return fail(err)
	}
	e.webhook = addrs[0]
	if o.floor {
		// Started after the receiver, which creates the stream it publishes to.
		e.floor, addrs, err = e.procs.StartOnFreeAddrs(ctx, 2, func(a []string) proc.Spec {
			return proc.Spec{
				Name: "httpfloor", Path: filepath.Join(dir, "httpfloor"), Output: stderr,
				Env:   []string{"NATS_URL=" + e.natsURL, "LISTEN_ADDR=" + a[0], "ADMIN_ADDR=" + a[1]},
				Ready: proc.HTTPReady("http://" + a[1] + "/readyz"), ReadyTimeout: 30 * time.Second,
			}
		})
		if err != nil {
			return fail(err)
		}
		e.floorURL = "http://" + addrs[0] + "/webhook"
		e.pacedURL = "http://" + addrs[1] + "/paced"
	}
	e.nc, err = nats.Connect(e.natsURL)
	if err != nil {
		return fail(err)
	}
	e.js, _ = jetstream.New(e.nc)
	return e, nil
}
