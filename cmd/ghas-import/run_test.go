package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/ghas-relay/ghas-relay/internal/config"
	"github.com/ghas-relay/ghas-relay/internal/imports"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/processor"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
	"github.com/ghas-relay/ghas-relay/internal/tokens"
	"github.com/ghas-relay/ghas-relay/internal/transform"
)

type maps struct{ m *transform.Maps }

func (s maps) Current() *transform.Maps { return s.m }

// TestUploadAndWait: the command uploads a sample, waits, and reports
// the processed outcome; a second run is a duplicate of the same import.
func TestUploadAndWait(t *testing.T) {
	srv := streamtest.Run(t)
	_, js := srv.Connect()
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	kv, _ := js.KeyValue(ctx, stream.FindingsBucket)
	proc := processor.New(logger, js, js, kv, maps{transform.Defaults()}, nil, processor.NewMetrics(metrics.NewRegistry()), processor.Config{})
	done := make(chan struct{})
	go func() { defer close(done); _ = proc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	alert, err := os.ReadFile(filepath.Join("..", "..", "testdata", "webhooks", "code_scanning_alert", "created.payload.json"))
	if err != nil {
		t.Fatal(err)
	}
	m := &nats.Msg{Subject: stream.WebhookSubject("code_scanning_alert"), Data: alert, Header: nats.Header{}}
	m.Header.Set(stream.HeaderEvent, "code_scanning_alert")
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(imports.Routes(http.NotFoundHandler(), imports.NewHandler(logger, js, imports.Options{Tokens: mustTokens(t, "s3cret"), MaxBodyBytes: 1 << 20})))
	defer ts.Close()
	env := map[string]string{"IMPORT_URL": ts.URL, "IMPORT_TOKEN": "s3cret"}
	args := []string{"ghas-import", "-gzip", "-import-file", filepath.Join("..", "..", "testdata", "imports", "codex-security.csv"),
		"-import-format", "codex-csv", "-import-repository", "Codertocat/Hello-World", "-import-wait", "30s"}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut); err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "processed: 3 results: 3 new") {
		t.Errorf("output:\n%s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut); err != nil || !strings.Contains(out.String(), "duplicate") {
		t.Errorf("second run: %v\n%s", err, out.String())
	}
	env["IMPORT_TOKEN"] = "wrong"
	if err := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong token: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		args    []string
		setting string
	}{
		{[]string{"x", "-import-repository", "o/r"}, "IMPORT_FILE"},
		{[]string{"x", "-import-file", "a.sarif"}, "IMPORT_REPOSITORY"},
		{[]string{"x", "-import-file", "a.txt", "-import-repository", "o/r"}, "IMPORT_FORMAT"},
		{[]string{"x", "-import-file", "a.sarif", "-import-repository", "o/r", "-import-url", "ftp://x"}, "IMPORT_URL"},
	} {
		err := run(context.Background(), c.args, func(k string) string {
			if k == "IMPORT_TOKEN" {
				return "t"
			}
			return ""
		}, io.Discard, io.Discard)
		var ce *config.Error
		if !errors.As(err, &ce) || ce.Setting != c.setting || config.ExitCode(err) != 2 {
			t.Errorf("%v: %v, want a config error naming %s", c.args, err, c.setting)
		}
	}
}

func mustTokens(t *testing.T, text string) tokens.Set {
	t.Helper()
	s, err := tokens.Parse(text, false)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
