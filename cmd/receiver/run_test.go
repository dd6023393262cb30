package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/config"
	"github.com/ghas-relay/ghas-relay/internal/config/configtest"
	"github.com/ghas-relay/ghas-relay/internal/logging/loggingtest"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
	"github.com/ghas-relay/ghas-relay/internal/webhook/webhooktest"
)

func get(url string) (int, string) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitStatus(t *testing.T, url string, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, body := get(url)
		if status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %d %q, want %d", url, status, body, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRun drives the whole program: it starts before NATS (not ready),
// becomes ready when NATS comes up, accepts a signed delivery and stores
// it, serves metrics, and shuts down cleanly on cancel.
func TestRun(t *testing.T) {
	ns := streamtest.Run(t)
	ns.Shutdown() // the receiver starts first: any start order works
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("old-secret,new-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", streamtest.FreePort(t))
	adminAddr := fmt.Sprintf("127.0.0.1:%d", streamtest.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr loggingtest.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"receiver", "-listen-addr", listen}, configtest.Getenv(map[string]string{
			"NATS_URL":                   ns.URL(),
			"ADMIN_ADDR":                 adminAddr,
			"GITHUB_WEBHOOK_SECRET_FILE": secretFile,
			"LOG_LEVEL":                  "debug",
		}), io.Discard, &stderr)
	}()

	waitStatus(t, "http://"+adminAddr+"/healthz", 200)
	if status, _ := get("http://" + adminAddr + "/readyz"); status != 503 {
		t.Fatalf("/readyz without NATS: %d, want 503", status)
	}
	ns.Start()
	waitStatus(t, "http://"+adminAddr+"/readyz", 200)

	body := []byte(`{"zen":"Design for failure.","hook_id":1}`)
	for _, secret := range []string{"new-secret", "old-secret"} {
		resp, err := http.DefaultClient.Do(webhooktest.NewRequest("http://"+listen+"/webhook", "ping", "guid-run-1", body, secret))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 202 {
			t.Fatalf("delivery signed with %s: %d %q", secret, resp.StatusCode, b)
		}
	}
	_, js := ns.Connect()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	s, err := js.Stream(sctx, stream.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(sctx, stream.WebhookSubject("ping"))
	if err != nil || !bytes.Equal(m.Data, body) || m.Header.Get("Nats-Msg-Id") != "guid-run-1" {
		t.Fatalf("stored message %v, %v", m, err)
	}
	if info, _ := s.Info(sctx); info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages, want 1 (the second send is a duplicate)", info.State.Msgs)
	}

	_, metricsText := get("http://" + adminAddr + "/metrics")
	for _, want := range []string{
		`ghas_receiver_deliveries_total{event="ping",result="accepted"} 1`,
		`ghas_receiver_deliveries_total{event="ping",result="duplicate"} 1`,
		`ghas_receiver_request_duration_seconds_count 2`,
	} {
		if !strings.Contains(metricsText, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	for _, addr := range []string{listen, adminAddr} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after shutdown", addr)
		}
	}
	logs := stderr.String()
	if strings.Contains(logs, "new-secret") || strings.Contains(logs, "old-secret") || strings.Contains(logs, "Design for failure") {
		t.Fatal("logs contain a secret or a payload")
	}
	if !strings.Contains(logs, "receiver stopped") {
		t.Fatalf("no clean stop in logs:\n%s", logs)
	}
}

func TestRunConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		setting string
	}{
		{"no secret", nil, map[string]string{}, "GITHUB_WEBHOOK_SECRET"},
		{"only separators", nil, map[string]string{"GITHUB_WEBHOOK_SECRET": " , "}, "GITHUB_WEBHOOK_SECRET"},
		{"secret file missing", nil, map[string]string{"GITHUB_WEBHOOK_SECRET_FILE": "/nonexistent/secret"}, "GITHUB_WEBHOOK_SECRET_FILE"},
		{"MAX_BODY_BYTES not a number", nil, map[string]string{"GITHUB_WEBHOOK_SECRET": "s", "MAX_BODY_BYTES": "abc"}, "MAX_BODY_BYTES"},
		{"MAX_BODY_BYTES zero", nil, map[string]string{"GITHUB_WEBHOOK_SECRET": "s", "MAX_BODY_BYTES": "0"}, "MAX_BODY_BYTES"},
		{"MAX_IN_FLIGHT zero", nil, map[string]string{"GITHUB_WEBHOOK_SECRET": "s", "MAX_IN_FLIGHT": "0"}, "MAX_IN_FLIGHT"},
		{"MAX_IN_FLIGHT not a number", nil, map[string]string{"GITHUB_WEBHOOK_SECRET": "s", "MAX_IN_FLIGHT": "many"}, "MAX_IN_FLIGHT"},
		{"bad log level", nil, map[string]string{"GITHUB_WEBHOOK_SECRET": "s", "LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{"empty listen flag", []string{"-listen-addr", ""}, map[string]string{"GITHUB_WEBHOOK_SECRET": "s"}, "LISTEN_ADDR"},
		{"unknown flag", []string{"-secret", "x"}, map[string]string{"GITHUB_WEBHOOK_SECRET": "s"}, "flags"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			err := run(context.Background(), append([]string{"receiver"}, tt.args...), configtest.Getenv(tt.env), io.Discard, &stderr)
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Setting != tt.setting {
				t.Fatalf("run = %v, want *config.Error for %s", err, tt.setting)
			}
			if config.ExitCode(err) != 2 {
				t.Fatalf("exit code %d, want 2", config.ExitCode(err))
			}
			if !strings.Contains(stderr.String(), tt.setting) {
				t.Fatalf("stderr %q does not name %s", stderr.String(), tt.setting)
			}
		})
	}
}

func TestRunHelp(t *testing.T) {
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"receiver", "-h"}, configtest.Getenv(nil), &stdout, io.Discard); err != nil {
		t.Fatalf("-h: %v", err)
	}
	for _, want := range []string{"LISTEN_ADDR", "GITHUB_WEBHOOK_SECRET_FILE", "MAX_BODY_BYTES", "NATS_URL", "ADMIN_ADDR"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("usage lacks %s", want)
		}
	}
}
