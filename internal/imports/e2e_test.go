package imports_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/imports"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/processor"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
	"github.com/ghas-relay/ghas-relay/internal/transform"
)

// TestEveryFormatEndToEnd posts every sample through the receiver's
// handler, lets a real processor apply it on in-process JetStream, and
// reads the outcome with GET: every import is processed into findings on
// the asset GitHub's alert created, and the repository lists every source.
func TestEveryFormatEndToEnd(t *testing.T) {
	srv := streamtest.Run(t)
	_, js := srv.Connect()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	kvMaps, err := js.KeyValue(ctx, stream.MapsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := transform.Seed(ctx, kvMaps); err != nil {
		t.Fatal(err)
	}
	watcher := transform.NewWatcher(logger, kvMaps)
	go func() { _ = watcher.Run(ctx) }()
	if err := watcher.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	kvFindings, _ := js.KeyValue(ctx, stream.FindingsBucket)
	proc := processor.New(logger, js, js, kvFindings, watcher, nil, processor.NewMetrics(metrics.NewRegistry()), processor.Config{RetryDelay: 50 * time.Millisecond})
	done := make(chan struct{})
	go func() { defer close(done); _ = proc.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// GitHub's own alert makes the repository known.
	alert, err := os.ReadFile(filepath.Join("..", "..", "testdata", "webhooks", "code_scanning_alert", "created.payload.json"))
	if err != nil {
		t.Fatal(err)
	}
	m := &nats.Msg{Subject: stream.WebhookSubject("code_scanning_alert"), Data: alert, Header: nats.Header{}}
	m.Header.Set(stream.HeaderEvent, "code_scanning_alert")
	m.Header.Set(stream.HeaderMsgID, "d-1")
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}

	h := imports.NewHandler(logger, js, imports.Options{Tokens: []string{"t0k"}, MaxBodyBytes: 1 << 20})
	ts := httptest.NewServer(imports.Routes(http.NotFoundHandler(), h))
	defer ts.Close()
	for _, c := range []struct{ file, query, contentType string }{
		{"codeql.sarif", "", "application/sarif+json"},
		{"semgrep.sarif", "", "application/json"},
		{"claude-security.sarif", "", "application/sarif+json"},
		{"codex-security.csv", "&format=codex-csv", "text/csv"},
		{"generic.csv", "&tool=Snyk+Code&ref=main", "text/csv"},
	} {
		body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "imports", c.file))
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/imports?repository=https://github.com/Codertocat/Hello-World"+c.query, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer t0k")
		req.Header.Set("Content-Type", c.contentType)
		var acc struct {
			Import, Status string
			Results        int
		}
		if code := do(t, req, &acc); code != http.StatusAccepted || acc.Status != "accepted" {
			t.Fatalf("%s: %d %+v", c.file, code, acc)
		}
		st := waitProcessed(t, ts.URL, acc.Import)
		if st.Status != imports.StatusProcessed || st.Results != acc.Results || st.Findings.New != acc.Results || st.Error != "" {
			t.Errorf("%s: %+v", c.file, st)
		}
	}
	// One asset, every source.
	st, _ := js.Stream(ctx, stream.FindingsStream)
	last, err := st.GetLastMsgForSubject(ctx, stream.AssetSubject(337911632))
	if err != nil {
		t.Fatal(err)
	}
	var asset finding.Document
	if err := json.Unmarshal(last.Data, &asset); err != nil {
		t.Fatal(err)
	}
	want := []string{"Anthropic - Claude Security", "GitHub - CodeQL (imported)", "GitHub Advanced Security - Code Security", "OpenAI - Codex Security", "Semgrep - Semgrep Code", "Snyk Code"}
	if fmt.Sprint(asset.AssetDetail.Sources) != fmt.Sprint(want) {
		t.Errorf("asset sources %v, want %v", asset.AssetDetail.Sources, want)
	}
	// The CodeQL and the Claude Security finding at the same place and
	// weakness share a correlation key.
	keys := map[string][]string{}
	lister, err := kvFindings.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k := range lister.Keys() {
		e, err := kvFindings.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := finding.Decode(e.Value())
		if ck := d.Findings[0].CorrelationKey; ck != "" {
			keys[ck] = append(keys[ck], d.Findings[0].DetectionMethod)
		}
	}
	pairs := 0
	for _, tools := range keys {
		if len(tools) > 1 {
			pairs++
		}
	}
	if pairs < 2 {
		t.Errorf("correlated groups %v: want the zip slip (CodeQL, Claude Security) and the SQL injection (CodeQL, Codex Security)", keys)
	}
}

func do(t *testing.T, req *http.Request, v any) int {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_ = json.NewDecoder(resp.Body).Decode(v)
	return resp.StatusCode
}

func waitProcessed(t *testing.T, base, id string) imports.Status {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, base+"/imports/"+id, nil)
		req.Header.Set("Authorization", "Bearer t0k")
		var st imports.Status
		if code := do(t, req, &st); code == http.StatusOK && st.Status != imports.StatusAccepted {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("import %s not processed within 30s", id)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
