package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/jsonobject"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
	"github.com/ghas-relay/ghas-relay/internal/webhook/webhooktest"
)

const (
	secretA = "first secret"
	secretB = "second rotated secret"
	limit   = 64 << 10
)

var fixedNow = time.Date(2026, 11, 21, 10, 0, 0, 123000000, time.UTC)

type receiver struct {
	url string
	js  jetstream.JetStream
	m   *Metrics
}

// answer is the JSON body of a 202.
type answer struct {
	Delivery string `json:"delivery"`
	Status   string `json:"status"`
}

// newReceiver serves the handler on the receiver's own listener (Listen),
// publishing through pub (real JetStream when nil).
func newReceiver(t *testing.T, pub Publisher, timeout time.Duration) *receiver {
	t.Helper()
	r := &receiver{}
	if pub == nil {
		_, js := streamtest.Run(t).Connect()
		r.js, pub = js, js
	}
	r.m = NewMetrics(metrics.NewRegistry())
	h := NewHandler(slog.New(slog.DiscardHandler), pub, r.m, Options{
		Secrets:        [][]byte{[]byte(secretA), []byte(secretB), []byte(vectorSecret)},
		MaxBodyBytes:   limit,
		PublishTimeout: timeout,
		Now:            func() time.Time { return fixedNow },
	})
	srv, err := Listen(slog.New(slog.DiscardHandler), "127.0.0.1:0", Routes(h), r.m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	r.url = "http://" + srv.Addr().String() + Path
	return r
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// stored returns every message of GHAS_EVENTS by Nats-Msg-Id.
func stored(t *testing.T, js jetstream.JetStream) map[string][]*jetstream.RawStreamMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream.EventsStream)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	out := map[string][]*jetstream.RawStreamMsg{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get msg %d: %v", seq, err)
		}
		id := m.Header.Get(stream.HeaderMsgID)
		out[id] = append(out[id], m)
	}
	return out
}

type blockingPublisher struct{}

