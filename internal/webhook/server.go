package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
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
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	s.logger.Info("webhook listening", slog.String("addr", s.ln.Addr().String()))
	select {
	case err := <-errc:
		return fmt.Errorf("webhook serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("webhook shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("webhook serve: %w", err)
	}
	return nil
}
