package sink_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/sink"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

// The sink answers every first attempt with a redirect (301, 302, 303, 307,
// 308) to another server, then accepts. The other server sees no request
// at all (so no finding and no bearer token leaves for it); each redirect
// is a failed attempt that is retried, never a delivery and never a dead
// letter; every finding arrives once. The caller's client, which would
// follow redirects, is left as it was.
func TestRedirectIsNeverFollowed(t *testing.T) {
	srv := streamtest.Run(t)
	_, js := srv.Connect()

	var (
		mu     sync.Mutex
		stolen []string
	)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		stolen = append(stolen, r.Method+" "+r.URL.Path+" Authorization="+r.Header.Get("Authorization"))
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer other.Close()

	codes := []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect}
	redirectOf := map[string]int{}
	attempts := map[string]int{}
	fs := &fakeSink{answer: func(r request, _ int) (int, string) {
		attempts[r.key]++
		if attempts[r.key] == 1 {
			return redirectOf[r.finding], ""
		}
		return http.StatusOK, ""
	}}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", other.URL+"/steal")
		fs.ServeHTTP(w, r)
	}))
	defer hs.Close()

	for i, code := range codes {
		key := fmt.Sprintf("sast.77.%d", i)
		redirectOf[key] = code
		publish(t, js, key, 1)
	}

	// A client as a caller would make it: it follows redirects.
	client := &http.Client{Timeout: 5 * time.Second}
	reg := metrics.NewRegistry()
	f, err := sink.New(discard(), js, client, reg, testConfig(hs.URL+"/findings"))
	if err != nil {
		t.Fatal(err)
	}
	if client.CheckRedirect != nil {
		t.Errorf("New changed the caller's client")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	streamtest.WaitFor(t, 20*time.Second, "every finding settled", func() bool { return settled(t, js, sink.DefaultDurable) })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}

	mu.Lock()
	if len(stolen) > 0 {
		t.Errorf("the redirect target received %d requests: %v", len(stolen), stolen)
	}
	mu.Unlock()
	byStatus := map[int]int{}
	for _, rq := range fs.requests() {
		byStatus[rq.status]++
		if rq.auth != "Bearer "+testToken {
			t.Errorf("sink got Authorization %q", rq.auth)
		}
	}
	for _, code := range codes {
		if byStatus[code] != 1 {
			t.Errorf("%d answered %d times, want 1", code, byStatus[code])
		}
	}
	for key, n := range countByKey(fs.delivered()) {
		if n != 1 {
			t.Errorf("%s delivered %d times, want 1", key, n)
		}
	}
	if got := len(countByKey(fs.delivered())); got != len(codes) {
		t.Errorf("delivered %d findings, want %d", got, len(codes))
	}
	var m bytes.Buffer
	if _, err := reg.WriteTo(&m); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		fmt.Sprintf(`ghas_sink_requests_total{result="retry"} %d`, len(codes)),
		fmt.Sprintf(`ghas_sink_requests_total{result="delivered"} %d`, len(codes)),
		fmt.Sprintf(`ghas_sink_messages_total{outcome="delivered"} %d`, len(codes)),
	} {
		if !strings.Contains(m.String(), line) {
			t.Errorf("metrics lack %q:\n%s", line, m.String())
		}
	}
	if strings.Contains(m.String(), `outcome="dlq"`) {
		t.Errorf("a redirect was dead-lettered:\n%s", m.String())
	}
	dlq, err := js.Stream(context.Background(), stream.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := dlq.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Errorf("GHAS_DLQ holds %d messages, want 0", info.State.Msgs)
	}
}

// A token that cannot be an HTTP header value is refused by New.
func TestNewRejectsTokenWithControlCharacters(t *testing.T) {
	srv := streamtest.Run(t)
	_, js := srv.Connect()
	client := &http.Client{Timeout: time.Second}
	for _, tok := range []string{"abc\ndef", "abc\r\nX-Evil: 1", "tok\x00", "tok\x7f", "\ttok"} {
		if _, err := sink.New(discard(), js, client, metrics.NewRegistry(), sink.Config{URL: "http://sink.example/x", Token: tok}); err == nil {
			t.Errorf("New accepted token %q", tok)
		} else if strings.Contains(err.Error(), "tok") && strings.Contains(err.Error(), tok) {
			t.Errorf("error shows the token: %v", err)
		}
	}
	if _, err := sink.New(discard(), js, client, metrics.NewRegistry(), sink.Config{URL: "http://sink.example/x", Token: "good-token_1.2~+/="}); err != nil {
		t.Errorf("New refused a valid token: %v", err)
	}
}