func (blockingPublisher) PublishMsg(ctx context.Context, _ *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestStatuses is every row of the receiver's status table in
// docs/contract.md, over the receiver's listener.
func TestStatuses(t *testing.T) {
	r := newReceiver(t, nil, 0)
	obj := []byte(`{"action":"created","alert":{"number":7}}`)
	newAction := []byte(`{"action":"some_action_github_adds_next_year","alert":{"number":8}}`)
	form := webhooktest.FormBody(obj)
	big := []byte(`{"pad":"` + strings.Repeat("x", limit) + `"}`)
	// Nested as deep as the processor reads (accepted), and 5,000 deep
	// (valid JSON the processor would dead-letter: refused here).
	nested := func(depth int) []byte {
		return []byte(`{"action":"created","x":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`)
	}
	atLimit, tooDeep := nested(jsonobject.MaxDepth), nested(5000)
	signed := func(ct, event, id string, body []byte, sig string) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, r.url, bytes.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		if event != "" {
			req.Header.Set(HeaderGitHubEvent, event)
		}
		if id != "" {
			req.Header.Set(HeaderGitHubDelivery, id)
		}
		if sig != "" {
			req.Header.Set(HeaderSignature256, sig)
		}
		return req
	}
	chunked := func(req *http.Request) *http.Request {
		req.ContentLength = -1 // no Content-Length: the limit must hold while reading
		req.Body = io.NopCloser(req.Body)
		return req
	}
	get, _ := http.NewRequest(http.MethodGet, r.url, nil)
	sha1Only := webhooktest.NewRequest(r.url, "dependabot_alert", "d-sha1", obj, "")
	sha1Only.Header.Set(HeaderSignatureSHA1, "sha1=0123456789abcdef0123456789abcdef01234567")

	tests := []struct {
		name   string
		req    *http.Request
		status int
		answer string // 202 status field
		stored []byte // the body stored under the delivery id, nil if none
	}{
		{"accepted", webhooktest.NewRequest(r.url, "code_scanning_alert", "d-ok", obj, secretA), 202, StatusAccepted, obj},
		{"rotated second secret", webhooktest.NewRequest(r.url, "dependabot_alert", "d-rot", obj, secretB), 202, StatusAccepted, obj},
		{"form-encoded", webhooktest.NewFormRequest(r.url, "secret_scanning_alert", "d-form", obj, secretA), 202, StatusAccepted, obj},
		{"unknown action of handled event", webhooktest.NewRequest(r.url, "repository", "d-act", newAction, secretA), 202, StatusAccepted, newAction},
		{"unknown event ignored", webhooktest.NewRequest(r.url, "push", "d-push", obj, secretA), 202, StatusIgnored, nil},
		{"github vector verifies, body not an object", signed("application/json", "ping", "d-vec", []byte(vectorBody), vectorSignature), 400, "", nil},
		{"github vector, secret not configured", signed("application/json", "ping", "d-vec2", []byte(vectorBody), webhooktest.Sign("other", []byte(vectorBody))), 401, "", nil},
		{"tampered body", signed("application/json", "ping", "d-tamper", []byte(`{"action":"x"}`), webhooktest.Sign(secretA, []byte(`{"action":"y"}`))), 401, "", nil},
		{"missing signature", webhooktest.NewRequest(r.url, "ping", "d-nosig", obj, ""), 401, "", nil},
		{"sha1 signature only", sha1Only, 401, "", nil},
		{"form signature over payload only", signed("application/x-www-form-urlencoded", "ping", "d-fsig", form, webhooktest.Sign(secretA, obj)), 401, "", nil},
		{"missing event", webhooktest.NewRequest(r.url, "", "d-noevent", obj, secretA), 400, "", nil},
		{"missing delivery", webhooktest.NewRequest(r.url, "ping", "", obj, secretA), 400, "", nil},
		{"json array", webhooktest.NewRequest(r.url, "ping", "d-array", []byte(`[{}]`), secretA), 400, "", nil},
		{"invalid json", webhooktest.NewRequest(r.url, "ping", "d-bad", []byte(`{"a":`), secretA), 400, "", nil},
		{"nested at the depth limit", webhooktest.NewRequest(r.url, "code_scanning_alert", "d-deep-ok", atLimit, secretA), 202, StatusAccepted, atLimit},
		{"nested 5,000 deep", webhooktest.NewRequest(r.url, "code_scanning_alert", "d-deep", tooDeep, secretA), 400, "", nil},
		{"form without payload", signed("application/x-www-form-urlencoded", "ping", "d-nopl", []byte("x=1"), webhooktest.Sign(secretA, []byte("x=1"))), 400, "", nil},
		{"GET", get, 405, "", nil},
		{"oversized, Content-Length", webhooktest.NewRequest(r.url, "ping", "d-big", big, secretA), 413, "", nil},
		{"oversized, chunked", chunked(webhooktest.NewRequest(r.url, "ping", "d-big2", big, secretA)), 413, "", nil},
		{"text/plain", signed("text/plain", "ping", "d-text", obj, webhooktest.Sign(secretA, obj)), 415, "", nil},
		{"no content type", signed("", "ping", "d-noct", obj, webhooktest.Sign(secretA, obj)), 415, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := do(t, tt.req)
			if status != tt.status {
				t.Fatalf("status %d (%q), want %d", status, body, tt.status)
			}
			if status == 401 && body != "unauthorized\n" {
				t.Fatalf("401 body %q says more than unauthorized", body)
			}
			if tt.answer != "" {
				var a answer
				if err := json.Unmarshal([]byte(body), &a); err != nil || a.Status != tt.answer || a.Delivery != tt.req.Header.Get(HeaderGitHubDelivery) {
					t.Fatalf("answer %q (%v), want status %q", body, err, tt.answer)
				}
			}
		})
	}
	msgs := stored(t, r.js)
	for _, tt := range tests {
		id := tt.req.Header.Get(HeaderGitHubDelivery)
		got := msgs[id]
		switch {
		case tt.stored == nil && len(got) > 0:
			t.Errorf("%s: delivery %q stored, want not stored", tt.name, id)
		case tt.stored != nil && (len(got) != 1 || !bytes.Equal(got[0].Data, tt.stored)):
			t.Errorf("%s: delivery %q stored %d times, want once with the payload", tt.name, id, len(got))
		}
	}
	if n := r.m.Deliveries.Value("other", "unauthorized"); n != 0 {
		t.Errorf("unauthorized counted under event other %d times, want under ping", n)
	}
	if n := r.m.Deliveries.Value("ping", "unauthorized"); n != 4 {
		t.Errorf("ghas_receiver_deliveries_total{event=ping,result=unauthorized} = %d, want 4", n)
	}
	if n := r.m.Deliveries.Value("push", "ignored"); n != 1 {
		t.Errorf("ignored push counted %d times, want 1", n)
	}
	if got, want := r.m.Duration.Count(), uint64(len(tests)); got != want {
		t.Errorf("duration observations %d, want %d", got, want)
	}
}

