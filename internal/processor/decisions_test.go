package processor

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/decisions"
	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ghclient"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

var (
	decKeyOnce sync.Once
	decKey     *rsa.PrivateKey
)

// decEnv is a processor's world for decisions: JetStream, a fake GitHub
// with one repository of the App, and the App client that writes back.
type decEnv struct {
	*env
	gh   *ghtest.Server
	app  *ghclient.App
	inst ghtest.Installation
	repo ghtest.Repository
}

func newDecEnv(t *testing.T) *decEnv {
	t.Helper()
	decKeyOnce.Do(func() {
		var err error
		if decKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	gh := ghtest.New(t, ghtest.Options{PrivateKey: decKey})
	inst := gh.AddInstallation("octo-org", "Organization")
	repo := gh.AddRepository(inst.ID, "api", true)
	app, err := ghclient.New(slog.New(slog.NewTextHandler(io.Discard, nil)), ghclient.Config{
		BaseURL: gh.URL(), AppID: gh.AppID(), PrivateKeyPEM: gh.PrivateKeyPEM(),
		RetryInitial: 10 * time.Millisecond, MaxRetryElapsed: 10 * time.Second, SecondaryMinWait: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &decEnv{env: newEnv(t), gh: gh, app: app, inst: inst, repo: repo}
}

// processor is a processor that writes back through w (the App client
// unless given), without pace.
func (e *decEnv) processor(cfg Config) *Processor {
	if cfg.WriteBack == nil {
		cfg.WriteBack = e.app
	}
	return e.newProcessor(cfg)
}

// alert puts an open alert of kind in the fake and stores its finding as
// the webhook of its creation would; it returns the finding key.
func (e *decEnv) alert(kind ghtest.Kind, number int64) string {
	e.t.Helper()
	e.gh.PutAlert(e.repo.ID, kind, ghtest.Alert{Number: number, State: "open", Template: int(number)})
	e.webhook(kind, number)
	ds := map[ghtest.Kind]string{ghtest.CodeScanning: finding.SAST, ghtest.Dependabot: finding.SCA, ghtest.SecretScanning: finding.Secret}[kind]
	return finding.Key(ds, e.repo.ID, number)
}

// webhook publishes the delivery GitHub sends for an alert as it now is.
func (e *decEnv) webhook(kind ghtest.Kind, number int64) {
	e.t.Helper()
	w, ok := e.gh.AlertWebhook(e.repo.ID, kind, number)
	if !ok {
		e.t.Fatalf("no alert %s %d", kind, number)
	}
	e.publish(stream.WebhookSubject(w.Event), w.Event, w.Payload)
}

// decide stores decisions as the receiver does (message, then record)
// and returns their ids.
func (e *decEnv) decide(by string, globs []string, reqs ...decisions.Request) []string {
	e.t.Helper()
	ctx := context.Background()
	kv, err := e.js.KeyValue(ctx, stream.DecisionsBucket)
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	for _, q := range reqs {
		if err := q.Validate(); err != nil {
			e.t.Fatalf("decision %+v: %v", q, err)
		}
		d := decisions.Decision{ID: decisions.NewID(), Request: q, By: by, Repositories: globs, ReceivedAt: time.Now().UTC().Format(time.RFC3339Nano)}
		m, err := decisions.Message(d)
		if err != nil {
			e.t.Fatal(err)
		}
		if _, err := e.js.PublishMsg(ctx, m); err != nil {
			e.t.Fatal(err)
		}
		if err := decisions.Create(ctx, kv, decisions.NewRecord(d)); err != nil {
			e.t.Fatal(err)
		}
		ids = append(ids, d.ID)
	}
	return ids
}

// outcome waits for a decision's final status.
func (e *decEnv) outcome(id string) decisions.Status {
	e.t.Helper()
	kv, err := e.js.KeyValue(context.Background(), stream.DecisionsBucket)
	if err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		rec, _, ok, err := decisions.Get(context.Background(), kv, id)
		if err == nil && ok && rec.Final() {
			return rec.Status
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("decision %s has no outcome within 30 s: %+v %v", id, rec, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// finding reads a stored finding.
func (e *decEnv) finding(key string) *finding.Finding {
	e.t.Helper()
	d, ok := e.doc(key)
	if !ok {
		e.t.Fatalf("no finding %s", key)
	}
	return d.Finding()
}

// TestDecisionEveryReason: every reason of every GitHub alert type reaches
// GitHub in its API's words, and GitHub's answer is stored at once: the
// finding is DISMISSED with GitHub's reason and the triage (who, what,
// why, where applied), then ACTIVE again after a reopen.
func TestDecisionEveryReason(t *testing.T) {
	e := newDecEnv(t)
	e.start(e.processor(Config{}))
	type tc struct {
		kind   ghtest.Kind
		reason string
		word   string // GitHub's
	}
	var cases []tc
	for _, r := range []string{"false_positive", "wont_fix", "used_in_tests"} {
		cases = append(cases, tc{ghtest.CodeScanning, r, map[string]string{"false_positive": "false positive", "wont_fix": "won't fix", "used_in_tests": "used in tests"}[r]})
		cases = append(cases, tc{ghtest.SecretScanning, r, r})
	}
	cases = append(cases, tc{ghtest.SecretScanning, "revoked", "revoked"})
	for _, r := range []string{"fix_started", "inaccurate", "no_bandwidth", "not_used", "tolerable_risk"} {
		cases = append(cases, tc{ghtest.Dependabot, r, r})
	}
	keys := make([]string, len(cases))
	var reqs []decisions.Request
	for i, c := range cases {
		keys[i] = e.alert(c.kind, int64(i+1))
		reqs = append(reqs, decisions.Request{FindingKey: keys[i], Decision: "dismiss", Reason: c.reason, Comment: "triaged: " + c.reason})
	}
	e.waitDrained()
	ids := e.decide("team-a", nil, reqs...)
	for i, id := range ids {
		st := e.outcome(id)
		if st.Status != decisions.StatusApplied || len(st.Results) != 1 || st.Results[0].AppliedTo != "github" || st.By != "team-a" ||
			st.Repository != e.repo.FullName {
			t.Errorf("%s %s: status %+v", cases[i].kind, cases[i].reason, st)
		}
		f := e.finding(keys[i])
		if f.FindingStatus != finding.StatusDismissed && !(cases[i].reason == "revoked" && f.FindingStatus == finding.StatusFixed) {
			t.Errorf("%s %s: finding %s", cases[i].kind, cases[i].reason, f.FindingStatus)
		}
		if tr := f.Triage; tr == nil || tr.Decision != "dismiss" || tr.Reason != cases[i].reason || tr.Comment != "triaged: "+cases[i].reason ||
			tr.By != "team-a" || tr.DecisionID != id || tr.AppliedTo != "github" || tr.At == "" {
			t.Errorf("%s %s: triage %+v", cases[i].kind, cases[i].reason, f.Triage)
		}
		if f.Mitigation == nil || f.Mitigation.Comment != "triaged: "+cases[i].reason {
			t.Errorf("%s %s: GitHub's dismissal not stored: %+v", cases[i].kind, cases[i].reason, f.Mitigation)
		}
	}
	ups := e.gh.Updates()
	if len(ups) != len(cases) {
		t.Fatalf("%d updates on GitHub, want %d", len(ups), len(cases))
	}
	for _, u := range ups {
		c := cases[u.Number-1]
		if u.Kind != c.kind || u.Reason != c.word || u.Comment != "triaged: "+c.reason {
			t.Errorf("alert %s %d: GitHub got %q %q, want %q", u.Kind, u.Number, u.Reason, u.Comment, c.word)
		}
	}

	// Reopen one of each type.
	for _, i := range []int{0, 1, len(cases) - 1} {
		st := e.outcome(e.decide("team-b", nil, decisions.Request{FindingKey: keys[i], Decision: "reopen", Comment: "not so"})[0])
		if st.Status != decisions.StatusApplied {
			t.Errorf("reopen %s: %+v", keys[i], st)
		}
		if f := e.finding(keys[i]); f.FindingStatus != finding.StatusActive || f.Triage == nil || f.Triage.Decision != "reopen" || f.Triage.By != "team-b" {
			t.Errorf("reopened %s: %s %+v", keys[i], f.FindingStatus, f.Triage)
		}
	}
	if n := len(e.gh.Updates()); n != len(cases)+3 {
		t.Errorf("%d updates, want %d", n, len(cases)+3)
	}
}

// TestDecisionGitHubRefuses: GitHub's 403 (no write permission) and 422
// fail the decision with GitHub's message and nothing is stored; without
// WRITE_BACK a decision on a GitHub alert fails at once and GitHub gets
// no request.
func TestDecisionGitHubRefuses(t *testing.T) {
	e := newDecEnv(t)
	stop := e.start(e.processor(Config{}))
	sca := e.alert(ghtest.Dependabot, 1)
	sast := e.alert(ghtest.CodeScanning, 2)
	e.waitDrained()
	e.gh.RefuseWrites(ghtest.Dependabot, true)
	e.gh.Inject(ghtest.Fault{Method: http.MethodPatch, Path: "/code-scanning/alerts/2", Times: 1, Status: http.StatusUnprocessableEntity,
		Message: "Invalid request.\n\nThe alert cannot be dismissed."})
	ids := e.decide("team-a", nil,
		decisions.Request{FindingKey: sca, Decision: "dismiss", Reason: "tolerable_risk"},
		decisions.Request{FindingKey: sast, Decision: "dismiss", Reason: "false_positive"})
	for i, want := range []string{"403: Resource not accessible by integration", "422: Invalid request.\n\nThe alert cannot be dismissed."} {
		st := e.outcome(ids[i])
		if st.Status != decisions.StatusFailed || len(st.Results) != 1 || !strings.Contains(st.Results[0].Error, want) {
			t.Errorf("decision %d: %+v, want failed with %q", i, st, want)
		}
	}
	for _, k := range []string{sca, sast} {
		if f := e.finding(k); f.FindingStatus != finding.StatusActive || f.Triage != nil {
			t.Errorf("%s changed: %s %+v", k, f.FindingStatus, f.Triage)
		}
	}
	if n := len(e.gh.Updates()); n != 0 {
		t.Errorf("%d updates", n)
	}

	stop()
	e.gh.ResetStats()
	e.start(e.newProcessor(Config{})) // WRITE_BACK off
	st := e.outcome(e.decide("team-a", nil, decisions.Request{FindingKey: sast, Decision: "dismiss", Reason: "wont_fix"})[0])
	if st.Status != decisions.StatusFailed || !strings.Contains(st.Results[0].Error, "WRITE_BACK") {
		t.Errorf("without write-back: %+v", st)
	}
	if n := e.gh.Stats().Requests; n != 0 {
		t.Errorf("%d requests to GitHub without write-back", n)
	}
}

// TestDecisionServerErrorBurst: 5xx answers are retried within the
// client's bounds; the alert is updated once. A 5xx that outlasts them
// leaves the decision to a later delivery, which applies it.
func TestDecisionServerErrorBurst(t *testing.T) {
	e := newDecEnv(t)
	e.start(e.processor(Config{RetryDelay: 10 * time.Millisecond}))
	key := e.alert(ghtest.CodeScanning, 1)
	e.waitDrained()
	e.gh.Inject(ghtest.Fault{Method: http.MethodPatch, Path: "/code-scanning/alerts/1", Times: 4, Status: http.StatusServiceUnavailable, Message: "Service Unavailable"})
	st := e.outcome(e.decide("team-a", nil, decisions.Request{FindingKey: key, Decision: "dismiss", Reason: "used_in_tests"})[0])
	if st.Status != decisions.StatusApplied {
		t.Fatalf("after a 5xx burst: %+v", st)
	}
	if ups := e.gh.Updates(); len(ups) != 1 {
		t.Errorf("%d updates, want 1", len(ups))
	}
	if f := e.finding(key); f.FindingStatus != finding.StatusDismissed {
		t.Errorf("finding %s", f.FindingStatus)
	}
}

// TestDecisionWebhookEcho: the webhook GitHub sends after the update
// changes nothing more (no revision, no message) and triggers no update.
func TestDecisionWebhookEcho(t *testing.T) {
	e := newDecEnv(t)
	e.start(e.processor(Config{}))
	key := e.alert(ghtest.SecretScanning, 1)
	e.waitDrained()
	st := e.outcome(e.decide("team-a", nil, decisions.Request{FindingKey: key, Decision: "dismiss", Reason: "wont_fix", Comment: "a test key"})[0])
	if st.Status != decisions.StatusApplied {
		t.Fatalf("%+v", st)
	}
	entry, err := e.findings.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	msgs := len(e.messages(stream.FindingsStream, stream.FindingSubject(finding.Secret, e.repo.ID)))
	e.webhook(ghtest.SecretScanning, 1)
	e.waitDrained()
	after, _ := e.findings.Get(context.Background(), key)
	if after.Revision() != entry.Revision() {
		t.Errorf("the echo wrote revision %d over %d", after.Revision(), entry.Revision())
	}
	if n := len(e.messages(stream.FindingsStream, stream.FindingSubject(finding.Secret, e.repo.ID))); n != msgs {
		t.Errorf("the echo published %d finding messages", n-msgs)
	}
	if n := len(e.gh.Updates()); n != 1 {
		t.Errorf("%d updates, want 1", n)
	}
	if f := e.finding(key); f.Triage == nil || f.Triage.Comment != "a test key" {
		t.Errorf("triage lost: %+v", f.Triage)
	}

	// A later change on GitHub is stored, and keeps the relay's triage.
	e.gh.UpdateAlert(e.repo.ID, ghtest.SecretScanning, 1, func(a *ghtest.Alert) { a.UpdatedAt = a.UpdatedAt.Add(time.Hour) })
	e.webhook(ghtest.SecretScanning, 1)
	e.waitDrained()
	if later, _ := e.findings.Get(context.Background(), key); later.Revision() == entry.Revision() {
		t.Error("a later change was not stored")
	}
	if f := e.finding(key); f.Triage == nil || f.Triage.Comment != "a test key" || f.Triage.DecisionID != st.Decision {
		t.Errorf("a later change dropped the triage: %+v", f.Triage)
	}
}

// crashingWriter sends one update to GitHub, then dies before the answer
// reaches the processor: it stops the processor and never returns the
// answer.
type crashingWriter struct {
	AlertWriter
	crash func()
	once  sync.Once
}

func (w *crashingWriter) UpdateAlert(ctx context.Context, inst int64, kind ghclient.Kind, owner, repo string, number int64, u ghclient.AlertUpdate) (json.RawMessage, error) {
	crashed := false
	w.once.Do(func() { crashed = true })
	raw, err := w.AlertWriter.UpdateAlert(ctx, inst, kind, owner, repo, number, u)
	if !crashed {
		return raw, err
	}
	go w.crash()
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestDecisionReplayAfterCrash: a processor dies after GitHub took the
// update and before its outcome was recorded; the decision is delivered
// again to another processor, which reads the alert, finds it updated and
// sends nothing: GitHub's alert is updated exactly once, the finding and
// the status are as if nothing happened.
func TestDecisionReplayAfterCrash(t *testing.T) {
	e := newDecEnv(t)
	cw := &crashingWriter{AlertWriter: e.app}
	first := e.processor(Config{WriteBack: cw, AckWait: time.Second})
	stop := e.start(first)
	cw.crash = stop
	key := e.alert(ghtest.Dependabot, 1)
	e.waitDrained()
	id := e.decide("team-a", nil, decisions.Request{FindingKey: key, Decision: "dismiss", Reason: "not_used", Comment: "dev only"})[0]
	deadline := time.Now().Add(10 * time.Second)
	for len(e.gh.Updates()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if f := e.finding(key); f.FindingStatus != finding.StatusActive {
		t.Fatalf("the crashed processor stored %s", f.FindingStatus)
	}
	e.gh.ResetStats()
	e.start(e.processor(Config{AckWait: time.Second}))
	st := e.outcome(id)
	if st.Status != decisions.StatusApplied {
		t.Fatalf("after the crash: %+v", st)
	}
	if ups := e.gh.Updates(); len(ups) != 1 {
		t.Errorf("GitHub got %d updates, want 1", len(ups))
	}
	if n := e.gh.Stats().ByEndpoint["GET /repos/{owner}/{repo}/dependabot/alerts/{id}"]; n != 1 {
		t.Errorf("%d reads of the alert, want 1", n)
	}
	if f := e.finding(key); f.FindingStatus != finding.StatusDismissed || f.Triage == nil || f.Triage.DecisionID != id {
		t.Errorf("finding %s %+v", f.FindingStatus, f.Triage)
	}
	// Delivered again once more (a lost ack): nothing is sent.
	e.gh.ResetStats()
	kv, _ := e.js.KeyValue(context.Background(), stream.DecisionsBucket)
	rec, _, _, _ := decisions.Get(context.Background(), kv, id)
	m, _ := decisions.Message(decisions.Decision{ID: id, Request: rec.Request, By: rec.By, ReceivedAt: rec.ReceivedAt})
	m.Header.Set(stream.HeaderMsgID, "replayed")
	if _, err := e.js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	e.waitDrained()
	time.Sleep(200 * time.Millisecond)
	if n := e.gh.Stats().Requests; n != 0 {
		t.Errorf("a replayed decision made %d requests", n)
	}
}

// TestDecisionAlreadyDismissed: GitHub refuses to dismiss a code scanning
// alert someone dismissed already (400 "Alert is already dismissed."): the
// alert is read, it is as the decision asks, and the decision is applied
// with the triage, without a second update; GitHub's own reason stays.
func TestDecisionAlreadyDismissed(t *testing.T) {
	e := newDecEnv(t)
	e.start(e.processor(Config{}))
	key := e.alert(ghtest.CodeScanning, 1)
	e.waitDrained()
	e.gh.UpdateAlert(e.repo.ID, ghtest.CodeScanning, 1, func(a *ghtest.Alert) {
		a.State, a.UpdatedAt = "dismissed", a.UpdatedAt.Add(time.Minute)
	})
	st := e.outcome(e.decide("team-a", nil, decisions.Request{FindingKey: key, Decision: "dismiss", Reason: "wont_fix", Comment: "agreed"})[0])
	if st.Status != decisions.StatusApplied {
		t.Fatalf("%+v", st)
	}
	if n := len(e.gh.Updates()); n != 0 {
		t.Errorf("%d updates", n)
	}
	if f := e.finding(key); f.FindingStatus != finding.StatusDismissed || f.Triage == nil || f.Triage.Reason != "wont_fix" {
		t.Errorf("finding %s %+v", f.FindingStatus, f.Triage)
	}
	if n := e.gh.Stats().ByEndpoint["PATCH /repos/{owner}/{repo}/code-scanning/alerts/{id}"]; n != 1 {
		t.Errorf("%d PATCH requests, want the one GitHub refused", n)
	}
}
