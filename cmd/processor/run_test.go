package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ghas-relay/ghas-relay/internal/config"
	"github.com/ghas-relay/ghas-relay/internal/config/configtest"
	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/logging/loggingtest"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

func status(url string) int {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestRun drives the whole program: it becomes ready, turns a stored
// delivery into a finding in KV and on GHAS_FINDINGS, forwards it to the
// sink, serves metrics, and stops cleanly on cancel.
func TestRun(t *testing.T) {
	ns := streamtest.Run(t)
	_, js := ns.Connect()

	var (
		mu    sync.Mutex
		posts []string
	)
	sinkSrv := testSink(t, func(r *http.Request, body []byte) {
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer sink-token" {
			t.Errorf("sink got Authorization %q", r.Header.Get("Authorization"))
		}
		posts = append(posts, r.Header.Get("Idempotency-Key"))
	})

	admin := fmt.Sprintf("127.0.0.1:%d", streamtest.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	var stderr loggingtest.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"processor"}, configtest.Getenv(map[string]string{
			"NATS_URL":   ns.URL(),
			"ADMIN_ADDR": admin,
			"SINK_URL":   sinkSrv,
			"SINK_TOKEN": "sink-token",
		}), io.Discard, &stderr)
	}()
	streamtest.WaitFor(t, 20*time.Second, "/readyz 200", func() bool { return status("http://"+admin+"/readyz") == 200 })

	body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "webhooks", "dependabot_alert", "created.payload.json"))
	if err != nil {
		t.Fatal(err)
	}
	msg := &nats.Msg{Subject: stream.WebhookSubject("dependabot_alert"), Header: nats.Header{}, Data: body}
	msg.Header.Set(stream.HeaderMsgID, "d-1")
	msg.Header.Set(stream.HeaderEvent, "dependabot_alert")
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, stream.FindingsBucket)
	if err != nil {
		t.Fatal(err)
	}
	var key string
	streamtest.WaitFor(t, 20*time.Second, "a finding in KV", func() bool {
		keys, err := kv.Keys(ctx)
		if err != nil || len(keys) == 0 {
			return false
		}
		key = keys[0]
		return true
	})
	if !strings.HasPrefix(key, finding.SCA+".") {
		t.Errorf("finding key %q is not an SCA key", key)
	}
	streamtest.WaitFor(t, 20*time.Second, "the finding at the sink", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(posts) == 1 && strings.HasPrefix(posts[0], key+":")
	})
	// The sink saw the POST before the forwarder read its answer and
	// counted it: the metrics are polled, not read once.
	wants := []string{
		`ghas_processor_events_total{event="dependabot_alert",result="processed"} 1`,
		`ghas_processor_findings_published_total{type="sca"} 1`,
		`ghas_sink_requests_total{result="delivered"} 1`,
	}
	var m string
	missing := func() []string {
		resp, err := http.Get("http://" + admin + "/metrics")
		if err != nil {
			return wants
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m = string(b)
		var out []string
		for _, want := range wants {
			if !strings.Contains(m, want) {
				out = append(out, want)
			}
		}
		return out
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(missing()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range missing() {
		t.Errorf("metrics lack %s", want)
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
	if strings.Contains(stderr.String(), "sink-token") {
		t.Error("the sink token was logged")
	}
}

func TestConfigErrorsNameTheSetting(t *testing.T) {
	for name, tc := range map[string]struct {
		env     map[string]string
		setting string
	}{
		"bad enrich":         {map[string]string{"ENRICH": "sometimes"}, "ENRICH"},
		"enrich without app": {map[string]string{"ENRICH": "always"}, "GITHUB_APP_ID"},
		"non-numeric app id": {map[string]string{"ENRICH": "auto", "GITHUB_APP_ID": "abc", "GITHUB_APP_PRIVATE_KEY": "x"}, "GITHUB_APP_ID"},
		"bad key":            {map[string]string{"GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": "not a key"}, "GITHUB_APP_PRIVATE_KEY_FILE"},
		"bad sink url":       {map[string]string{"SINK_URL": "ftp://x"}, "SINK_URL"},
		"bad log level":      {map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		"bad workers":        {map[string]string{"PROCESSOR_WORKERS": "0"}, "PROCESSOR_WORKERS"},
		"missing key file":   {map[string]string{"GITHUB_APP_PRIVATE_KEY_FILE": "/nonexistent"}, "GITHUB_APP_PRIVATE_KEY_FILE"},
	} {
		t.Run(name, func(t *testing.T) {
			e := map[string]string{"NATS_URL": "nats://127.0.0.1:1", "ADMIN_ADDR": "127.0.0.1:0"}
			for k, v := range tc.env {
				e[k] = v
			}
			var stderr bytes.Buffer
			err := run(context.Background(), []string{"processor"}, configtest.Getenv(e), io.Discard, &stderr)
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Setting != tc.setting || config.ExitCode(err) != 2 {
				t.Fatalf("err = %v, want a config error naming %s", err, tc.setting)
			}
			if !strings.Contains(stderr.String(), tc.setting) {
				t.Errorf("stderr %q does not name %s", stderr.String(), tc.setting)
			}
		})
	}
}
