package sink_test

import (
	"bytes"
	"context"
	"encoding/json"
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
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/ocsf/ocsftest"
	"github.com/ghas-relay/ghas-relay/internal/sink"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

// sampleDoc is a code scanning finding document of the ocsf package's
// testdata, with the given key and status.
func sampleDoc(t testing.TB, key, status string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "ocsf", "testdata", "documents", "sast-removed.json"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := finding.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	doc.FindingKey = key
	doc.Findings[0].FindingStatus = status
	doc.Findings[0].RemovedReason = ""
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// publishRevision publishes a finding revision as the processor does,
// with the previous-revision headers when prevRev is not "-".
func publishRevision(t testing.TB, js jetstream.JetStream, key, id string, body []byte, prevRev, prevStatus string) {
	t.Helper()
	m := nats.NewMsg(stream.FindingsKVPrefix + key)
	m.Header.Set(stream.HeaderMsgID, id)
	m.Header.Set(stream.HeaderFindingKey, key)
	if prevRev != "-" {
		m.Header.Set(stream.HeaderPreviousRevision, prevRev)
	}
	if prevStatus != "" {
		m.Header.Set(stream.HeaderPreviousStatus, prevStatus)
	}
	m.Data = body
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatalf("publish %s: %v", id, err)
	}
}

// TestOCSFFormat: in OCSF mode every revision reaches the sink as one
// event that validates against the schema, with the activity its headers
// imply, under the revision's Idempotency-Key; a document that cannot be
// converted is dead-lettered with the reason and blocks nothing.
func TestOCSFFormat(t *testing.T) {
	schema, err := ocsftest.Load(ocsftest.Dir())
	if err != nil {
		t.Fatal(err)
	}
	srv := streamtest.Run(t)
	_, js := srv.Connect()
	fs := &fakeSink{}
	hs := httptest.NewServer(fs)
	defer hs.Close()

	const key = "sast.7.1"
	publishRevision(t, js, key, key+":r1", sampleDoc(t, key, finding.StatusActive), "0", "")
	publishRevision(t, js, key, key+":r2", sampleDoc(t, key, finding.StatusFixed), "1", finding.StatusActive)
	publishRevision(t, js, key, key+":r3", sampleDoc(t, key, finding.StatusActive), "-", "") // no headers: not first
	publishRevision(t, js, "sast.7.2", "sast.7.2:r1", sampleDoc(t, "sast.7.2", "OPEN"), "0", "")
	publishRevision(t, js, "sast.7.3", "sast.7.3:r1", []byte(`{"findingKey":`), "0", "")
	caughtUp(t, js)

	cfg := testConfig(hs.URL)
	cfg.Format = sink.FormatOCSF
	r := start(t, js, discard(), cfg)
	streamtest.WaitFor(t, 15*time.Second, "consumer settled", func() bool { return settled(t, js, sink.DefaultDurable) })
	r.stop()

	got := fs.delivered()
	if len(got) != 3 {
		t.Fatalf("sink received %d requests, want 3 (the two poison messages dead-lettered)", len(got))
	}
	for i, want := range []struct {
		id       string
		activity int
		status   int
	}{{key + ":r1", 1, 1}, {key + ":r2", 3, 4}, {key + ":r3", 2, 1}} {
		rq := got[i]
		if rq.key != want.id || rq.ctype != "application/json" || rq.auth != "Bearer "+testToken {
			t.Errorf("request %d: Idempotency-Key %q, Content-Type %q, auth %q", i, rq.key, rq.ctype, rq.auth)
		}
		if err := schema.Validate(rq.body); err != nil {
			t.Errorf("request %d does not validate: %v", i, err)
		}
		var ev struct {
			ActivityID  int `json:"activity_id"`
			StatusID    int `json:"status_id"`
			ClassUID    int `json:"class_uid"`
			FindingInfo struct {
				UID string `json:"uid"`
			} `json:"finding_info"`
		}
		if err := json.Unmarshal(rq.body, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.ActivityID != want.activity || ev.StatusID != want.status || ev.ClassUID != 2002 || ev.FindingInfo.UID != key {
			t.Errorf("request %d: %+v, want activity %d status %d", i, ev, want.activity, want.status)
		}
	}

	dlq := dlqByKey(t, js)
	for k, reason := range map[string]string{"sast.7.2": `unknown findingStatus "OPEN"`, "sast.7.3": "decode finding"} {
		m := dlq[k]
		if m == nil {
			t.Errorf("%s not dead-lettered", k)
			continue
		}
		if e := m.Header.Get(stream.HeaderError); !strings.Contains(e, reason) {
			t.Errorf("%s: Ghas-Error %q lacks %q", k, e, reason)
		}
	}
}

// caughtUp waits until GHAS_FINDINGS has copied every revision from KV.
func caughtUp(t testing.TB, js jetstream.JetStream) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		ok, _ := stream.FindingsCaughtUp(ctx, js)
		cancel()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("GHAS_FINDINGS did not catch up with KV")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dlqByKey(t *testing.T, js jetstream.JetStream) map[string]*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	dlq, err := js.Stream(ctx, stream.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*jetstream.RawStreamMsg{}
	for seq := uint64(1); ; seq++ {
		m, err := dlq.GetMsg(ctx, seq)
		if err != nil {
			return out
		}
		out[m.Header.Get(stream.HeaderFindingKey)] = m
	}
}

func TestNewRejectsUnknownFormat(t *testing.T) {
	srv := streamtest.Run(t)
	_, js := srv.Connect()
	cfg := testConfig("http://127.0.0.1:1/")
	cfg.Format = "xml"
	_, err := sink.New(discard(), js, &http.Client{}, metrics.NewRegistry(), cfg)
	if err == nil || !strings.Contains(err.Error(), "SINK_FORMAT") {
		t.Fatalf("err = %v, want one naming SINK_FORMAT", err)
	}
}

// BenchmarkForwardFormat compares forwarding real finding documents as
// they are with forwarding them as OCSF events (the same run, the same
// sink answering 204 at once). cpu-µs/op is the process's CPU time (NATS
// server, forwarder and sink together) per finding.
func BenchmarkForwardFormat(b *testing.B) {
	for _, format := range []string{sink.FormatDocument, sink.FormatOCSF} {
		b.Run("format="+format, func(b *testing.B) { benchFormat(b, format) })
	}
}

func benchFormat(b *testing.B, format string) {
	srv := streamtest.Run(b)
	_, js := srv.Connect()
	var n sync.WaitGroup
	n.Add(b.N)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
		n.Done()
	}))
	defer hs.Close()
	for i := range b.N {
		key := fmt.Sprintf("sast.%d.%d", i%50, i)
		publishRevision(b, js, key, key+":h", sampleDoc(b, key, finding.StatusActive), "0", "")
	}
	caughtUp(b, js)
	f, err := sink.New(discard(), js, &http.Client{Timeout: 5 * time.Second}, metrics.NewRegistry(), sink.Config{URL: hs.URL, Format: format})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ResetTimer()
	cpu := cpuTime()
	go func() { done <- f.Run(ctx) }()
	n.Wait()
	b.StopTimer()
	if used := cpuTime() - cpu; used > 0 {
		b.ReportMetric(float64(used.Microseconds())/float64(b.N), "cpu-µs/op")
	}
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// TestDocumentFormatIsTheDocument: the body a sink receives in document
// mode is the stored document byte for byte.
func TestDocumentFormatIsTheDocument(t *testing.T) {
	srv := streamtest.Run(t)
	_, js := srv.Connect()
	fs := &fakeSink{}
	hs := httptest.NewServer(fs)
	defer hs.Close()
	body := sampleDoc(t, "sast.8.1", finding.StatusActive)
	publishRevision(t, js, "sast.8.1", "sast.8.1:r1", body, "0", "")
	caughtUp(t, js)
	cfg := testConfig(hs.URL)
	cfg.Format = sink.FormatDocument
	r := start(t, js, discard(), cfg)
	streamtest.WaitFor(t, 10*time.Second, "delivered", func() bool { return len(fs.delivered()) == 1 })
	r.stop()
	if got := fs.delivered()[0].body; !bytes.Equal(got, body) {
		t.Errorf("body %s, want the document", got)
	}
}
