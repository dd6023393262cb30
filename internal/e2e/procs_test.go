package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/proc"
	"github.com/ghas-relay/ghas-relay/internal/processor"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
	"github.com/ghas-relay/ghas-relay/internal/webhook/webhooktest"
)

const secret = "e2e-secret"

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds the three binaries once per test run.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "ghas-e2e-bin-*")
		if buildErr != nil {
			return
		}
		buildErr = proc.Build(context.Background(), filepath.Join("..", ".."), binDir, nil, "./cmd/receiver", "./cmd/processor", "./cmd/reconciler")
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// serve starts one of the binaries on n fresh loopback addresses (env
// gives its environment from them; the last is its ADMIN_ADDR) and waits
// until it serves /readyz. Its log is in the test's folder; it is killed
// when the test ends.
func serve(t *testing.T, name, bin string, n int, env func(addrs []string) []string, args ...string) (*proc.Process, []string) {
	t.Helper()
	log := filepath.Join(t.TempDir(), name+".log")
	p, addrs, err := proc.StartOnFreeAddrs(t.Context(), n, func(a []string) proc.Spec {
		return proc.Spec{Name: name, Path: filepath.Join(binaries(t), bin), Args: args, Env: env(a), Log: log,
			Ready: proc.HTTPReady("http://" + a[n-1] + "/readyz")}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p, addrs
}

// startProc starts one of the binaries without waiting for it (reconciler
// -once); it is killed when the test ends.
func startProc(t *testing.T, name, bin string, env []string, args ...string) *proc.Process {
	t.Helper()
	p, err := proc.Start(t.Context(), proc.Spec{Name: name, Path: filepath.Join(binaries(t), bin), Args: args, Env: env,
		Log: filepath.Join(t.TempDir(), name+".log")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

// addr is a loopback address nothing listens on yet, for a listener the
// test opens itself later.
func addr(t *testing.T) string { return fmt.Sprintf("127.0.0.1:%d", streamtest.FreePort(t)) }

// delivery is one signed code scanning delivery for its own alert.
type delivery struct {
	guid   string
	number int
	state  string // open, fixed or dismissed
	body   []byte
}

func makeDeliveries(t *testing.T, n int, repoID int64) []delivery {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "webhooks", "code_scanning_alert", "created.payload.json"))
	if err != nil {
		t.Fatal(err)
	}
	states := []struct{ action, state string }{{"created", "open"}, {"fixed", "fixed"}, {"closed_by_user", "dismissed"}}
	out := make([]delivery, n)
	for i := range out {
		var p map[string]any
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatal(err)
		}
		s := states[i%len(states)]
		p["action"] = s.action
		a := p["alert"].(map[string]any)
		a["number"] = i + 1
		a["state"] = s.state
		a["updated_at"] = time.Date(2026, 5, 1, 0, 0, i, 0, time.UTC).Format(time.RFC3339)
		p["repository"].(map[string]any)["id"] = repoID
		b, _ := json.Marshal(p)
		out[i] = delivery{guid: webhooktest.GUID(fmt.Sprintf("e2e-%d-%d", repoID, i)), number: i + 1, state: s.state, body: b}
	}
	return out
}

var statusOf = map[string]string{"open": finding.StatusActive, "fixed": finding.StatusFixed, "dismissed": finding.StatusDismissed}

// send posts d and returns the HTTP status (0 on a transport error).
func send(client *http.Client, url string, d delivery) int {
	req := webhooktest.NewRequest(url, "code_scanning_alert", d.guid, d.body, secret)
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// storedDeliveries counts the messages of GHAS_EVENTS per delivery GUID.
func storedDeliveries(t *testing.T, js jetstream.JetStream) map[string]int {
	t.Helper()
	ctx := context.Background()
	cons, err := js.OrderedConsumer(ctx, stream.EventsStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, stream.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	// An empty batch is not the end: on a loaded cluster the ordered
	// consumer may be recreating itself (it resumes after the last
	// sequence it delivered). Only no progress for a whole minute is.
	lastProgress := time.Now()
	for got := uint64(0); got < info.State.Msgs; {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			out[m.Headers().Get(stream.HeaderDelivery)]++
			n++
		}
		if n > 0 {
			lastProgress = time.Now()
		} else if time.Since(lastProgress) > time.Minute {
			t.Fatalf("read %d of %d stored events: nothing more for a minute (%v)", got, info.State.Msgs, batch.Error())
		}
		got += uint64(n)
	}
	return out
}

// drained reports whether the processors acked every event and every
// finding reached GHAS_FINDINGS.
func drained(js jetstream.JetStream) bool {
	ok, _ := stream.Drained(context.Background(), js, processor.ConsumerName)
	return ok
}

func findingStatus(kv jetstream.KeyValue, key string) (string, bool) {
	e, err := kv.Get(context.Background(), key)
	if err != nil {
		return "", false
	}
	d, err := finding.Decode(e.Value())
	if err != nil || d.Finding() == nil {
		return "", false
	}
	return d.Finding().FindingStatus, true
}

func connect(t *testing.T, urls string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

// publishEvent stores d in GHAS_EVENTS as the receiver would.
func publishEvent(t *testing.T, js jetstream.JetStream, d delivery) {
	t.Helper()
	msg := &nats.Msg{Subject: stream.WebhookSubject("code_scanning_alert"), Header: nats.Header{}, Data: d.body}
	msg.Header.Set(stream.HeaderMsgID, d.guid)
	msg.Header.Set(stream.HeaderDelivery, d.guid)
	msg.Header.Set(stream.HeaderEvent, "code_scanning_alert")
	if _, err := js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
}
