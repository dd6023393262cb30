package streamtest

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// Cluster is a JetStream cluster of in-process servers on loopback, each
// with its own store, that a test can stop and restart one by one.
type Cluster struct {
	t       testing.TB
	Servers []*Server
}

// RunCluster starts n servers routed to each other as one JetStream
// cluster and waits until it has a meta leader.
//
// Ports are chosen free a moment before the servers bind them, so another
// process may take one in between (tests of other packages run in
// parallel); a cluster whose servers do not all come up is shut down and
// started again on new ports.
func RunCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	const attempts = 3
	for attempt := 1; ; attempt++ {
		c, notReady := startCluster(t, n)
		if notReady == "" {
			c.WaitLeader()
			return c
		}
		for _, s := range c.Servers {
			s.Shutdown()
		}
		if attempt == attempts {
			t.Fatalf("nats server %s not ready (%d attempts)", notReady, attempts)
		}
		t.Logf("nats server %s not ready; starting the cluster again on new ports", notReady)
	}
}

// startCluster starts n servers and returns the name of the first one that
// did not become ready ("" when all did).
func startCluster(t testing.TB, n int) (*Cluster, string) {
	t.Helper()
	c := &Cluster{t: t}
	clusterPorts := make([]int, n)
	for i := range clusterPorts {
		clusterPorts[i] = freePort(t)
	}
	var routes []*url.URL
	for _, p := range clusterPorts {
		u, _ := url.Parse(fmt.Sprintf("nats://127.0.0.1:%d", p))
		routes = append(routes, u)
	}
	for i := 0; i < n; i++ {
		s := &Server{t: t, opts: server.Options{
			ServerName:         fmt.Sprintf("n%d", i+1),
			Host:               "127.0.0.1",
			Port:               freePort(t),
			JetStream:          true,
			StoreDir:           t.TempDir(),
			NoLog:              true,
			NoSigs:             true,
			JetStreamMaxMemory: 256 << 20,
			JetStreamMaxStore:  8 << 30,
			MaxPayload:         32 << 20,
			Cluster: server.ClusterOpts{
				Name: "ghas",
				Host: "127.0.0.1",
				Port: clusterPorts[i],
			},
			Routes: routes,
		}}
		c.Servers = append(c.Servers, s)
	}
	for _, s := range c.Servers {
		// Start each server without waiting for JetStream: a clustered
		// JetStream is only ready once a quorum of routes is up.
		srv, err := server.NewServer(&s.opts)
		if err != nil {
			t.Fatalf("new nats server: %v", err)
		}
		go srv.Start()
		s.srv = srv
		t.Cleanup(s.Shutdown)
	}
	for _, s := range c.Servers {
		if !s.srv.ReadyForConnections(20 * time.Second) {
			return c, s.opts.ServerName
		}
	}
	return c, ""
}

// URLs is the comma-separated client URLs of every server.
func (c *Cluster) URLs() string {
	var us []string
	for _, s := range c.Servers {
		us = append(us, s.URL())
	}
	return strings.Join(us, ",")
}

// WaitLeader waits until the running servers agree on a JetStream meta
// leader and answer JetStream API requests.
func (c *Cluster) WaitLeader() {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range c.Servers {
			if s.srv != nil && s.srv.JetStreamIsLeader() {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatal("no JetStream meta leader within 30s")
}

// Connect returns a client connection to the cluster with the layout
// ensured at the given replicas.
func (c *Cluster) Connect(replicas int) (*nats.Conn, jetstream.JetStream) {
	c.t.Helper()
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		c.t.Fatalf("connect nats: %v", err)
	}
	c.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		c.t.Fatalf("jetstream: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = stream.Ensure(ctx, js, stream.Layout{Replicas: replicas})
		cancel()
		if err == nil {
			return nc, js
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("ensure layout: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
