// Package admin owns the admin HTTP surface every binary serves:
// GET /healthz (process alive), GET /readyz (dependencies ready, 503
// otherwise) and GET /metrics (Prometheus text format: the binary's
// metrics, then the process's go_goroutines and go_gc_heap_live_bytes).
package admin

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/metrics"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/group"
	relaymetrics "github.com/ghas-relay/ghas-relay/internal/metrics"
)

// ReadyFunc reports whether the binary is ready to do its work.
type ReadyFunc func(ctx context.Context) error

// Handler returns the admin routes.
func Handler(reg *relaymetrics.Registry, ready ReadyFunc) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := ready(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready:", err)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = reg.WriteTo(w)
		// Prometheus' own name for it: a goroutine leak is a slope here.
		fmt.Fprintf(w, "# HELP go_goroutines Number of goroutines that currently exist.\n# TYPE go_goroutines gauge\ngo_goroutines %d\n", runtime.NumGoroutine())
		// The heap the last garbage collection found live (Prometheus'
		// Go collector's name), read without stopping the world: unlike
		// RSS it does not follow the collector's pacing, so a slope here
		// is memory held.
		live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(live)
		if live[0].Value.Kind() == metrics.KindUint64 {
			fmt.Fprintf(w, "# HELP go_gc_heap_live_bytes Heap memory occupied by live objects that were marked by the previous GC.\n# TYPE go_gc_heap_live_bytes gauge\ngo_gc_heap_live_bytes %d\n", live[0].Value.Uint64())
		}
	})
	return mux
}

// Listen binds addr and returns the admin listener; it shuts down within
// five seconds.
func Listen(logger *slog.Logger, addr string, h http.Handler) (*group.Server, error) {
	return group.Listen(logger, "admin", addr, &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
	}, 5*time.Second)
}
