package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
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
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
	"github.com/ghas-relay/ghas-relay/internal/transform"
	"github.com/ghas-relay/ghas-relay/internal/transform/transformtest"
)

type env struct {
	t        *testing.T
	srv      *streamtest.Server
	nc       *nats.Conn
	js       jetstream.JetStream
	findings jetstream.KeyValue
	state    jetstream.KeyValue
	seq      int
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := streamtest.Run(t)
	nc, js := srv.Connect()
	kv, err := js.KeyValue(context.Background(), stream.FindingsBucket)
	if err != nil {
		t.Fatal(err)
	}
	state, err := js.KeyValue(context.Background(), stream.StateBucket)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, srv: srv, nc: nc, js: js, findings: kv, state: state}
}

func (e *env) newProcessor(cfg Config) *Processor {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = 50 * time.Millisecond
	}
	return New(logger, e.js, e.js, e.findings, transformtest.Defaults(), nil, NewMetrics(metrics.NewRegistry()), cfg)
}

// start runs p until the test ends or the returned stop is called.
func (e *env) start(p *Processor) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := p.Run(ctx); err != nil {
			e.t.Errorf("processor run: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	e.t.Cleanup(stop)
	return stop
}

// publish stores one event as the receiver would.
func (e *env) publish(subject, event string, body []byte) {
	e.t.Helper()
	e.seq++
	msg := &nats.Msg{Subject: subject, Header: nats.Header{}, Data: body}
	msg.Header.Set(stream.HeaderMsgID, fmt.Sprintf("delivery-%d", e.seq))
	msg.Header.Set(stream.HeaderEvent, event)
	msg.Header.Set(stream.HeaderReceivedAt, time.Date(2026, 11, 1, 0, 0, e.seq, 0, time.UTC).Format(time.RFC3339))
	if _, err := e.js.PublishMsg(context.Background(), msg); err != nil {
		e.t.Fatalf("publish: %v", err)
	}
}

// waitDrained waits until the processor consumer has acked everything.
func (e *env) waitDrained() {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if ok, _ := stream.Drained(context.Background(), e.js, ConsumerName); ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatal("events not drained within 30s")
}

func (e *env) doc(key string) (finding.Document, bool) {
	e.t.Helper()
	entry, err := e.findings.Get(context.Background(), key)
	if err != nil {
		return finding.Document{}, false
	}
	d, err := finding.Decode(entry.Value())
	if err != nil {
		e.t.Fatal(err)
	}
	return d, true
}

// findingMessages returns every message on GHAS_FINDINGS for subject filter.
func (e *env) messages(streamName, filter string) []jetstream.RawStreamMsg {
	e.t.Helper()
	ctx := context.Background()
	st, err := e.js.Stream(ctx, streamName)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if filter == "" || matchSubject(filter, m.Subject) {
			out = append(out, *m)
		}
	}
	return out
}

func matchSubject(prefix, subject string) bool {
	return len(subject) >= len(prefix) && subject[:len(prefix)] == prefix
}

func sample(t *testing.T, event, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "webhooks", event, name))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// codeScanningEvent is the created sample turned into the given action of
// alert number with GitHub's timestamps at minute m of a fixed day.
func codeScanningEvent(t *testing.T, number int, action string, minute int) []byte {
	t.Helper()
	p := sample(t, "code_scanning_alert", "created.payload.json")
	p["action"] = action
	a := p["alert"].(map[string]any)
	a["number"] = number
	at := time.Date(2026, 10, 1, 12, minute, 0, 0, time.UTC).Format(time.RFC3339)
	a["updated_at"] = at
	switch action {
	case "created", "reopened", "reopened_by_user", "appeared_in_branch":
		a["state"] = "open"
	case "fixed":
		a["state"] = "fixed"
		a["fixed_at"] = at
	case "closed_by_user":
		a["state"] = "dismissed"
		a["dismissed_at"] = at
		a["dismissed_reason"] = "false positive"
		a["dismissed_by"] = map[string]any{"login": "octocat", "id": 1}
	}
	return mustJSON(t, p)
}

