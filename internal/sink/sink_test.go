package sink_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/logging/loggingtest"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/sink"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

const testToken = "s3cret-token-value"

// request is one request the fake sink received.
type request struct {
	at       time.Time
	key      string // Idempotency-Key
	finding  string // Ghas-Finding-Key
	auth     string
	ctype    string
	body     []byte
	status   int
	retryAft string
}

// fakeSink is an httptest sink whose answers a test decides per request.
type fakeSink struct {
	mu     sync.Mutex
	reqs   []request
	answer func(r request, n int) (status int, retryAfter string) // n: requests so far, this one included
}

func (s *fakeSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rq := request{
		at: time.Now(), key: r.Header.Get("Idempotency-Key"), finding: r.Header.Get("Ghas-Finding-Key"),
		auth: r.Header.Get("Authorization"), ctype: r.Header.Get("Content-Type"), body: body,
	}
	s.mu.Lock()
	n := len(s.reqs) + 1
	status, ra := http.StatusOK, ""
	if s.answer != nil {
		status, ra = s.answer(rq, n)
	}
	rq.status, rq.retryAft = status, ra
	s.reqs = append(s.reqs, rq)
	s.mu.Unlock()
	if ra != "" {
		w.Header().Set("Retry-After", ra)
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, "status %d", status)
}

func (s *fakeSink) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.reqs...)
}

// delivered returns the 2xx requests in arrival order.
func (s *fakeSink) delivered() []request {
	var out []request
	for _, r := range s.requests() {
		if r.status >= 200 && r.status < 300 {
			out = append(out, r)
		}
	}
	return out
}

func (s *fakeSink) setAnswer(f func(r request, n int) (int, string)) {
	s.mu.Lock()
	s.answer = f
	s.mu.Unlock()
}

// testConfig retries fast so tests take seconds.
func testConfig(url string) sink.Config {
	return sink.Config{
		URL:            url,
		Token:          testToken,
		Lanes:          4,
		AckWait:        3 * time.Second,
		RetryFor:       time.Second,
		RetryInitial:   20 * time.Millisecond,
		RetryMax:       200 * time.Millisecond,
		RequestTimeout: 2 * time.Second,
		BusyDelay:      100 * time.Millisecond,
		FetchWait:      time.Second,
	}
}

type running struct {
	f    *sink.Forwarder
	reg  *metrics.Registry
	stop func() // cancels Run and waits for it, failing on a non-nil error
}

func start(t *testing.T, js jetstream.JetStream, logger *slog.Logger, cfg sink.Config) running {
	t.Helper()
	reg := metrics.NewRegistry()
	client := &http.Client{Timeout: 5 * time.Second}
	f, err := sink.New(logger, js, client, reg, cfg)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("run did not stop within 10s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return running{f: f, reg: reg, stop: stop}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// publish publishes version v of finding key (in repository repo) and
// returns its message id.
func publish(t *testing.T, js jetstream.JetStream, key string, v int) string {
	t.Helper()
	id := fmt.Sprintf("%s:v%d", key, v)
	// As the processor does: a revision of the KV key, which GHAS_FINDINGS
	// copies to ghas.findings.<type>.<repository_id>.
	m := nats.NewMsg(stream.FindingsKVPrefix + key)
	m.Header.Set(stream.HeaderMsgID, id)
	m.Header.Set(stream.HeaderFindingKey, key)
	m.Data = fmt.Appendf(nil, `{"schemaVersion":1,"findingKey":%q,"version":%d}`, key, v)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatalf("publish %s: %v", id, err)
	}
	// Wait until GHAS_FINDINGS has copied it, so "settled" means delivered.
	streamtest.WaitFor(t, 10*time.Second, "the finding on GHAS_FINDINGS", func() bool {
		ok, _ := stream.FindingsCaughtUp(ctx, js)
		return ok
	})
	return id
}

// settled reports whether the consumer has nothing pending or unacked.
func settled(t *testing.T, js jetstream.JetStream, durable string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, stream.FindingsStream, durable)
	if err != nil {
		return false
	}
	info, err := c.Info(ctx)
	if err != nil {
		return false
	}
	return info.NumPending == 0 && info.NumAckPending == 0
}

