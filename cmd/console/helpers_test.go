package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/config/configtest"
	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/logging/loggingtest"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

const testToken = "console-test-token"

// world is a JetStream server with the layout, and a writer of findings
// as the processor writes them (KV with the headers GHAS_FINDINGS copies).
type world struct {
	t   *testing.T
	ns  *streamtest.Server
	js  jetstream.JetStream
	kv  jetstream.KeyValue
	rev map[string]uint64
	doc map[string]finding.Document
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ns := streamtest.Run(t)
	_, js := ns.Connect()
	if _, err := stream.Apply(t.Context(), js, stream.Layout{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), stream.FindingsBucket)
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, ns: ns, js: js, kv: kv, rev: map[string]uint64{}, doc: map[string]finding.Document{}}
}

// put stores d as the next revision of its key.
func (w *world) put(d finding.Document) {
	w.t.Helper()
	data, hash, err := d.Encode()
	if err != nil {
		w.t.Fatal(err)
	}
	key := d.FindingKey
	prev := w.rev[key]
	msg := &nats.Msg{Subject: stream.FindingsKVPrefix + key, Header: nats.Header{}, Data: data}
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(prev, 10))
	msg.Header.Set(stream.HeaderMsgID, fmt.Sprintf("%s:%d-%s", key, prev, hash))
	msg.Header.Set(stream.HeaderFindingKey, key)
	msg.Header.Set(stream.HeaderPreviousRevision, strconv.FormatUint(prev, 10))
	if old, ok := w.doc[key]; ok {
		msg.Header.Set(stream.HeaderPreviousStatus, old.Findings[0].FindingStatus)
	}
	ack, err := w.js.PublishMsg(w.t.Context(), msg)
	if err != nil {
		w.t.Fatalf("put %s: %v", key, err)
	}
	w.rev[key] = ack.Sequence
	w.doc[key] = d
}

var base = time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC)

func ts(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

// finding builds a document.
func mkDoc(key, repo, owner, source, name, status, severity string, score int, factors ...finding.Factor) finding.Document {
	ds, _, _ := strings.Cut(key, ".")
	typeName := map[string]string{finding.SAST: finding.TypeSAST, finding.SCA: finding.TypeSCA, finding.Secret: finding.TypeSecret}[ds]
	d := finding.Document{SchemaVersion: 1, FindingKey: key, FindingTypeName: typeName, VendorName: "GitHub", Source: source,
		AssetDetail: finding.AssetDetail{FullName: repo, Name: repo[strings.Index(repo, "/")+1:]},
		Findings: []finding.Finding{{ExternalFindingID: key, Name: name, FindingStatus: status, Severity: severity,
			FirstFoundOn: ts(base), LastFoundOn: ts(base.Add(time.Hour)), RuleID: "rule/" + ds,
			Description: "Long description of " + name, FindingURL: "https://github.com/" + repo + "/security/1",
			Priority: &finding.Priority{Score: score, Factors: factors}}}}
	if owner != "" {
		d.AssetDetail.Ownership = &finding.Ownership{Owner: owner}
	}
	return d
}

// console runs the program with env on free addresses until the test ends
// and returns its base URL once /readyz answers 200.
func startConsole(t *testing.T, w *world, env map[string]string) (string, *loggingtest.Buffer) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", streamtest.FreePort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", streamtest.FreePort(t))
	all := map[string]string{"NATS_URL": w.ns.URL(), "CONSOLE_ADDR": addr, "ADMIN_ADDR": admin, "CONSOLE_TOKENS": testToken}
	for k, v := range env {
		all[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stderr loggingtest.Buffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"console"}, configtest.Getenv(all), io.Discard, &stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("console: %v\n%s", err, stderr.String())
			}
		case <-time.After(20 * time.Second):
			t.Error("console did not stop")
		}
	})
	streamtest.WaitFor(t, 20*time.Second, "console ready", func() bool {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return "http://" + all["CONSOLE_ADDR"], &stderr
}

// get fetches url with the test token and decodes a JSON answer into v
// (nil: not decoded); it returns the status and the body.
func get(t *testing.T, url string, v any) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v\n%s", url, err, b)
		}
	}
	return resp.StatusCode, string(b)
}

// goldenDocs are the transform's golden findings.
func goldenDocs(t *testing.T) []finding.Document {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("..", "..", "internal", "transform", "testdata", "golden", "*", "*.json"))
	rest, _ := filepath.Glob(filepath.Join("..", "..", "internal", "transform", "testdata", "golden", "*", "rest", "*.json"))
	var out []finding.Document
	for _, f := range append(files, rest...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d, err := finding.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		t.Fatal("no golden findings")
	}
	return out
}

func writeFile(name, s string) error { return os.WriteFile(name, []byte(s), 0o600) }
