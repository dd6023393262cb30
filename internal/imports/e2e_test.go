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
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/imports"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/processor"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
	"github.com/ghas-relay/ghas-relay/internal/tokens"
	"github.com/ghas-relay/ghas-relay/internal/transform"
)

// TestEveryFormatEndToEnd posts every sample through the receiver's
// handler, lets a real processor apply it on in-process JetStream, and
// reads the outcome with GET: every import is processed into findings on
// the asset GitHub's alert created, and the repository lists every source.
func TestEveryFormatEndToEnd(t *testing.T) {
	p := startPipeline(t)
	js, kvFindings, ts := p.js, p.kvFindings, p.ts
	ctx := context.Background()
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
		acc := postImport(t, ts.URL, c.query, c.contentType, body)
		if acc.Status != "accepted" {
			t.Fatalf("%s: %+v", c.file, acc)
		}
		st := waitProcessed(t, ts.URL, acc.Import)
		if st.Status != imports.StatusProcessed || st.Results != acc.Results || st.Findings.New != acc.Results || st.Error != "" || st.By != "token-1" {
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
	for _, d := range allFindings(t, kvFindings) {
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

// TestReimportEndToEnd: imports X, Y, X of one scope without scan times
// (each dated by its receive time): what X lists and Y did not is FIXED
// after Y and ACTIVE again after the second X; X posted twice in a row
// is a duplicate and changes nothing.
func TestReimportEndToEnd(t *testing.T) {
	p := startPipeline(t)
	x := []byte("id,title,path,line\nx-only,Only in X,src/x.go,3\nboth,In both,src/both.go,7\n")
	y := []byte("id,title,path,line\nboth,In both,src/both.go,7\ny-only,Only in Y,src/y.go,9\n")
	statusOf := func(title string) string {
		for _, d := range allFindings(t, p.kvFindings) {
			if d.Findings[0].Name == title {
				return d.Findings[0].FindingStatus
			}
		}
		return "absent"
	}
	apply := func(name string, body []byte, want string) imports.Status {
		t.Helper()
		acc := postImport(t, p.ts.URL, "&tool=Reimport+Scanner", "text/csv", body)
		if acc.Status != want {
			t.Fatalf("%s: %+v, want %s", name, acc, want)
		}
		return waitProcessed(t, p.ts.URL, acc.Import)
	}
	apply("X", x, "accepted")
	if st := apply("X again", x, "duplicate"); st.Findings.New != 2 {
		t.Errorf("the duplicate answers X's status: %+v", st)
	}
	apply("Y", y, "accepted")
	if s := statusOf("Only in X"); s != finding.StatusFixed {
		t.Fatalf("after Y, X's own finding is %s, want FIXED", s)
	}
	st := apply("X after Y", x, "accepted")
	for title, want := range map[string]string{"Only in X": finding.StatusActive, "In both": finding.StatusActive, "Only in Y": finding.StatusFixed} {
		if s := statusOf(title); s != want {
			t.Errorf("after X, Y, X: %q is %s, want %s (%+v)", title, s, want, st)
		}
	}
}

// pipeline is a receiver's imports handler and a processor on in-process
// JetStream, with GitHub's alert on Codertocat/Hello-World applied (the
// repository is known).
type pipeline struct {
	js         jetstream.JetStream
	kvFindings jetstream.KeyValue
	ts         *httptest.Server
}

func startPipeline(t *testing.T) *pipeline {
	t.Helper()
	srv := streamtest.Run(t)
	_, js := srv.Connect()
	ctx, cancel := context.WithCancel(context.Background())
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
	t.Cleanup(func() { cancel(); <-done })

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

	streamtest.WaitFor(t, 30*time.Second, "GitHub's alert stored", func() bool { return len(allFindings(t, kvFindings)) > 0 })
	h := imports.NewHandler(logger, js, imports.Options{Tokens: mustTokens(t, "t0k"), MaxBodyBytes: 1 << 20})
	ts := httptest.NewServer(imports.Routes(http.NotFoundHandler(), h))
	t.Cleanup(ts.Close)
	return &pipeline{js: js, kvFindings: kvFindings, ts: ts}
}

type acceptedImport struct {
	Import, Status string
	Results        int
}

// postImport posts a file for Codertocat/Hello-World (query: more
// parameters, each starting with &).
func postImport(t *testing.T, base, query, contentType string, body []byte) acceptedImport {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/imports?repository=https://github.com/Codertocat/Hello-World"+query, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer t0k")
	req.Header.Set("Content-Type", contentType)
	var acc acceptedImport
	if code := do(t, req, &acc); code != http.StatusAccepted {
		t.Fatalf("POST: %d %+v", code, acc)
	}
	return acc
}

func allFindings(t *testing.T, kv jetstream.KeyValue) []finding.Document {
	t.Helper()
	ctx := context.Background()
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []finding.Document
	for k := range lister.Keys() {
		e, err := kv.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		d, err := finding.Decode(e.Value())
		if err != nil || len(d.Findings) == 0 {
			continue
		}
		out = append(out, d)
	}
	return out
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

func mustTokens(t *testing.T, text string) tokens.Set {
	t.Helper()
	s, err := tokens.Parse(text, false)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
