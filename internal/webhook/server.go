package webhook

import (
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/group"
)

// Listener timeouts: a slow client cannot hold a connection open. Reading a
// 25 MiB body needs well under ReadTimeout on any link GitHub uses;
// WriteTimeout covers the read plus the 5 s publish. They are the
// listener's, shared with the routes beside /webhook (imports); the
// webhook handler holds its own bodies to a shorter deadline
// (Options.BodyTimeout).
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

// Listen binds addr and returns the public listener, a net/http server
// with the timeouts above. m (may be nil) counts its open connections in
// ghas_receiver_connections.
func Listen(logger *slog.Logger, addr string, h http.Handler, m *Metrics) (*group.Server, error) {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if m != nil {
		conns := newLevel(m.Connections)
		srv.ConnState = func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				conns.add(1)
			case http.StateClosed, http.StateHijacked: // each connection ends in one of them, once
				conns.add(-1)
			}
		}
	}
	return group.Listen(logger, "webhook", addr, srv, ShutdownTimeout)
}