func permutations(xs []string) [][]string {
	if len(xs) <= 1 {
		return [][]string{append([]string(nil), xs...)}
	}
	var out [][]string
	for i := range xs {
		rest := append(append([]string(nil), xs[:i]...), xs[i+1:]...)
		for _, p := range permutations(rest) {
			out = append(out, append([]string{xs[i]}, p...))
		}
	}
	return out
}

func TestAnyArrivalOrderEndsInNewestState(t *testing.T) {
	e := newEnv(t)
	// Lifecycle in GitHub's time: created 0, fixed 1, reopened 2, dismissed 3.
	minute := map[string]int{"created": 0, "fixed": 1, "reopened": 2, "closed_by_user": 3}
	orders := permutations([]string{"created", "fixed", "reopened", "closed_by_user"})
	const repo = 337911632
	for i, order := range orders {
		for _, action := range order {
			body := codeScanningEvent(t, 1000+i, action, minute[action])
			e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", body)
			// A second copy of the same content by another route (a
			// redelivery with another id) must not produce a second message.
			e.publish(stream.RedeliverySubject("code_scanning_alert"), "code_scanning_alert", body)
		}
	}
	// Two instances share the durable consumer.
	e.start(e.newProcessor(Config{Workers: 4}))
	e.start(e.newProcessor(Config{Workers: 4}))
	e.waitDrained()

	msgs := e.messages(stream.FindingsStream, stream.FindingsPrefix)
	ids := map[string]int{}
	last := map[string]string{}
	for _, m := range msgs {
		ids[m.Header.Get(stream.HeaderMsgID)]++
		d, err := finding.Decode(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		last[m.Header.Get(stream.HeaderFindingKey)] = d.ContentHash()
	}
	for id, n := range ids {
		if n > 1 {
			t.Errorf("finding message %s published %d times", id, n)
		}
	}
	want := time.Date(2026, 10, 1, 12, 3, 0, 0, time.UTC).Format(time.RFC3339)
	for i, order := range orders {
		key := finding.Key(finding.SAST, repo, int64(1000+i))
		d, ok := e.doc(key)
		if !ok {
			t.Fatalf("order %v: no finding %s", order, key)
		}
		f := d.Finding()
		if f.FindingStatus != finding.StatusDismissed || f.LastFoundOn == nil || *f.LastFoundOn != want {
			t.Errorf("order %v: status %s lastFoundOn %v, want DISMISSED at %s", order, f.FindingStatus, deref(f.LastFoundOn), want)
		}
		if last[key] != d.ContentHash() {
			t.Errorf("order %v: last finding message differs from KV state", order)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func TestPoisonEventsGoToDLQAndDoNotBlock(t *testing.T) {
	e := newEnv(t)
	poison := map[string][]byte{
		"invalid json":  []byte(`{"action":"created","alert":`),
		"missing alert": []byte(`{"action":"created","repository":{"id":1,"html_url":"https://github.com/a/b"}}`),
		"wrong types":   []byte(`{"action":"created","alert":{"number":"ten"},"repository":{"id":"x"}}`),
	}
	for _, body := range poison {
		e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", body)
	}
	good := codeScanningEvent(t, 7, "created", 0)
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", good)
	e.start(e.newProcessor(Config{Workers: 1}))
	e.waitDrained()

	dlq := e.messages(stream.DLQStream, stream.DLQPrefix)
	if len(dlq) != len(poison) {
		t.Fatalf("DLQ holds %d messages, want %d", len(dlq), len(poison))
	}
	seen := map[string]bool{}
	for _, m := range dlq {
		if m.Header.Get(stream.HeaderError) == "" {
			t.Errorf("DLQ message without %s", stream.HeaderError)
		}
		if m.Subject != stream.DLQSubject("code_scanning_alert") {
			t.Errorf("DLQ subject %s", m.Subject)
		}
		seen[string(m.Data)] = true
	}
	for name, body := range poison {
		if !seen[string(body)] {
			t.Errorf("%s: not in DLQ byte for byte", name)
		}
	}
	if _, ok := e.doc(finding.Key(finding.SAST, 337911632, 7)); !ok {
		t.Error("the good event behind the poison ones was not processed")
	}
}

func TestRestartMidBacklogLosesAndDuplicatesNothing(t *testing.T) {
	e := newEnv(t)
	const n = 400
	for i := 0; i < n; i++ {
		e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", codeScanningEvent(t, 5000+i, "created", i%60))
	}
	p := e.newProcessor(Config{Workers: 8, AckWait: time.Second})
	stop := e.start(p)
	// Stop as soon as part of the backlog is done, with messages in flight.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		st, _ := e.findings.Status(context.Background())
		if st != nil && st.Values() >= n/4 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	stop()
	st, _ := e.findings.Status(context.Background())
	if st.Values() >= n {
		t.Fatalf("processor finished the whole backlog before it was stopped; test proves nothing")
	}
	e.start(e.newProcessor(Config{Workers: 8, AckWait: time.Second}))
	e.waitDrained()

	st, _ = e.findings.Status(context.Background())
	if st.Values() != n {
		t.Errorf("KV holds %d findings, want %d", st.Values(), n)
	}
	perKey := map[string]int{}
	for _, m := range e.messages(stream.FindingsStream, stream.FindingsPrefix) {
		perKey[m.Header.Get(stream.HeaderFindingKey)]++
	}
	if len(perKey) != n {
		t.Errorf("%d keys on GHAS_FINDINGS, want %d", len(perKey), n)
	}
	for k, c := range perKey {
		if c != 1 {
			t.Errorf("%s published %d times", k, c)
		}
	}
}

func TestRepositoryEventsUpdateAndRemove(t *testing.T) {
	e := newEnv(t)
	// Findings in repository 1296269 (the installation_repositories sample's).
	p := sample(t, "code_scanning_alert", "created.payload.json")
	repo := p["repository"].(map[string]any)
	repo["id"] = 1296269
	repo["updated_at"] = "2020-01-01T00:00:00Z"
	p["alert"].(map[string]any)["number"] = 1
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", mustJSON(t, p))
	p["alert"].(map[string]any)["number"] = 2
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", mustJSON(t, p))

	// A rename: the stored findings follow it.
	r := sample(t, "repository", "renamed.payload.json")
	rr := r["repository"].(map[string]any)
	rr["id"] = 1296269
	rr["updated_at"] = "2026-01-01T00:00:00Z"
	rr["name"] = "Renamed-World"
	rr["full_name"] = "Codertocat/Renamed-World"
	e.publish(stream.WebhookSubject("repository"), "repository", mustJSON(t, r))
	e.start(e.newProcessor(Config{Workers: 1}))
	e.waitDrained()
	for _, n := range []int64{1, 2} {
		d, ok := e.doc(finding.Key(finding.SAST, 1296269, n))
		if !ok {
			t.Fatalf("finding %d missing", n)
		}
		if d.AssetDetail.FullName != "Codertocat/Renamed-World" {
			t.Errorf("finding %d asset fullName %q after rename", n, d.AssetDetail.FullName)
		}
	}
	if got := e.messages(stream.FindingsStream, stream.AssetSubject(1296269)); len(got) != 1 {
		t.Errorf("%d asset messages, want 1", len(got))
	}

	// The repository leaves the installation: its findings are REMOVED.
	e.publish(stream.WebhookSubject("installation_repositories"), "installation_repositories",
		mustJSON(t, sample(t, "installation_repositories", "removed.payload.json")))
	e.waitDrained()
	for _, n := range []int64{1, 2} {
		d, _ := e.doc(finding.Key(finding.SAST, 1296269, n))
		if d.Finding().FindingStatus != finding.StatusRemoved {
			t.Errorf("finding %d status %s after removal, want REMOVED", n, d.Finding().FindingStatus)
		}
	}
}

func TestReconcileRevivesRemovedFinding(t *testing.T) {
	e := newEnv(t)
	e.start(e.newProcessor(Config{Workers: 1}))
	body := codeScanningEvent(t, 9, "created", 0)
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", body)
	key := finding.Key(finding.SAST, 337911632, 9)
	removed := mustJSON(t, map[string]any{"action": transform.ActionReconcileRemoved, "alert": map[string]any{"number": 9},
		"repository": sample(t, "code_scanning_alert", "created.payload.json")["repository"], "installation": map[string]any{"id": 1}})
	e.publish(stream.ReconcileSubject("code_scanning_alert"), "code_scanning_alert", removed)
	e.waitDrained()
	if d, _ := e.doc(key); d.Finding().FindingStatus != finding.StatusRemoved {
		t.Fatalf("status %s after reconcile_removed", d.Finding().FindingStatus)
	}
	// A webhook as old as the first one does not bring it back...
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", codeScanningEvent(t, 9, "reopened", 0))
	e.waitDrained()
	if d, _ := e.doc(key); d.Finding().FindingStatus != finding.StatusRemoved {
		t.Fatalf("an old webhook revived a removed finding: %s", d.Finding().FindingStatus)
	}
	// ...a later full pull that lists the alert again does: it read
	// GitHub after the removal was stored, so what it read replaces it,
	// although the alert itself (dated by its own timestamps, never by
	// the pull's clock) is older than the removal.
	p := sample(t, "code_scanning_alert", "created.payload.json")
	p["action"] = transform.ActionReconcile
	p["alert"].(map[string]any)["number"] = 9
	entry, err := e.findings.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	e.publishReconcile("code_scanning_alert", mustJSON(t, p), entry.Revision())
	e.waitDrained()
	if d, _ := e.doc(key); d.Finding().FindingStatus != finding.StatusActive {
		t.Fatalf("status %s after the alert was listed again, want ACTIVE", d.Finding().FindingStatus)
	}
}

// TestMapChangeTakesEffectWithoutRestart: an operator changes the SAST map
// in KV ghas_maps; the running processor uses it for the next event; an
// invalid map is rejected and the last good one stays in use.
func TestMapChangeTakesEffectWithoutRestart(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mapsKV, err := e.js.KeyValue(ctx, stream.MapsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := transform.Seed(ctx, mapsKV); err != nil {
		t.Fatal(err)
	}
	w := transform.NewWatcher(slog.New(slog.NewTextHandler(io.Discard, nil)), mapsKV)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = w.Run(wctx) }()
	if err := w.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	p := New(slog.New(slog.NewTextHandler(io.Discard, nil)), e.js, e.js, e.findings, w, nil, NewMetrics(metrics.NewRegistry()), Config{Workers: 1})
	e.start(p)

	custom := strings.Replace(string(transform.DefaultJSON(finding.SAST)), `"GitHub Code Security"`, `"GHAS (mapped by ops)"`, 1)
	rev, err := mapsKV.Put(ctx, finding.SAST, []byte(custom))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WaitRevision(ctx, rev); err != nil {
		t.Fatal(err)
	}
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", codeScanningEvent(t, 31, "created", 0))
	e.waitDrained()
	if d, _ := e.doc(finding.Key(finding.SAST, 337911632, 31)); d.VendorProductName != "GHAS (mapped by ops)" {
		t.Fatalf("vendorProductName %q after the map change", d.VendorProductName)
	}

	bad := strings.Replace(custom, `"function": "severity"`, `"function": "noSuchFunction"`, 1)
	rev, err = mapsKV.Put(ctx, finding.SAST, []byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WaitRevision(ctx, rev); err != nil { // looked at, rejected
		t.Fatal(err)
	}
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", codeScanningEvent(t, 32, "created", 0))
	e.waitDrained()
	d, ok := e.doc(finding.Key(finding.SAST, 337911632, 32))
	if !ok || d.VendorProductName != "GHAS (mapped by ops)" {
		t.Fatalf("after an invalid map: present %v, vendorProductName %q; want the last good map", ok, d.VendorProductName)
	}
}

// TestCoreSubscribersSeeFindings: a plain NATS subscriber on ghas.findings.>
// gets every finding change with the contract headers, as a JetStream
// consumer of GHAS_FINDINGS does.
func TestCoreSubscribersSeeFindings(t *testing.T) {
	e := newEnv(t)
	got := make(chan *nats.Msg, 4)
	sub, err := e.nc.ChanSubscribe(stream.FindingsPrefix+">", got)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	e.start(e.newProcessor(Config{Workers: 1}))
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", codeScanningEvent(t, 41, "created", 0))
	e.waitDrained()
	key := finding.Key(finding.SAST, 337911632, 41)
	d, ok := e.doc(key)
	if !ok {
		t.Fatal("no finding")
	}
	select {
	case m := <-got:
		if m.Subject != stream.FindingSubject(finding.SAST, 337911632) || m.Header.Get(stream.HeaderFindingKey) != key || m.Header.Get(stream.HeaderContentHash) != d.ContentHash() || !strings.HasPrefix(m.Header.Get(stream.HeaderMsgID), key+":") {
			t.Errorf("core message %s %v, want %s with %s", m.Subject, m.Header, key, d.ContentHash())
		}
		if got, err := finding.Decode(m.Data); err != nil || got.ContentHash() != d.ContentHash() {
			t.Errorf("core message body is not the KV document (%v)", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no finding message for a core subscriber")
	}
}

// TestEventThatKeepsFailingGoesToDLQAfterMaxDeliver breaks the world: the
// findings bucket is gone, so every attempt fails. After MaxDeliver
// attempts the event is in GHAS_DLQ with the last error, and acked; nothing
// is lost and the stream is not blocked.
func TestEventThatKeepsFailingGoesToDLQAfterMaxDeliver(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.js.DeleteKeyValue(ctx, stream.FindingsBucket); err != nil {
		t.Fatal(err)
	}
	body := codeScanningEvent(t, 51, "created", 0)
	e.publish(stream.WebhookSubject("code_scanning_alert"), "code_scanning_alert", body)
	p := e.newProcessor(Config{Workers: 1, MaxDeliver: 3, RetryDelay: 20 * time.Millisecond})
	e.start(p)
	deadline := time.Now().Add(20 * time.Second)
	var dlq []jetstream.RawStreamMsg
	for time.Now().Before(deadline) {
		if dlq = e.messages(stream.DLQStream, stream.DLQPrefix); len(dlq) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(dlq) != 1 {
		t.Fatalf("DLQ holds %d messages, want 1", len(dlq))
	}
	if string(dlq[0].Data) != string(body) || dlq[0].Header.Get(stream.HeaderError) == "" ||
		dlq[0].Header.Get(stream.HeaderOriginalSubject) != stream.WebhookSubject("code_scanning_alert") {
		t.Errorf("DLQ entry: headers %v", dlq[0].Header)
	}
	if got := p.metrics.Events.Value("code_scanning_alert", "retry"); got != 2 {
		t.Errorf("%d retries before the DLQ, want 2 (MaxDeliver 3)", got)
	}
	c, err := e.js.Consumer(ctx, stream.EventsStream, ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	waitFor := time.Now().Add(5 * time.Second)
	for {
		info, err := c.Info(ctx)
		if err == nil && info.NumAckPending == 0 && info.NumPending == 0 {
			break
		}
		if time.Now().After(waitFor) {
			t.Fatal("the dead-lettered event was not acked")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
