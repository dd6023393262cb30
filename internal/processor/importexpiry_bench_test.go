package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/imports"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
	"github.com/ghas-relay/ghas-relay/internal/transform/transformtest"
)

// BenchmarkCompleteImport applies a complete scan of 2,000 findings, each
// at a later scan time than the last (every finding is written once per
// scan), with the scope's record present (the fast path) and with it
// gone (the scope's findings listed from ghas_findings). In the "fixed"
// cases the scope also holds 2,000 findings FIXED before the runs, which
// only the listing without a record visits (one read each, no write).
//
//	go test -run '^$' -bench BenchmarkCompleteImport -benchtime 5x -count 5 ./internal/processor/
func BenchmarkCompleteImport(b *testing.B) {
	const n = 2000
	for _, c := range []struct {
		name     string
		fixed    int
		noRecord bool
	}{
		{"record", 0, false},
		{"no-record", 0, true},
		{"record+fixed", n, false},
		{"no-record+fixed", n, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			p, js := benchProcessor(b)
			kv, err := js.KeyValue(ctx, stream.ImportsBucket)
			if err != nil {
				b.Fatal(err)
			}
			apply := func(at time.Time, results int) imports.Counts {
				b.Helper()
				scannedAt := at.UTC().Format(time.RFC3339)
				params := imports.Params{Format: imports.FormatSARIF, Repository: "Codertocat/Hello-World", Tool: "Bench Tool",
					Category: "bench/", ScannedAt: scannedAt, Complete: true}
				body := benchSARIF(b, results, scannedAt)
				run := &importRun{id: imports.ID(params, body), params: params, kvImp: kv, kvSt: kv}
				if _, err := p.applyImport(ctx, run, body); err != nil {
					b.Fatal(err)
				}
				return run.status.Findings
			}
			at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			apply(at, n+c.fixed) // the scope's findings
			if got := apply(at.Add(time.Minute), n); got.Fixed != c.fixed {
				b.Fatalf("%d findings fixed before the runs, want %d", got.Fixed, c.fixed)
			}
			b.ResetTimer()
			for i := range b.N {
				if c.noRecord {
					b.StopTimer()
					st, err := js.Stream(ctx, "KV_"+stream.ImportsBucket)
					if err != nil {
						b.Fatal(err)
					}
					if err := st.Purge(ctx, jetstream.WithPurgeSubject(fmt.Sprintf("$KV.%s.%s>", stream.ImportsBucket, scopeKeyPrefix))); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				if got := apply(at.Add(time.Duration(i+1)*time.Hour), n); got.Changed != n || got.Fixed != 0 {
					b.Fatalf("run %d: %+v", i, got)
				}
			}
		})
	}
}

// benchProcessor is a running processor that knows Hello-World from
// GitHub's code scanning sample.
func benchProcessor(b *testing.B) (*Processor, jetstream.JetStream) {
	b.Helper()
	srv := streamtest.Run(b)
	_, js := srv.Connect()
	ctx, cancel := context.WithCancel(context.Background())
	findings, err := js.KeyValue(ctx, stream.FindingsBucket)
	if err != nil {
		b.Fatal(err)
	}
	p := New(slog.New(slog.NewTextHandler(io.Discard, nil)), js, js, findings, transformtest.Defaults(), nil, NewMetrics(metrics.NewRegistry()), Config{})
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "webhooks", "code_scanning_alert", "created.payload.json"))
	if err != nil {
		b.Fatal(err)
	}
	msg := &nats.Msg{Subject: stream.WebhookSubject("code_scanning_alert"), Header: nats.Header{}, Data: body}
	msg.Header.Set(stream.HeaderMsgID, "bench-delivery")
	msg.Header.Set(stream.HeaderEvent, "code_scanning_alert")
	msg.Header.Set(stream.HeaderReceivedAt, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339))
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ok, _ := stream.Drained(ctx, js, ConsumerName); ok {
			return p, js
		}
		if time.Now().After(deadline) {
			b.Fatal("the GitHub alert was not processed within 30s")
		}
	}
}

// benchSARIF is a SARIF log of one tool with n ACTIVE results, each of
// its own id, dated scannedAt.
func benchSARIF(b *testing.B, n int, scannedAt string) []byte {
	b.Helper()
	results := make([]any, n)
	for i := range results {
		results[i] = map[string]any{
			"ruleId":              "bench-rule",
			"message":             map[string]any{"text": "a benchmark finding"},
			"locations":           []any{map[string]any{"physicalLocation": map[string]any{"artifactLocation": map[string]any{"uri": "src/bench.go"}, "region": map[string]any{"startLine": i + 1}}}},
			"partialFingerprints": map[string]any{"primaryLocationLineHash": fmt.Sprintf("bench%08d:1", i)},
		}
	}
	log := map[string]any{
		"version": "2.1.0",
		"runs": []any{map[string]any{
			"tool":        map[string]any{"driver": map[string]any{"name": "Bench Tool", "rules": []any{map[string]any{"id": "bench-rule", "properties": map[string]any{"tags": []any{"security", "CWE-79"}}}}}},
			"invocations": []any{map[string]any{"executionSuccessful": true, "endTimeUtc": scannedAt}},
			"results":     results,
		}},
	}
	out, err := json.Marshal(log)
	if err != nil {
		b.Fatal(err)
	}
	return out
}
