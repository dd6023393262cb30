package admin

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/metrics"
)

func TestEndpoints(t *testing.T) {
	reg := metrics.NewRegistry()
	reg.NewCounterVec("ghas_x_total", "x", "a").Inc("b")
	var notReady error = errors.New("nats not connected")
	srv := httptest.NewServer(Handler(reg, func(context.Context) error { return notReady }))
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("healthz = %d", code)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "nats not connected") {
		t.Errorf("readyz not ready = %d %q", code, body)
	}
	notReady = nil
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("readyz ready = %d", code)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, `ghas_x_total{a="b"} 1`) || !strings.Contains(body, "\ngo_goroutines ") {
		t.Errorf("metrics = %d %q", code, body)
	}
	runtime.GC() // the live heap is known after a collection
	_, body := get("/metrics")
	i := strings.Index(body, "\ngo_gc_heap_live_bytes ")
	if i < 0 {
		t.Fatalf("no go_gc_heap_live_bytes in %q", body)
	}
	line := strings.TrimSpace(body[i+1:])
	line = strings.SplitN(line, "\n", 2)[0]
	if n, err := strconv.ParseUint(strings.Fields(line)[1], 10, 64); err != nil || n == 0 {
		t.Errorf("go_gc_heap_live_bytes line %q: %d, %v", line, n, err)
	}
}