func consumerInfo(t *testing.T, js jetstream.JetStream, durable string) *jetstream.ConsumerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := js.Consumer(ctx, stream.FindingsStream, durable)
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatalf("consumer info: %v", err)
	}
	return info
}

// countByKey counts 2xx requests per idempotency key.
func countByKey(rs []request) map[string]int {
	m := map[string]int{}
	for _, r := range rs {
		m[r.key]++
	}
	return m
}

// The scenario: the sink answers 500 and 429 with Retry-After for
// a while, then 200. Every finding arrives, each idempotency key exactly
// once among the successes; Retry-After is honoured both when it fits in
// the in-process backoff (RetryMax 2s) and when JetStream's delayed
// redelivery takes over (RetryMax 200ms).
func TestFailuresThenSuccessDeliverEveryFindingOnce(t *testing.T) {
	for _, retryMax := range []time.Duration{2 * time.Second, 200 * time.Millisecond} {
		t.Run("RetryMax="+retryMax.String(), func(t *testing.T) {
			srv := streamtest.Run(t)
			_, js := srv.Connect()
			fs := &fakeSink{answer: func(_ request, n int) (int, string) {
				switch {
				case n <= 6:
					return http.StatusInternalServerError, ""
				case n <= 10:
					return http.StatusTooManyRequests, "1"
				}
				return http.StatusOK, ""
			}}
			hs := httptest.NewServer(fs)
			defer hs.Close()

			var logs loggingtest.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			want := map[string][]byte{}
			for i := range 20 {
				id := publish(t, js, fmt.Sprintf("sast.1296269.%d", i), 1)
				want[id] = fmt.Appendf(nil, `{"schemaVersion":1,"findingKey":"sast.1296269.%d","version":1}`, i)
			}
			// An asset message shares the stream but is not forwarded.
			if _, err := js.Publish(context.Background(), stream.AssetSubject(1296269), []byte(`{"asset":true}`)); err != nil {
				t.Fatal(err)
			}

			cfg := testConfig(hs.URL + "/findings")
			cfg.RetryMax = retryMax
			cfg.RetryFor = 5 * time.Second
			r := start(t, js, logger, cfg)
			streamtest.WaitFor(t, 20*time.Second, "20 findings delivered", func() bool { return len(fs.delivered()) >= 20 })
			streamtest.WaitFor(t, 10*time.Second, "consumer settled", func() bool { return settled(t, js, sink.DefaultDurable) })
			r.stop()

			got := countByKey(fs.delivered())
			if len(got) != 20 {
				t.Errorf("delivered %d distinct keys, want 20: %v", len(got), got)
			}
			for id, n := range got {
				if n != 1 {
					t.Errorf("idempotency key %s delivered %d times, want 1", id, n)
				}
			}
			last429 := map[string]time.Time{}
			for _, rq := range fs.requests() {
				if bytes.Contains(rq.body, []byte(`"asset"`)) {
					t.Errorf("asset message was forwarded")
				}
				if !bytes.Equal(rq.body, want[rq.key]) {
					t.Errorf("body for %s = %s, want %s", rq.key, rq.body, want[rq.key])
				}
				if rq.auth != "Bearer "+testToken || rq.ctype != "application/json" {
					t.Errorf("headers: Authorization %q, Content-Type %q", rq.auth, rq.ctype)
				}
				if t0, ok := last429[rq.key]; ok && rq.at.Sub(t0) < 950*time.Millisecond {
					t.Errorf("%s retried %v after a 429 with Retry-After: 1", rq.key, rq.at.Sub(t0))
				}
				delete(last429, rq.key)
				if rq.status == http.StatusTooManyRequests {
					last429[rq.key] = rq.at
				}
			}
			var m bytes.Buffer
			if _, err := r.reg.WriteTo(&m); err != nil {
				t.Fatal(err)
			}
			for _, line := range []string{
				`ghas_sink_requests_total{result="delivered"} 20`,
				`ghas_sink_requests_total{result="retry"} 10`,
				`ghas_sink_messages_total{outcome="delivered"} 20`,
			} {
				if !strings.Contains(m.String(), line) {
					t.Errorf("metrics lack %q:\n%s", line, m.String())
				}
			}
			if strings.Contains(logs.String(), testToken) {
				t.Errorf("the sink token appears in the logs")
			}
		})
	}
}