func TestUnavailable(t *testing.T) {
	obj := []byte(`{"action":"created"}`)
	t.Run("no ack in time", func(t *testing.T) {
		r := newReceiver(t, blockingPublisher{}, 50*time.Millisecond)
		start := time.Now()
		if status, body := do(t, webhooktest.NewRequest(r.url, "ping", "d-slow", obj, secretA)); status != 503 {
			t.Fatalf("status %d (%q), want 503", status, body)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("publish timeout not applied")
		}
		if n := r.m.Deliveries.Value("ping", "unavailable"); n != 1 {
			t.Fatalf("unavailable counted %d times", n)
		}
	})
	t.Run("jetstream down", func(t *testing.T) {
		ns := streamtest.Run(t)
		ns.Connect() // ensure the layout
		nc, err := stream.Connect(slog.New(slog.DiscardHandler), stream.ConnConfig{URL: ns.URL(), Name: "test"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, _ := jetstream.New(nc)
		r := newReceiver(t, js, 2*time.Second)
		ns.Shutdown()
		if status, body := do(t, webhooktest.NewRequest(r.url, "ping", "d-down", obj, secretA)); status != 503 {
			t.Fatalf("status %d (%q), want 503", status, body)
		}
	})
}

// TestSamplesStored: every real payload is accepted and stored byte for
// byte on its subject with the event headers of docs/contract.md; events that are not
// handled (secret_scanning_alert_location) are answered ignored.
func TestSamplesStored(t *testing.T) {
	r := newReceiver(t, nil, 0)
	samples := webhooktest.Load(t)
	for i, s := range samples {
		req := webhooktest.NewRequest(r.url, s.Event, s.Delivery(), s.Body, secretA)
		if i%2 == 1 {
			req = webhooktest.NewFormRequest(r.url, s.Event, s.Delivery(), s.Body, secretA)
		}
		status, body := do(t, req)
		want := StatusAccepted
		if !Handled(s.Event) {
			want = StatusIgnored
		}
		if status != 202 || !strings.Contains(body, `"status":"`+want+`"`) {
			t.Fatalf("%s/%s: %d %q, want 202 %s", s.Event, s.Name, status, body, want)
		}
	}
	msgs := stored(t, r.js)
	handled := 0
	for _, s := range samples {
		got := msgs[s.Delivery()]
		if !Handled(s.Event) {
			if len(got) != 0 {
				t.Errorf("%s/%s: ignored event stored", s.Event, s.Name)
			}
			continue
		}
		handled++
		if len(got) != 1 {
			t.Errorf("%s/%s: stored %d times, want 1", s.Event, s.Name, len(got))
			continue
		}
		m := got[0]
		if !bytes.Equal(m.Data, s.Body) {
			t.Errorf("%s/%s: stored body differs from the sample", s.Event, s.Name)
		}
		if m.Subject != "ghas.webhook."+s.Event {
			t.Errorf("%s/%s: subject %q", s.Event, s.Name, m.Subject)
		}
		for k, v := range map[string]string{
			"Nats-Msg-Id":                   s.Delivery(),
			"GitHub-Event":                  s.Event,
			"GitHub-Delivery":               s.Delivery(),
			"GitHub-Hook-ID":                "4242",
			"GitHub-Installation-Target-ID": "79929171",
			"Ghas-Received-At":              "2026-11-21T10:00:00.123Z",
			"Ghas-Origin":                   "webhook",
		} {
			if got := m.Header.Get(k); got != v {
				t.Errorf("%s/%s: header %s = %q, want %q", s.Event, s.Name, k, got, v)
			}
		}
		if _, err := time.Parse(time.RFC3339, m.Header.Get("Ghas-Received-At")); err != nil {
			t.Errorf("Ghas-Received-At is not RFC 3339: %v", err)
		}
	}
	if handled < 30 {
		t.Fatalf("only %d handled samples, testdata missing?", handled)
	}
}

func TestDuplicateStoredOnce(t *testing.T) {
	r := newReceiver(t, nil, 0)
	body := []byte(`{"action":"fixed","alert":{"number":3}}`)
	var statuses []string
	for i := 0; i < 3; i++ {
		req := webhooktest.NewRequest(r.url, "code_scanning_alert", "d-dup", body, secretA)
		if i == 2 { // the same delivery again, form-encoded this time
			req = webhooktest.NewFormRequest(r.url, "code_scanning_alert", "d-dup", body, secretA)
		}
		status, resp := do(t, req)
		if status != 202 {
			t.Fatalf("send %d: %d %q", i, status, resp)
		}
		var a answer
		_ = json.Unmarshal([]byte(resp), &a)
		statuses = append(statuses, a.Status)
	}
	if fmt.Sprint(statuses) != "[accepted duplicate duplicate]" {
		t.Fatalf("answers %v, want accepted then duplicates", statuses)
	}
	if got := stored(t, r.js)["d-dup"]; len(got) != 1 {
		t.Fatalf("stored %d times, want once", len(got))
	}
	if n := r.m.Deliveries.Value("code_scanning_alert", "duplicate"); n != 2 {
		t.Fatalf("duplicates counted %d, want 2", n)
	}
}

// TestOutageUnderLoad stops JetStream while deliveries flow: every answer
// is 202 with the delivery stored, or 503; after the server restarts on
// the same store, the same receiver (not restarted) accepts again.
func TestOutageUnderLoad(t *testing.T) {
	ns := streamtest.Run(t)
	_, checkJS := ns.Connect()
	nc, err := stream.Connect(slog.New(slog.DiscardHandler), stream.ConnConfig{URL: ns.URL(), Name: "receiver-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	r := newReceiver(t, js, time.Second)
	client := &http.Client{Timeout: 10 * time.Second}

	var (
		mu        sync.Mutex
		accepted  []string
		other     []string
		seen503   atomic.Int64
		seen202   atomic.Int64
		seq       atomic.Int64
		stop      = make(chan struct{})
		wg        sync.WaitGroup
		bodyBytes = []byte(`{"action":"created","alert":{"number":1},"pad":"` + strings.Repeat("p", 1024) + `"}`)
	)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("load-%d", seq.Add(1))
				resp, err := client.Do(webhooktest.NewRequest(r.url, "dependabot_alert", id, bodyBytes, secretA))
				if err != nil {
					mu.Lock()
					other = append(other, id+": "+err.Error())
					mu.Unlock()
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == 202 && strings.Contains(string(b), `"accepted"`):
					seen202.Add(1)
					mu.Lock()
					accepted = append(accepted, id)
					mu.Unlock()
				case resp.StatusCode == 503:
					seen503.Add(1)
				default:
					mu.Lock()
					other = append(other, fmt.Sprintf("%s: %d %s", id, resp.StatusCode, b))
					mu.Unlock()
				}
			}
		}()
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("first accepted deliveries", func() bool { return seen202.Load() > 50 })
	ns.Shutdown()
	waitFor("503 while JetStream is down", func() bool { return seen503.Load() > 20 })
	before := seen202.Load()
	ns.Start()
	waitFor("202 after restart", func() bool { return seen202.Load() > before+50 })
	close(stop)
	wg.Wait()

	if len(other) > 0 {
		t.Fatalf("%d answers neither 202 nor 503, e.g. %s", len(other), other[0])
	}
	msgs := stored(t, checkJS)
	for _, id := range accepted {
		if len(msgs[id]) != 1 {
			t.Errorf("delivery %s answered 202 but stored %d times", id, len(msgs[id]))
		}
	}
	t.Logf("%d accepted, %d answered 503, %d stored", len(accepted), seen503.Load(), len(msgs))
}

// The 202 body is valid JSON for any delivery id the header check lets
// through, quotes and backslashes included.
func TestAnswerIsJSONForAnyID(t *testing.T) {
	h := NewHandler(slog.New(slog.DiscardHandler), &countingPublisher{}, NewMetrics(metrics.NewRegistry()), Options{Secrets: ParseSecrets("s"), MaxBodyBytes: 1 << 20})
	for _, id := range []string{"72d3162e-cc78-11e3-81ab-4c9367dc0958", `a"b\c`, `<&>'{}`, "~!@#$%^*()_+`|"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, webhooktest.NewRequest("http://receiver"+Path, "ping", id, []byte(`{"zen":"x"}`), "s"))
		var a answer
		if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil || w.Code != http.StatusAccepted || a.Delivery != id || a.Status != StatusAccepted {
			t.Errorf("id %q: %d %q (%v)", id, w.Code, w.Body.String(), err)
		}
	}
}
