package webhook

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
	"github.com/ghas-relay/ghas-relay/internal/webhook/webhooktest"
)

// countingPublisher acks without copying, so allocations measured are the
// receiver's own.
type countingPublisher struct{ bytes int }

func (c *countingPublisher) PublishMsg(_ context.Context, m *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	c.bytes += len(m.Data)
	return &jetstream.PubAck{Stream: "GHAS_EVENTS"}, nil
}

// reusableBody replays the same bytes without allocating.
type reusableBody struct{ *bytes.Reader }

func (reusableBody) Close() error { return nil }

func paddedObject(size int) []byte {
	pad := strings.Repeat("a", size-len(`{"pad":""}`))
	return []byte(`{"pad":"` + pad + `"}`)
}

// BenchmarkLargeDelivery measures memory for one 25 MB delivery through the
// handler. x-body-alloc is bytes allocated per delivery over the payload
// size: the body must never be held more than twice.
func BenchmarkLargeDelivery(b *testing.B) {
	const size = 25_000_000
	payload := paddedObject(size)
	for _, tc := range []struct {
		name string
		body []byte
		ct   string
	}{
		{"json", payload, "application/json"},
		{"form", webhooktest.FormBody(payload), "application/x-www-form-urlencoded"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			pub := &countingPublisher{}
			h := NewHandler(slog.New(slog.DiscardHandler), pub, NewMetrics(metrics.NewRegistry()), Options{Secrets: ParseSecrets("s"), MaxBodyBytes: 26214400})
			sig := webhooktest.Sign("s", tc.body)
			req := httptest.NewRequest(http.MethodPost, Path, nil)
			req.Header.Set("Content-Type", tc.ct)
			req.Header.Set(HeaderGitHubEvent, "code_scanning_alert")
			req.Header.Set(HeaderGitHubDelivery, "d-large")
			req.Header.Set(HeaderSignature256, sig)
			req.ContentLength = int64(len(tc.body))
			rd := bytes.NewReader(tc.body)
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.body)))
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rd.Reset(tc.body)
				req.Body = reusableBody{rd}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusAccepted {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
			b.StopTimer()
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/float64(size), "x-body-alloc")
			if pub.bytes != b.N*len(payload) {
				b.Fatalf("published %d bytes, want %d", pub.bytes, b.N*len(payload))
			}
		})
	}
}

// BenchmarkLargeDeliveryNATS is the same through a real JetStream: the
// NATS client copies the payload once into its write buffer, so B/op here
// includes that copy (and the in-process server's own buffers).
func BenchmarkLargeDeliveryNATS(b *testing.B) {
	const size = 25_000_000
	payload := paddedObject(size)
	_, js := streamtest.Run(b).Connect()
	h := NewHandler(slog.New(slog.DiscardHandler), js, NewMetrics(metrics.NewRegistry()), Options{Secrets: ParseSecrets("s"), MaxBodyBytes: 26214400})
	req := httptest.NewRequest(http.MethodPost, Path, nil)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderGitHubEvent, "code_scanning_alert")
	req.Header.Set(HeaderSignature256, webhooktest.Sign("s", payload))
	req.ContentLength = int64(len(payload))
	rd := bytes.NewReader(payload)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for i := 0; i < b.N; i++ {
		rd.Reset(payload)
		req.Body = reusableBody{rd}
		req.Header.Set(HeaderGitHubDelivery, "d-large-"+strings.Repeat("x", i%7)+string(rune('a'+i%26)))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkHandler8K is the per-delivery cost of an 8 KB delivery with a
// publisher that does nothing: HTTP parsing aside, the receiver's own work.
func BenchmarkHandler8K(b *testing.B) {
	payload := paddedObject(8 << 10)
	h := NewHandler(slog.New(slog.DiscardHandler), &countingPublisher{}, NewMetrics(metrics.NewRegistry()), Options{Secrets: ParseSecrets("s"), MaxBodyBytes: 26214400})
	req := httptest.NewRequest(http.MethodPost, Path, nil)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderGitHubEvent, "code_scanning_alert")
	req.Header.Set(HeaderGitHubDelivery, "d")
	req.Header.Set(HeaderSignature256, webhooktest.Sign("s", payload))
	req.ContentLength = int64(len(payload))
	rd := bytes.NewReader(payload)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for i := 0; i < b.N; i++ {
		rd.Reset(payload)
		req.Body = reusableBody{rd}
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}

var _ io.Closer = reusableBody{}

// BenchmarkServe8K is one 8 KB delivery through the whole receiver path in
// one process: the HTTP listener with its timeouts, the handler and a real
// JetStream publish, from 32 concurrent clients. Profile it with
// -cpuprofile and look at net/http.(*conn).serve for the receiver's share
// (the process also runs the client and the NATS server).
func BenchmarkServe8K(b *testing.B) {
	payload := paddedObject(8 << 10)
	_, js := streamtest.Run(b).Connect()
	ctx := context.Background()
	if err := stream.Ensure(ctx, js, stream.Layout{Replicas: 1}); err != nil {
		b.Fatal(err)
	}
	h := NewHandler(slog.New(slog.DiscardHandler), js, NewMetrics(metrics.NewRegistry()), Options{Secrets: ParseSecrets("s"), MaxBodyBytes: 26214400})
	srv, err := Listen(slog.New(slog.DiscardHandler), "127.0.0.1:0", Routes(h), nil)
	if err != nil {
		b.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = srv.Serve(sctx) }()
	url := "http://" + srv.Addr().String() + Path
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	sig := webhooktest.Sign("s", payload)
	var seq atomic.Int64
	b.SetBytes(int64(len(payload)))
	b.SetParallelism(16) // 32 clients on 2 CPUs
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(payload))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(HeaderGitHubEvent, "code_scanning_alert")
			req.Header.Set(HeaderGitHubDelivery, "d-"+strconv.FormatInt(seq.Add(1), 10))
			req.Header.Set(HeaderSignature256, sig)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
