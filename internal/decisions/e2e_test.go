package decisions_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/decisions"
	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ghclient"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/processor"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
	"github.com/ghas-relay/ghas-relay/internal/tokens"
	"github.com/ghas-relay/ghas-relay/internal/transform/transformtest"
)

var (
	keyOnce sync.Once
	appKey  *rsa.PrivateKey
)

// world is the whole path of a decision: the receiver's handler over
// HTTP, JetStream, a processor that writes back, and a fake GitHub with
// one repository of the App.
type world struct {
	t    testing.TB
	js   jetstream.JetStream
	gh   *ghtest.Server
	repo ghtest.Repository
	api  *httptest.Server
	seq  int
}

func newWorld(t testing.TB, latency time.Duration, cfg processor.Config) *world {
	t.Helper()
	keyOnce.Do(func() {
		var err error
		if appKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	srv := streamtest.Run(t)
	_, js := srv.Connect()
	gh := ghtest.New(t, ghtest.Options{PrivateKey: appKey, Latency: latency})
	inst := gh.AddInstallation("octo-org", "Organization")
	repo := gh.AddRepository(inst.ID, "web-shop", true)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	app, err := ghclient.New(logger, ghclient.Config{BaseURL: gh.URL(), AppID: gh.AppID(), PrivateKeyPEM: gh.PrivateKeyPEM(), MaxInFlight: 64})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	findings, err := js.KeyValue(ctx, stream.FindingsBucket)
	if err != nil {
		t.Fatal(err)
	}
	cfg.WriteBack = app
	p := processor.New(logger, js, js, findings, transformtest.Defaults(), nil, processor.NewMetrics(metrics.NewRegistry()), cfg)
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(pctx) }()
	t.Cleanup(func() { cancel(); <-done })
	set, err := tokens.Parse(tokenFile, true)
	if err != nil {
		t.Fatal(err)
	}
	h := decisions.NewHandler(logger, js, decisions.Options{Tokens: set})
	api := httptest.NewServer(decisions.Routes(http.NotFoundHandler(), h))
	t.Cleanup(api.Close)
	return &world{t: t, js: js, gh: gh, repo: repo, api: api}
}

// alerts puts n open Dependabot alerts in the fake and stores their
// findings as GitHub's webhooks would, and returns their keys.
func (w *world) alerts(n int) []string {
	w.t.Helper()
	keys := make([]string, n)
	for i := range n {
		num := int64(i + 1)
		w.gh.PutAlert(w.repo.ID, ghtest.Dependabot, ghtest.Alert{Number: num, State: "open", Template: int(num)})
		w.webhook(ghtest.Dependabot, num)
		keys[i] = finding.Key(finding.SCA, w.repo.ID, num)
	}
	w.drained()
	return keys
}

func (w *world) webhook(kind ghtest.Kind, number int64) {
	w.t.Helper()
	wh, ok := w.gh.AlertWebhook(w.repo.ID, kind, number)
	if !ok {
		w.t.Fatalf("no alert %d", number)
	}
	w.seq++
	m := &nats.Msg{Subject: stream.WebhookSubject(wh.Event), Header: nats.Header{}, Data: wh.Payload}
	m.Header.Set(stream.HeaderMsgID, fmt.Sprintf("delivery-%d", w.seq))
	m.Header.Set(stream.HeaderEvent, wh.Event)
	if _, err := w.js.PublishMsg(context.Background(), m); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) drained() {
	w.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if ok, _ := stream.Drained(context.Background(), w.js, processor.ConsumerName); ok {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatal("events not drained")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// post sends a body to POST /decisions and returns the status and answer.
func (w *world) post(token string, body []byte) (int, []byte) {
	w.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, w.api.URL+decisions.Path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// status reads GET /decisions/{id}.
func (w *world) status(token, id string) (int, decisions.Status) {
	w.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, w.api.URL+decisions.Path+"/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var st decisions.Status
	_ = json.NewDecoder(resp.Body).Decode(&st)
	return resp.StatusCode, st
}

// final polls a decision's status until it has its outcome.
func (w *world) final(token, id string, within time.Duration) decisions.Status {
	w.t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, st := w.status(token, id)
		if code == http.StatusOK && (st.Status == decisions.StatusApplied || st.Status == decisions.StatusFailed) {
			return st
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("decision %s: %d %+v after %s", id, code, st, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// batch is the body of a batch dismissing every key.
func batch(keys []string, reason string) []byte {
	items := make([]decisions.Request, len(keys))
	for i, k := range keys {
		items[i] = decisions.Request{FindingKey: k, Decision: "dismiss", Reason: reason, Comment: "batch triage"}
	}
	b, _ := json.Marshal(map[string]any{"decisions": items})
	return b
}

// TestEndToEnd: a scoped token's batch goes through the receiver, the
// processor and GitHub: every alert is updated once, each finding changes
// in seconds with the triage naming the token, GET /decisions/{id} shows
// each outcome, and GitHub's webhooks that follow change nothing.
func TestEndToEnd(t *testing.T) {
	w := newWorld(t, 0, processor.Config{})
	keys := w.alerts(5)
	code, body := w.post("tok-web", batch(keys, "tolerable_risk"))
	if code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", code, body)
	}
	var ans struct {
		Decisions []struct{ Decision, Status string }
	}
	if err := json.Unmarshal(body, &ans); err != nil || len(ans.Decisions) != len(keys) {
		t.Fatalf("answer %s: %v", body, err)
	}
	for i, a := range ans.Decisions {
		st := w.final("tok-web", a.Decision, 20*time.Second)
		if st.Status != decisions.StatusApplied || st.FindingKey != keys[i] || st.By != "team-web" || len(st.Results) != 1 ||
			st.Results[0].Status != decisions.StatusApplied || st.Repository != w.repo.FullName {
			t.Errorf("decision %d: %+v", i, st)
		}
	}
	kv, _ := w.js.KeyValue(context.Background(), stream.FindingsBucket)
	revs := map[string]uint64{}
	for _, k := range keys {
		e, err := kv.Get(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := finding.Decode(e.Value())
		f := d.Finding()
		if f.FindingStatus != finding.StatusDismissed || f.Triage == nil || f.Triage.By != "team-web" || f.Triage.AppliedTo != "github" {
			t.Errorf("%s: %s %+v", k, f.FindingStatus, f.Triage)
		}
		revs[k] = e.Revision()
	}
	ups := w.gh.Updates()
	if len(ups) != len(keys) {
		t.Fatalf("%d updates, want %d", len(ups), len(keys))
	}
	for n := int64(1); n <= int64(len(keys)); n++ {
		w.webhook(ghtest.Dependabot, n) // the echo
	}
	w.drained()
	time.Sleep(200 * time.Millisecond)
	for _, k := range keys {
		if e, _ := kv.Get(context.Background(), k); e.Revision() != revs[k] {
			t.Errorf("%s: the echo wrote a revision", k)
		}
	}
	if n := len(w.gh.Updates()); n != len(keys) {
		t.Errorf("the echoes caused %d more updates", n-len(keys))
	}
	// A scoped token cannot reach into another repository.
	w.gh.AddRepository(w.gh.AddInstallation("other-org", "Organization").ID, "api", true)
	if code, body := w.post("tok-web", []byte(`{"findingKey":"sast.22.3","decision":"reopen"}`)); code != http.StatusAccepted {
		t.Errorf("an unknown finding: %d %s", code, body)
	} else if id := decisionID(body); w.final("tok-web", id, 10*time.Second).Results[0].Error != "unknown finding" {
		t.Errorf("an unknown finding did not fail as unknown")
	}
}

func decisionID(body []byte) string {
	var a struct{ Decision string }
	_ = json.Unmarshal(body, &a)
	return a.Decision
}

// BenchmarkWriteBack1000: a batch of 1,000 decisions through the receiver
// and the processor against the fake GitHub answering in 20 ms, the pace
// raised (WRITE_BACK_INTERVAL 0): the time from POST to the last outcome,
// every alert updated exactly once and no other write.
//
//	go test ./internal/decisions -run '^$' -bench WriteBack1000 -benchtime 1x
func BenchmarkWriteBack1000(b *testing.B) {
	for range b.N {
		b.StopTimer()
		w := newWorld(b, 20*time.Millisecond, processor.Config{WriteInterval: 0, DecisionWorkers: 32})
		keys := w.alerts(1000)
		w.gh.ResetStats()
		b.StartTimer()
		start := time.Now()
		code, body := w.post("tok-admin", batch(keys, "no_bandwidth"))
		if code != http.StatusAccepted {
			b.Fatalf("POST: %d %s", code, body)
		}
		accepted := time.Since(start)
		var ans struct{ Decisions []struct{ Decision string } }
		_ = json.Unmarshal(body, &ans)
		kv, _ := w.js.KeyValue(context.Background(), stream.DecisionsBucket)
		for _, a := range ans.Decisions {
			for {
				rec, _, ok, err := decisions.Get(context.Background(), kv, a.Decision)
				if err == nil && ok && rec.Final() {
					if rec.Status.Status != decisions.StatusApplied {
						b.Fatalf("%+v", rec.Status)
					}
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		elapsed := time.Since(start)
		b.StopTimer()
		per := map[int64]int{}
		for _, u := range w.gh.Updates() {
			per[u.Number]++
		}
		for n := int64(1); n <= 1000; n++ {
			if per[n] != 1 {
				b.Fatalf("alert %d updated %d times", n, per[n])
			}
		}
		writes := 0
		for ep, c := range w.gh.Stats().ByEndpoint {
			if !strings.HasPrefix(ep, "GET ") && ep != "POST /app/installations/{id}/access_tokens" {
				writes += c
			}
		}
		if writes != 1000 {
			b.Fatalf("%d writes to GitHub, want 1000: %v", writes, w.gh.Stats().ByEndpoint)
		}
		b.ReportMetric(float64(accepted.Milliseconds()), "ms-to-202")
		b.ReportMetric(elapsed.Seconds(), "s-to-last-outcome")
		b.ReportMetric(1000/elapsed.Seconds(), "decisions/s")
	}
}
