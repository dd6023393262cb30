package webhook

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/fastlane"
	"github.com/ghas-relay/ghas-relay/internal/group"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
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
	// DefaultFastLaneBuffers bounds the fast lane's read buffers to 16 MiB.
	DefaultFastLaneBuffers = 1024
)

// Listen binds addr and returns the public webhook listener, with the
// timeouts above. POST /webhook requests of the plain shape GitHub sends
// are served by the fast lane (package fastlane) in front of net/http,
// when maxHeads (the lane's head buffers in use at once) is positive;
// outcomes (may be nil) counts what the lane did.
func Listen(logger *slog.Logger, addr string, h http.Handler, maxHeads int, outcomes *metrics.CounterVec) (*group.Server, error) {
	srv, err := group.Listen(logger, "webhook", addr, &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}, ShutdownTimeout)
	if err == nil && maxHeads > 0 {
		srv.Front(fastlane.New(logger, srv.HTTP(), Path, maxHeads, outcomes))
	}
	return srv, err
}
