package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/logging"
)

// ServeHTTP runs srv on ln until ctx ends, then stops accepting and lets
// in-flight requests finish for at most grace. name labels the log line
// and errors ("webhook", "admin").
func ServeHTTP(ctx context.Context, logger *slog.Logger, name string, srv *http.Server, ln net.Listener, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info(name+" listening", slog.String(logging.KeyAddr, ln.Addr().String()))
	select {
	case err := <-errc:
		return fmt.Errorf("%s serve: %w", name, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("%s shutdown: %w", name, err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("%s serve: %w", name, err)
	}
	return nil
}

// Server is an HTTP listener bound at start (so a busy port fails the
// start, naming the address) and served as a group component: the
// webhook and admin listeners of every binary are one.
type Server struct {
	name   string
	logger *slog.Logger
	ln     net.Listener
	srv    *http.Server
	grace  time.Duration
}

// Listen binds addr for srv (its Handler and timeouts set by the caller)
// and returns the server; name labels logs and errors, grace bounds the
// wait for in-flight requests at shutdown.
func Listen(logger *slog.Logger, name, addr string, srv *http.Server, grace time.Duration) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s listen %s: %w", name, addr, err)
	}
	return &Server{name: name, logger: logger, ln: ln, srv: srv, grace: grace}, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close releases the listener of a server that is not serving (when a
// later startup step failed).
func (s *Server) Close() error { return s.ln.Close() }

// Serve serves until ctx ends, then stops accepting and lets in-flight
// requests finish for at most the grace period.
func (s *Server) Serve(ctx context.Context) error {
	return ServeHTTP(ctx, s.logger, s.name, s.srv, s.ln, s.grace)
}

// HTTP is the configuration the server serves with (handler, timeouts).
func (s *Server) HTTP() *http.Server { return s.srv }
