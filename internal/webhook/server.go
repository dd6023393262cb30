package webhook

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/group"
)

// Listener timeouts: a slow client cannot hold a connection open. Reading a
// 25 MiB body needs well under ReadTimeout on any link GitHub uses;
// WriteTimeout covers the read plus the 5 s publish.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 60 * time.Second
	WriteTimeout      = 75 * time.Second
	IdleTimeout       = 120 * time.Second
	MaxHeaderBytes    = 64 << 10
	// ShutdownTimeout bounds how long in-flight requests may finish after
	// shutdown starts.
	ShutdownTimeout = 30 * time.Second
)

// Server is the public webhook listener.
type Server struct {
	logger *slog.Logger
	ln     net.Listener
	srv    *http.Server
}

// Listen binds addr and returns a server that Serve runs.
func Listen(logger *slog.Logger, addr string, h http.Handler) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("webhook listen %s: %w", addr, err)
	}
	return &Server{logger: logger, ln: ln, srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}}, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close releases the listener of a server that is not serving (when a
// later startup step failed).
func (s *Server) Close() error { return s.ln.Close() }

// Serve serves until ctx ends, then stops accepting and lets in-flight
// requests finish (at most ShutdownTimeout).
func (s *Server) Serve(ctx context.Context) error {
	return group.ServeHTTP(ctx, s.logger, "webhook", s.srv, s.ln, ShutdownTimeout)
}
