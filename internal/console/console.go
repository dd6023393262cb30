// Package console owns the console's HTTP surface: the JSON API
// (package api) and the pages (package page) on one mux behind the token
// check, the request metrics, the listener rule (no tokens, loopback
// only), and the Store that reads documents and revisions from NATS. The
// index it answers from is package index.
package console

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/console/api"
	"github.com/ghas-relay/ghas-relay/internal/console/index"
	"github.com/ghas-relay/ghas-relay/internal/console/page"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/tokens"
)

// Metrics are the console's own metrics.
type Metrics struct {
	requests *metrics.CounterVec
	duration *metrics.Histogram
}

// NewMetrics registers the request metrics and those of the index and
// its reader: how far the index trails KV (ghas_console_lag_seconds, for
// the "console behind" alert), its size and readiness.
func NewMetrics(reg *metrics.Registry, ix *index.Index, rd *index.Reader) *Metrics {
	gauge := func(name, help string, v func() float64) {
		reg.NewGaugeFunc(name, help, nil, func() []metrics.GaugeSample { return []metrics.GaugeSample{{Value: v()}} })
	}
	gauge("ghas_console_lag_seconds", "How long the console's index has been behind KV ghas_findings: since when a revision the index has not applied was first seen (0: caught up).",
		func() float64 { return rd.Lag().Seconds() })
	gauge("ghas_console_ready", "1 once the index loaded KV ghas_findings and read the history of GHAS_FINDINGS, else 0.", func() float64 {
		if ix.Ready() {
			return 1
		}
		return 0
	})
	gauge("ghas_console_findings", "Findings in the console's index.", func() float64 { return float64(ix.Stats().Findings) })
	gauge("ghas_console_revisions", "Finding revisions of the last 30 days in the console's index.", func() float64 { return float64(ix.Stats().Revisions) })
	gauge("ghas_console_history_pending", "GHAS_FINDINGS messages still to read when the console read its last one.", func() float64 { return float64(rd.HistoryPending()) })
	gauge("ghas_console_skipped", "KV values and GHAS_FINDINGS messages the console skipped: not finding documents it can hold.", func() float64 { return float64(rd.Skipped()) })
	return &Metrics{
		requests: reg.NewCounterVec("ghas_console_requests_total", "Console requests answered, by route and status code.", "route", "code"),
		duration: reg.NewHistogram("ghas_console_request_duration_seconds", "Time to answer a console request.", metrics.DefaultBuckets),
	}
}

// Handler returns the console's routes: the API and the pages, behind
// the tokens (none: open, on a loopback address).
func Handler(logger *slog.Logger, ix *index.Index, store api.Store, set tokens.Set, m *Metrics, now func() time.Time) (http.Handler, error) {
	mux := http.NewServeMux()
	a := api.New(logger, ix, store, now)
	a.Register(mux)
	pages, err := page.New(logger, ix, a, now)
	if err != nil {
		return nil, err
	}
	pages.Register(mux)
	return RequireToken(set, instrument(mux, m)), nil
}

// instrument counts each request by the route pattern it matched.
func instrument(mux *http.ServeMux, m *Metrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		mux.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "other"
		}
		if m != nil {
			m.requests.Inc(route, strconv.Itoa(sw.status))
			m.duration.Observe(time.Since(start).Seconds())
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// ListenAllowed reports whether the console may listen on addr without
// tokens: only on a loopback address (127.0.0.0/8, ::1, localhost), so
// that an open console is reachable from its own host alone.
func ListenAllowed(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%q is not a loopback address: without CONSOLE_TOKENS the console listens on 127.0.0.1 or ::1 only", addr)
}