// An older version of a finding that failed and was redelivered later is
// never POSTed after a newer version was delivered.
func TestOlderVersionNeverOverwritesNewer(t *testing.T) {
	srv := streamtest.Run(t)
	_, js := srv.Connect()
	const key = "sast.1296269.7"
	var v2done bool
	fs := &fakeSink{}
	fs.setAnswer(func(r request, _ int) (int, string) {
		switch r.key {
		case key + ":v1":
			if !v2done {
				return http.StatusServiceUnavailable, "1"
			}
		case key + ":v2":
			v2done = true
		}
		return http.StatusOK, ""
	})
	hs := httptest.NewServer(fs)
	defer hs.Close()

	publish(t, js, key, 1)
	publish(t, js, key, 2)
	publish(t, js, "sast.1296269.8", 1)
	cfg := testConfig(hs.URL)
	cfg.RetryFor = 300 * time.Millisecond // give v1 up quickly: JetStream redelivers it after Retry-After
	r := start(t, js, discard(), cfg)
	streamtest.WaitFor(t, 10*time.Second, "consumer settled", func() bool { return settled(t, js, sink.DefaultDurable) })
	r.stop()

	var seq []string
	for _, rq := range fs.delivered() {
		if rq.finding == key {
			seq = append(seq, rq.key)
		}
	}
	if len(seq) != 1 || seq[0] != key+":v2" {
		t.Errorf("sink accepted %v for %s, want only v2 (v1 superseded)", seq, key)
	}
	if n := countByKey(fs.delivered())["sast.1296269.8:v1"]; n != 1 {
		t.Errorf("other finding delivered %d times, want 1", n)
	}
	var m bytes.Buffer
	r.reg.WriteTo(&m)
	if !strings.Contains(m.String(), `ghas_sink_messages_total{outcome="superseded"} 1`) {
		t.Errorf("want one superseded message:\n%s", m.String())
	}
}

// Two instances share the durable while the sink fails at random: for
// every finding the sink accepts versions only in increasing order, and
// the last one it accepts is the latest.
func TestInstancesSharingDurableKeepPerKeyOrder(t *testing.T) {
	srv := streamtest.Run(t)
	_, js := srv.Connect()
	rng := rand.New(rand.NewPCG(1, 2))
	fs := &fakeSink{answer: func(request, int) (int, string) {
		if rng.IntN(10) < 4 {
			return http.StatusServiceUnavailable, ""
		}
		return http.StatusOK, ""
	}}
	hs := httptest.NewServer(fs)
	defer hs.Close()

	const keys, versions = 8, 6
	cfg := testConfig(hs.URL)
	// Give up in-process at once, so failed versions go back to JetStream
	// while newer ones of the same finding proceed.
	cfg.RetryFor = time.Millisecond
	cfg.RetryMax = 50 * time.Millisecond
	a := start(t, js, discard(), cfg)
	b := start(t, js, discard(), cfg)
	for v := 1; v <= versions; v++ {
		for k := range keys {
			publish(t, js, fmt.Sprintf("sca.1.%d", k), v)
		}
	}
	streamtest.WaitFor(t, 30*time.Second, "consumer settled", func() bool {
		return len(fs.delivered()) >= keys && settled(t, js, sink.DefaultDurable)
	})
	a.stop()
	b.stop()

	last := map[string]int{}
	for _, rq := range fs.delivered() {
		v, err := strconv.Atoi(rq.key[strings.LastIndex(rq.key, ":v")+2:])
		if err != nil {
			t.Fatalf("key %q: %v", rq.key, err)
		}
		if v <= last[rq.finding] {
			t.Errorf("%s: sink accepted v%d after v%d", rq.finding, v, last[rq.finding])
		}
		last[rq.finding] = v
	}
	for k := range keys {
		if key := fmt.Sprintf("sca.1.%d", k); last[key] != versions {
			t.Errorf("%s: last delivered v%d, want v%d", key, last[key], versions)
		}
	}
}

