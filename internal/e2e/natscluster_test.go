package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/proc"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

var (
	natsBuildOnce sync.Once
	natsBuildErr  error
)

// natsServerBinary builds nats-server (the module's go tool) next to the
// other binaries, once per test run.
func natsServerBinary(t *testing.T) string {
	t.Helper()
	dir := binaries(t)
	natsBuildOnce.Do(func() {
		natsBuildErr = proc.Build(context.Background(), filepath.Join("..", ".."), dir, nil, "github.com/nats-io/nats-server/v2")
	})
	if natsBuildErr != nil {
		t.Fatal(natsBuildErr)
	}
	return filepath.Join(dir, "nats-server")
}

// natsCluster is a JetStream cluster of nats-server processes, each with
// its own store, that a test can kill, freeze and start again on the same
// ports and store.
type natsCluster struct {
	nodes []*proc.Process
	urls  []string
}

// startNATSCluster starts n nats-server processes routed to each other
// as one JetStream cluster, and waits until it takes the layout at R3.
func startNATSCluster(t *testing.T, dir string, n int) *natsCluster {
	t.Helper()
	bin := natsServerBinary(t)
	addrs, err := proc.FreeAddrs(2 * n)
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for i := range n {
		routes = append(routes, fmt.Sprintf("%q", "nats://"+addrs[n+i]))
	}
	c := &natsCluster{}
	for i := range n {
		name := fmt.Sprintf("nats-%d", i+1)
		conf := filepath.Join(dir, name+".conf")
		host, port, _ := strings.Cut(addrs[i], ":")
		chost, cport, _ := strings.Cut(addrs[n+i], ":")
		text := fmt.Sprintf(`server_name: %s
host: %s
port: %s
max_payload: 33554432
jetstream {
  store_dir: %q
  max_memory_store: 268435456
  max_file_store: 4294967296
}
cluster {
  name: ghas
  host: %s
  port: %s
  routes: [%s]
}
`, name, host, port, filepath.Join(dir, name), chost, cport, strings.Join(routes, ", "))
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := proc.Start(t.Context(), proc.Spec{Name: name, Path: bin, Args: []string{"-c", conf},
			Log: filepath.Join(dir, name+".log"), Ready: proc.Listening(addrs[i])})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Kill)
		c.nodes = append(c.nodes, p)
		c.urls = append(c.urls, "nats://"+addrs[i])
	}
	_, js := connect(t, c.URLs())
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := stream.Ensure(ctx, js, stream.Layout{Replicas: 3})
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("layout at R3 on the nats-server cluster: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	return c
}

// URLs is the comma-separated client URLs of every node.
func (c *natsCluster) URLs() string { return strings.Join(c.urls, ",") }

// healthy reports whether every stream and bucket of the layout has a
// leader and all its replicas current: after a node's restart, what a
// test waits for before it strikes again or checks the end state.
func healthy(ctx context.Context, js jetstream.JetStream) bool {
	names := []string{stream.EventsStream, stream.FindingsStream, stream.DLQStream, stream.FindingsKVStream, "KV_" + stream.StateBucket}
	for _, name := range names {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		if err != nil || info.Cluster == nil || info.Cluster.Leader == "" {
			return false
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current || r.Offline {
				return false
			}
		}
	}
	return true
}
