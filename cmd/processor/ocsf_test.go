package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ghas-relay/ghas-relay/internal/config"
	"github.com/ghas-relay/ghas-relay/internal/config/configtest"
	"github.com/ghas-relay/ghas-relay/internal/logging/loggingtest"
	"github.com/ghas-relay/ghas-relay/internal/ocsf/ocsftest"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

// ocsfSink records every POST; while down it answers 503.
type ocsfSink struct {
	mu       sync.Mutex
	down     bool
	failed   []string // Idempotency-Keys answered 503
	accepted []ocsfPost
}

type ocsfPost struct {
	key, ctype string
	body       []byte
}

func (s *ocsfSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		s.failed = append(s.failed, r.Header.Get("Idempotency-Key"))
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	s.accepted = append(s.accepted, ocsfPost{key: r.Header.Get("Idempotency-Key"), ctype: r.Header.Get("Content-Type"), body: b})
	w.WriteHeader(http.StatusOK)
}

func (s *ocsfSink) snapshot() (failed []string, accepted []ocsfPost) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.failed...), append([]ocsfPost(nil), s.accepted...)
}

// TestSinkOCSF runs the processor with SINK_FORMAT=ocsf against a sink
// that is down at first: a code scanning alert is created, then fixed.
// Once the sink is back it receives a Create and then a Close event of the
// finding, each validating against the OCSF 1.6.0 schema, the first under
// the Idempotency-Key its failed attempts carried.
func TestSinkOCSF(t *testing.T) {
	schema, err := ocsftest.Load(ocsftest.Dir())
	if err != nil {
		t.Fatal(err)
	}
	ns := streamtest.Run(t)
	_, js := ns.Connect()
	sk := &ocsfSink{down: true}
	hs := httptest.NewServer(sk)
	defer hs.Close()

	admin := fmt.Sprintf("127.0.0.1:%d", streamtest.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"processor"}, configtest.Getenv(map[string]string{
			"NATS_URL":    ns.URL(),
			"ADMIN_ADDR":  admin,
			"SINK_URL":    hs.URL,
			"SINK_FORMAT": "ocsf",
		}), io.Discard, io.Discard)
	}()
	streamtest.WaitFor(t, 20*time.Second, "/readyz 200", func() bool { return status("http://"+admin+"/readyz") == 200 })

	kv, err := js.KeyValue(ctx, stream.FindingsBucket)
	if err != nil {
		t.Fatal(err)
	}
	deliver := func(id, file string) {
		t.Helper()
		body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "webhooks", "code_scanning_alert", file))
		if err != nil {
			t.Fatal(err)
		}
		msg := &nats.Msg{Subject: stream.WebhookSubject("code_scanning_alert"), Header: nats.Header{}, Data: body}
		msg.Header.Set(stream.HeaderMsgID, id)
		msg.Header.Set(stream.HeaderEvent, "code_scanning_alert")
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	deliver("cs-created", "created.payload.json")
	var key string
	streamtest.WaitFor(t, 20*time.Second, "the finding in KV", func() bool {
		keys, err := kv.Keys(ctx)
		if err != nil || len(keys) != 1 {
			return false
		}
		key = keys[0]
		return true
	})
	streamtest.WaitFor(t, 20*time.Second, "failed attempts while the sink is down", func() bool {
		failed, _ := sk.snapshot()
		return len(failed) >= 2
	})
	deliver("cs-fixed", "fixed.payload.json")
	streamtest.WaitFor(t, 20*time.Second, "the fixed revision in KV", func() bool {
		e, err := kv.Get(ctx, key)
		return err == nil && e.Revision() > 1 && strings.Contains(string(e.Value()), `"findingStatus":"FIXED"`)
	})

	sk.mu.Lock()
	sk.down = false
	sk.mu.Unlock()
	streamtest.WaitFor(t, 20*time.Second, "two events at the sink", func() bool {
		_, acc := sk.snapshot()
		return len(acc) >= 2
	})
	time.Sleep(300 * time.Millisecond) // nothing more may arrive
	failed, acc := sk.snapshot()
	if len(acc) != 2 {
		t.Fatalf("sink accepted %d events, want 2", len(acc))
	}
	want := []struct{ activity, status, typeUID int }{{1, 1, 200201}, {3, 4, 200203}}
	for i, p := range acc {
		if err := schema.Validate(p.body); err != nil {
			t.Errorf("event %d does not validate: %v\n%s", i, err, p.body)
		}
		if p.ctype != "application/json" || !strings.HasPrefix(p.key, key+":") {
			t.Errorf("event %d: Content-Type %q, Idempotency-Key %q", i, p.ctype, p.key)
		}
		var ev struct {
			ActivityID  int `json:"activity_id"`
			StatusID    int `json:"status_id"`
			TypeUID     int `json:"type_uid"`
			FindingInfo struct {
				UID string `json:"uid"`
			} `json:"finding_info"`
		}
		if err := json.Unmarshal(p.body, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.ActivityID != want[i].activity || ev.StatusID != want[i].status || ev.TypeUID != want[i].typeUID || ev.FindingInfo.UID != key {
			t.Errorf("event %d: %+v, want %+v", i, ev, want[i])
		}
	}
	if acc[0].key == acc[1].key {
		t.Errorf("both revisions carry Idempotency-Key %q", acc[0].key)
	}
	if len(failed) == 0 || failed[0] != acc[0].key {
		t.Errorf("first failed attempt carried %v, the delivery %q", failed, acc[0].key)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not stop within 20s")
	}
}

func TestSinkFormatInvalid(t *testing.T) {
	var stderr loggingtest.Buffer
	err := run(context.Background(), []string{"processor"}, configtest.Getenv(map[string]string{
		"NATS_URL": "nats://127.0.0.1:1", "ADMIN_ADDR": "127.0.0.1:0", "SINK_URL": "http://127.0.0.1:1/", "SINK_FORMAT": "xml",
	}), io.Discard, &stderr)
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Setting != "SINK_FORMAT" || config.ExitCode(err) != 2 {
		t.Fatalf("err = %v, want a config error naming SINK_FORMAT", err)
	}
	if !strings.Contains(stderr.String(), "SINK_FORMAT") {
		t.Errorf("stderr %q does not name SINK_FORMAT", stderr.String())
	}
}