// 400 and 404 are permanent: the message goes to ghas.dlq.sink with the
// reason and its original headers, is not retried, and is acked.
func TestPermanentRejectionGoesToDLQ(t *testing.T) {
	srv := streamtest.Run(t)
	_, js := srv.Connect()
	fs := &fakeSink{answer: func(r request, _ int) (int, string) {
		switch r.finding {
		case "secret.5.1":
			return http.StatusBadRequest, ""
		case "secret.5.2":
			return http.StatusNotFound, ""
		}
		return http.StatusOK, ""
	}}
	hs := httptest.NewServer(fs)
	defer hs.Close()
	publish(t, js, "secret.5.1", 1)
	publish(t, js, "secret.5.2", 1)
	publish(t, js, "secret.5.3", 1)
	r := start(t, js, discard(), testConfig(hs.URL))
	streamtest.WaitFor(t, 10*time.Second, "consumer settled", func() bool { return settled(t, js, sink.DefaultDurable) })
	r.stop()

	if got := countByKey(fs.requests()); got["secret.5.1:v1"] != 1 || got["secret.5.2:v1"] != 1 || got["secret.5.3:v1"] != 1 {
		t.Errorf("requests per key = %v, want one each (no retry of a 4xx)", got)
	}
	ctx := context.Background()
	dlq, err := js.Stream(ctx, stream.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	byKey := map[string]*jetstream.RawStreamMsg{}
	for seq := uint64(1); ; seq++ {
		m, err := dlq.GetMsg(ctx, seq)
		if err != nil {
			break
		}
		if m.Subject != stream.DLQSubject(sink.DLQEvent) {
			t.Errorf("DLQ subject %q", m.Subject)
		}
		byKey[m.Header.Get(stream.HeaderFindingKey)] = m
	}
	if len(byKey) != 2 {
		t.Fatalf("DLQ holds %d messages, want 2", len(byKey))
	}
	for key, status := range map[string]string{"secret.5.1": "400", "secret.5.2": "404"} {
		m := byKey[key]
		if m == nil {
			t.Errorf("%s not in DLQ", key)
			continue
		}
		if e := m.Header.Get(stream.HeaderError); !strings.Contains(e, status) {
			t.Errorf("%s: Ghas-Error %q lacks %s", key, e, status)
		}
		if m.Header.Get(stream.HeaderOriginalSubject) != stream.FindingSubject("secret", 5) ||
			m.Header.Get(stream.HeaderOriginalStream) != stream.FindingsStream ||
			m.Header.Get(stream.HeaderOriginalSequence) == "" ||
			m.Header.Get(sink.HeaderOriginalMsgID) != key+":v1" {
			t.Errorf("%s: DLQ headers %v", key, m.Header)
		}
		if !bytes.Contains(m.Data, []byte(key)) {
			t.Errorf("%s: DLQ body %s", key, m.Data)
		}
	}
}

// The sink is down (connection refused) for a few seconds: nothing is
// lost, and every finding is delivered once after it comes back.
func TestSinkDownThenUpLosesNothing(t *testing.T) {
	srv := streamtest.Run(t)
	_, js := srv.Connect()
	port := streamtest.FreePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	const n = 15
	for i := range n {
		publish(t, js, fmt.Sprintf("sca.9.%d", i), 1)
	}
	cfg := testConfig("http://" + addr + "/in")
	cfg.RetryFor = 300 * time.Millisecond
	r := start(t, js, discard(), cfg)
	down := time.Now()
	var m bytes.Buffer
	streamtest.WaitFor(t, 10*time.Second, "connection errors", func() bool {
		m.Reset()
		r.reg.WriteTo(&m)
		return strings.Contains(m.String(), `result="error"`) && time.Since(down) > 3*time.Second
	})
	if consumerInfo(t, js, sink.DefaultDurable).AckFloor.Stream != 0 {
		t.Fatalf("a message was acked while the sink was down")
	}

	fs := &fakeSink{}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on the sink's port: %v", err)
	}
	hs := httptest.NewUnstartedServer(fs)
	hs.Listener.Close()
	hs.Listener = l
	hs.Start()
	defer hs.Close()
	streamtest.WaitFor(t, 20*time.Second, "all delivered after recovery", func() bool {
		return len(fs.delivered()) >= n && settled(t, js, sink.DefaultDurable)
	})
	r.stop()
	for id, c := range countByKey(fs.delivered()) {
		if c != 1 {
			t.Errorf("%s delivered %d times", id, c)
		}
	}
	if got := len(countByKey(fs.delivered())); got != n {
		t.Errorf("delivered %d findings, want %d", got, n)
	}
}

