// Package streamtest runs real in-process NATS servers with JetStream for
// tests: one server or a cluster on loopback, each with its store in a test
// temporary directory, that a test can stop and restart on the same port and
// store to break the world.
package streamtest

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// Server is one in-process JetStream server.
type Server struct {
	t    testing.TB
	opts server.Options
	srv  *server.Server
}

// Run starts a JetStream server on a free loopback port with its store in
// t.TempDir(). It is shut down when the test ends.
func Run(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, opts: server.Options{
		Host:      "127.0.0.1",
		Port:      freePort(t),
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
		// Generous limits: benchmarks push hundreds of MB through.
		JetStreamMaxMemory: 1 << 30,
		JetStreamMaxStore:  64 << 30,
		MaxPayload:         32 << 20,
	}}
	s.Start()
	t.Cleanup(s.Shutdown)
	return s
}

// Start starts (or restarts) the server on its port and store.
func (s *Server) Start() {
	s.t.Helper()
	opts := s.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		s.t.Fatalf("new nats server: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		s.t.Fatalf("nats server not ready")
	}
	// Wait until JetStream answers API requests.
	deadline := time.Now().Add(10 * time.Second)
	for !srv.JetStreamEnabled() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	s.srv = srv
}

// Shutdown stops the server; Start brings it back with the same store.
func (s *Server) Shutdown() {
	if s.srv == nil {
		return
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.srv = nil
}

// Running reports whether the server is up.
func (s *Server) Running() bool { return s.srv != nil }

// URL is the client URL of the server.
func (s *Server) URL() string { return fmt.Sprintf("nats://%s:%d", s.opts.Host, s.opts.Port) }

// StoreDir is the server's JetStream store directory.
func (s *Server) StoreDir() string { return s.opts.StoreDir }

// Connect returns a client connection and JetStream context with the
// ghas-relay layout ensured, closed when the test ends.
func (s *Server) Connect() (*nats.Conn, jetstream.JetStream) {
	s.t.Helper()
	nc, err := nats.Connect(s.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		s.t.Fatalf("connect nats: %v", err)
	}
	s.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		s.t.Fatalf("jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := stream.Ensure(ctx, js, stream.Layout{Replicas: 1}); err != nil {
		s.t.Fatalf("ensure layout: %v", err)
	}
	return nc, js
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int { return freePort(t) }
