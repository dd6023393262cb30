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