// Cancelling Run stops it promptly without acking what the sink did not
// accept; a new forwarder on the same durable resumes where it stopped.
func TestCancelDoesNotAckAndRestartResumes(t *testing.T) {
	srv := streamtest.Run(t)
	_, js := srv.Connect()
	// The sink fails while the first forwarder runs and accepts afterwards.
	// Two servers, not one whose answer changes: a request the first
	// forwarder cancelled at shutdown may still reach its server's handler
	// later, and must not count as a delivery.
	failing := &fakeSink{answer: func(request, int) (int, string) { return http.StatusBadGateway, "" }}
	hsFailing := httptest.NewServer(failing)
	defer hsFailing.Close()
	fs := &fakeSink{}
	hs := httptest.NewServer(fs)
	defer hs.Close()
	for i := range 3 {
		publish(t, js, fmt.Sprintf("sast.3.%d", i), 1)
	}
	cfg := testConfig(hsFailing.URL)
	cfg.RetryFor = time.Minute // stay in the in-process retry loop
	a := start(t, js, discard(), cfg)
	streamtest.WaitFor(t, 10*time.Second, "first attempts", func() bool { return len(failing.requests()) >= 3 })
	t0 := time.Now()
	a.stop()
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("Run took %v to stop", d)
	}
	if info := consumerInfo(t, js, sink.DefaultDurable); info.AckFloor.Stream != 0 {
		t.Fatalf("ack floor %d after cancel: a failed message was acked", info.AckFloor.Stream)
	}

	// A forwarder started after the cancel resumes at once: the first one
	// gave its claims up, so no key waits for a lease to run out.
	cfg = testConfig(hs.URL)
	cfg.RetryFor = time.Minute
	cfg.Lease = time.Minute
	b := start(t, js, discard(), cfg)
	streamtest.WaitFor(t, 10*time.Second, "resumed delivery", func() bool {
		return len(fs.delivered()) >= 3 && settled(t, js, sink.DefaultDurable)
	})
	b.stop()

	for i := 3; i < 5; i++ {
		publish(t, js, fmt.Sprintf("sast.3.%d", i), 1)
	}
	c := start(t, js, discard(), cfg)
	streamtest.WaitFor(t, 10*time.Second, "new findings after restart", func() bool {
		return len(fs.delivered()) >= 5 && settled(t, js, sink.DefaultDurable)
	})
	c.stop()
	got := countByKey(fs.delivered())
	for i := range 5 {
		if id := fmt.Sprintf("sast.3.%d:v1", i); got[id] != 1 {
			t.Errorf("%s delivered %d times, want 1", id, got[id])
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	srv := streamtest.Run(t)
	_, js := srv.Connect()
	client := &http.Client{Timeout: time.Second}
	for _, u := range []string{"", "not a url", "ftp://host/x", "http://", "https://user:hunter2@/path"} {
		_, err := sink.New(discard(), js, client, metrics.NewRegistry(), sink.Config{URL: u})
		if err == nil {
			t.Errorf("New(%q) succeeded", u)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error leaks the URL password: %v", err)
		}
	}
	if _, err := sink.New(discard(), js, nil, metrics.NewRegistry(), sink.Config{URL: "http://x"}); err == nil {
		t.Errorf("New without client succeeded")
	}
	f, err := sink.New(discard(), js, client, metrics.NewRegistry(), sink.Config{URL: "https://sink.example/x"})
	if err != nil {
		t.Fatal(err)
	}
	cc := f.ConsumerConfig()
	if cc.Durable != sink.DefaultDurable || !slices.Equal(cc.FilterSubjects, []string{"ghas.findings.>", "ghas.sink.replay.>"}) || cc.MaxDeliver != -1 || cc.AckPolicy != jetstream.AckExplicitPolicy {
		t.Errorf("consumer config %+v", cc)
	}
}

// JetStream restarts while the forwarder runs: it reconnects by itself and
// delivers what was published before and after, each once.
func TestNATSRestartResumes(t *testing.T) {
	srv := streamtest.Run(t)
	_, js := srv.Connect()
	fs := &fakeSink{}
	hs := httptest.NewServer(fs)
	defer hs.Close()
	r := start(t, js, discard(), testConfig(hs.URL))
	for i := range 5 {
		publish(t, js, fmt.Sprintf("sast.4.%d", i), 1)
	}
	streamtest.WaitFor(t, 10*time.Second, "first five", func() bool { return len(fs.delivered()) >= 5 })
	srv.Shutdown()
	time.Sleep(500 * time.Millisecond) // the outage itself: nothing to wait for
	srv.Start()
	streamtest.WaitFor(t, 10*time.Second, "reconnect", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := js.Stream(ctx, stream.FindingsStream)
		return err == nil
	})
	for i := 5; i < 10; i++ {
		publish(t, js, fmt.Sprintf("sast.4.%d", i), 1)
	}
	streamtest.WaitFor(t, 20*time.Second, "all ten", func() bool {
		return len(fs.delivered()) >= 10 && settled(t, js, sink.DefaultDurable)
	})
	r.stop()
	got := countByKey(fs.delivered())
	for i := range 10 {
		if id := fmt.Sprintf("sast.4.%d:v1", i); got[id] != 1 {
			t.Errorf("%s delivered %d times, want 1", id, got[id])
		}
	}
}

