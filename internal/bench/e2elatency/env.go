package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// env is the system under test: nats-server, receiver and processor
// processes, and this program's own NATS connection.
type env struct {
	dir                       string
	natsURL, webhook          string
	recvAdmin, procAdmin      string
	natsCmd, recvCmd, procCmd *exec.Cmd
	nc                        *nats.Conn
	js                        jetstream.JetStream
}

func (e *env) stop() {
	if e.nc != nil {
		e.nc.Close()
	}
	for _, c := range []*exec.Cmd{e.procCmd, e.recvCmd, e.natsCmd} {
		if c != nil && c.Process != nil {
			_ = c.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { _ = c.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = c.Process.Kill()
				<-done
			}
		}
	}
	_ = os.RemoveAll(e.dir)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitReady(ctx context.Context, name, addr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 30s", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func start(ctx context.Context, stderr io.Writer, o options) (*env, error) {
	dir, err := os.MkdirTemp("", "e2elatency-")
	if err != nil {
		return nil, err
	}
	e := &env{dir: dir}
	fail := func(err error) (*env, error) { e.stop(); return nil, err }
	for _, b := range [][2]string{
		{"nats-server", "github.com/nats-io/nats-server/v2"},
		{"receiver", "./cmd/receiver"},
		{"processor", "./cmd/processor"},
	} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, b[0]), b[1])
		cmd.Stdout, cmd.Stderr = stderr, stderr
		if err := cmd.Run(); err != nil {
			return fail(fmt.Errorf("build %s (run from the module root): %w", b[1], err))
		}
	}
	var addrs [4]string
	for i := range addrs {
		if addrs[i], err = freeAddr(); err != nil {
			return fail(err)
		}
	}
	natsAddr := addrs[0]
	e.webhook, e.recvAdmin, e.procAdmin = addrs[1], addrs[2], addrs[3]
	host, port, _ := net.SplitHostPort(natsAddr)
	conf := fmt.Sprintf("listen: %s:%s\nmax_payload: 33554432\njetstream { store_dir: %q }\n", host, port, filepath.Join(dir, "js"))
	if err := os.WriteFile(filepath.Join(dir, "nats.conf"), []byte(conf), 0o600); err != nil {
		return fail(err)
	}
	e.natsURL = "nats://" + natsAddr
	e.natsCmd = exec.Command(filepath.Join(dir, "nats-server"), "-c", filepath.Join(dir, "nats.conf"))
	e.natsCmd.Env = append(os.Environ(), o.natsEnv...)
	if err := e.natsCmd.Start(); err != nil {
		return fail(fmt.Errorf("start nats-server: %w", err))
	}
	// Start the binaries once the server listens, so their start-up is quiet.
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", natsAddr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return fail(errors.New("nats-server not listening after 10s"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.recvCmd = exec.Command(filepath.Join(dir, "receiver"))
	e.recvCmd.Env = append(os.Environ(),
		"NATS_URL="+e.natsURL, "LISTEN_ADDR="+e.webhook, "ADMIN_ADDR="+e.recvAdmin,
		"GITHUB_WEBHOOK_SECRET="+secret, "LOG_LEVEL=warn")
	e.recvCmd.Env = append(e.recvCmd.Env, o.recvEnv...)
	e.recvCmd.Stderr = stderr
	if err := e.recvCmd.Start(); err != nil {
		return fail(fmt.Errorf("start receiver: %w", err))
	}
	e.procCmd = exec.Command(filepath.Join(dir, "processor"))
	e.procCmd.Env = append(os.Environ(),
		"NATS_URL="+e.natsURL, "ADMIN_ADDR="+e.procAdmin, "LOG_LEVEL=warn", "ENRICH=never", "SINK_URL=")
	if o.workers > 0 {
		e.procCmd.Env = append(e.procCmd.Env, "PROCESSOR_WORKERS="+strconv.Itoa(o.workers))
	}
	e.procCmd.Env = append(e.procCmd.Env, o.procEnv...)
	e.procCmd.Stderr = stderr
	if err := e.procCmd.Start(); err != nil {
		return fail(fmt.Errorf("start processor: %w", err))
	}
	if err := waitReady(ctx, "receiver", e.recvAdmin); err != nil {
		return fail(err)
	}
	if err := waitReady(ctx, "processor", e.procAdmin); err != nil {
		return fail(err)
	}
	e.nc, err = nats.Connect(e.natsURL, nats.Name("e2elatency"))
	if err != nil {
		return fail(err)
	}
	e.js, _ = jetstream.New(e.nc)
	return e, nil
}
