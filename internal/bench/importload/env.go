package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/proc"
)

// env is the system under test: a nats-server process and a receiver
// process that takes imports.
type env struct {
	dir, natsURL, listen string
	procs                proc.Group
	recv                 *proc.Process
}

func (e *env) stop() {
	e.procs.StopAll()
	_ = os.RemoveAll(e.dir)
}

func start(ctx context.Context, stderr io.Writer) (*env, error) {
	dir, err := os.MkdirTemp("", "importload-")
	if err != nil {
		return nil, err
	}
	e := &env{dir: dir}
	fail := func(err error) (*env, error) { e.stop(); return nil, err }
	if err := proc.Build(ctx, ".", dir, stderr, "github.com/nats-io/nats-server/v2", "./cmd/receiver"); err != nil {
		return fail(err)
	}
	_, e.natsURL, err = e.procs.StartJetStream(ctx, filepath.Join(dir, "nats-server"), dir, nil)
	if err != nil {
		return fail(err)
	}
	var addrs []string
	e.recv, addrs, err = e.procs.StartOnFreeAddrs(ctx, 2, func(a []string) proc.Spec {
		return proc.Spec{
			Name: "receiver", Path: filepath.Join(dir, "receiver"), Output: stderr,
			Env: []string{"NATS_URL=" + e.natsURL, "LISTEN_ADDR=" + a[0], "ADMIN_ADDR=" + a[1],
				"GITHUB_WEBHOOK_SECRET=bench", "IMPORT_TOKENS=" + token, "MAX_BODY_BYTES=33000000", "LOG_LEVEL=warn"},
			Ready: proc.HTTPReady("http://" + a[1] + "/readyz"), ReadyTimeout: 30 * time.Second,
		}
	})
	if err != nil {
		return fail(err)
	}
	e.listen = addrs[0]
	return e, nil
}