// BenchmarkForward measures end-to-end forwarding to a sink that answers
// 204 at once: b.N findings published first, then drained, per lane count.
func BenchmarkForward(b *testing.B) {
	for _, lanes := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("lanes=%d", lanes), func(b *testing.B) { benchForward(b, lanes) })
	}
}

func benchForward(b *testing.B, lanes int) {
	srv := streamtest.Run(b)
	_, js := srv.Connect()
	var n sync.WaitGroup
	n.Add(b.N)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
		n.Done()
	}))
	defer hs.Close()
	ctx := context.Background()
	for i := range b.N {
		key := fmt.Sprintf("sca.%d.%d", i%50, i)
		m := nats.NewMsg(stream.FindingsKVPrefix + key)
		m.Header.Set(stream.HeaderMsgID, key+":h")
		m.Header.Set(stream.HeaderFindingKey, key)
		m.Data = bytes.Repeat([]byte("x"), 2048)
		if _, err := js.PublishMsg(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	reg := metrics.NewRegistry()
	f, err := sink.New(discard(), js, &http.Client{Timeout: 5 * time.Second}, reg, sink.Config{URL: hs.URL, Lanes: lanes})
	if err != nil {
		b.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	b.ResetTimer()
	go func() { done <- f.Run(rctx) }()
	n.Wait()
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
