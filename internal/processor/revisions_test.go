package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/sink"
	"github.com/ghas-relay/ghas-relay/internal/state"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// publishReconcile stores a reconciler event carrying GitHub's view of an
// alert, read after revision snap of ghas_findings.
func (e *env) publishReconcile(event string, body []byte, snap uint64) {
	e.t.Helper()
	e.seq++
	msg := &nats.Msg{Subject: stream.ReconcileSubject(event), Header: nats.Header{}, Data: body}
	msg.Header.Set(stream.HeaderMsgID, fmt.Sprintf("reconcile-%d", e.seq))
	msg.Header.Set(stream.HeaderEvent, event)
	msg.Header.Set(stream.HeaderOrigin, stream.OriginReconcile)
	msg.Header.Set(stream.HeaderReceivedAt, time.Date(2026, 11, 1, 0, 0, e.seq, 0, time.UTC).Format(time.RFC3339))
	msg.Header.Set(stream.HeaderSnapshotRevision, strconv.FormatUint(snap, 10))
	if _, err := e.js.PublishMsg(context.Background(), msg); err != nil {
		e.t.Fatalf("publish: %v", err)
	}
}

// A finding that returns to an earlier content (a repository taken out of
// the App and added back: A, REMOVED, A) is three stored revisions, three
// messages on GHAS_FINDINGS with three message ids, and three sink
// deliveries with three idempotency keys.
func TestEveryRevisionDelivered(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var posts []string // idempotency key and content hash of each POST
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		d, err := finding.Decode(b)
		mu.Lock()
		if err == nil {
			posts = append(posts, r.Header.Get("Idempotency-Key")+" "+d.ContentHash())
		}
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	fwd, err := sink.New(slog.New(slog.NewTextHandler(io.Discard, nil)), e.js, srv.Client(), metrics.NewRegistry(), sink.Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = fwd.Run(ctx) }()
	e.start(e.newProcessor(Config{Workers: 1}))

	raw, err := os.ReadFile("../../testdata/webhooks/code_scanning_alert/created.payload.json")
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]json.RawMessage
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	p["action"] = json.RawMessage(`"reconcile"`)
	var alert map[string]any
	if err := json.Unmarshal(p["alert"], &alert); err != nil {
		t.Fatal(err)
	}
	alert["updated_at"] = "2026-10-01T00:00:00Z" // as the REST API gives it
	p["alert"], _ = json.Marshal(alert)
	body, _ := json.Marshal(p)
	st := state.New(e.js, e.findings, 0)
	last := func() uint64 {
		r, err := st.LastRevision(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	key := finding.Key(finding.SAST, 337911632, 10)

	e.publishReconcile("code_scanning_alert", body, last()) // A
	e.waitDrained()
	a, _ := e.doc(key)
	e.publish(stream.WebhookSubject("installation_repositories"), "installation_repositories",
		[]byte(`{"action":"removed","repositories_removed":[{"id":337911632}]}`)) // B
	e.waitDrained()
	if b, _ := e.doc(key); b.Findings[0].FindingStatus != finding.StatusRemoved || b.Findings[0].RemovedReason != finding.RemovedRepositoryRemoved {
		t.Fatalf("after the repository left: %s (%s)", b.Findings[0].FindingStatus, b.Findings[0].RemovedReason)
	}
	e.publishReconcile("code_scanning_alert", body, last()) // A again
	e.waitDrained()
	again, _ := e.doc(key)
	if again.ContentHash() != a.ContentHash() {
		t.Fatalf("the repository came back but the finding did not return to its content")
	}

	msgs := e.messages(stream.FindingsStream, stream.FindingSubject(finding.SAST, 337911632))
	ids := map[string]bool{}
	for _, m := range msgs {
		ids[m.Header.Get(stream.HeaderMsgID)] = true
	}
	if len(msgs) != 3 || len(ids) != 3 {
		t.Errorf("GHAS_FINDINGS holds %d messages with %d ids for A, B, A; want 3 and 3", len(msgs), len(ids))
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(posts)
		got := append([]string(nil), posts...)
		mu.Unlock()
		if n >= 3 || time.Now().After(deadline) {
			keys := map[string]bool{}
			for _, s := range got {
				keys[s[:len(s)-33]] = true
			}
			if n != 3 || len(keys) != 3 || got[2][len(got[2])-32:] != a.ContentHash() {
				t.Errorf("sink got %d deliveries (%v), want 3 with 3 idempotency keys ending on A", n, got)
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
}
