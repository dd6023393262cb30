package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/sink"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
	"github.com/ghas-relay/ghas-relay/internal/webhook/webhooktest"
)

// TestCheckerFindsEachViolation: the random-fault test's checker passes a
// healthy end state (a processor's work on a few webhooks) and finds each
// kind of damage done to it on purpose: a status GitHub does not have, a
// key GitHub never had, a finding message gone from GHAS_FINDINGS, a
// revision gone backwards at the sink, a stray dead letter, a poison event
// missing from the DLQ, an accepted delivery missing from GHAS_EVENTS.
func TestCheckerFindsEachViolation(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-process test")
	}
	ctx := context.Background()
	ns := streamtest.Run(t)
	_, js := ns.Connect()
	gh := ghtest.New(t, ghtest.Options{})
	org := gh.AddInstallation("octo-org", "Organization")
	repo := gh.AddRepository(org.ID, "octo-repo", false)
	alerts := gh.AddAlerts(repo.ID, ghtest.CodeScanning, 4)
	rec := newSinkRecorder()
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	serve(t, "processor", "processor", 1, func(a []string) []string {
		return []string{"NATS_URL=" + ns.URL(), "LOG_LEVEL=warn", "ADMIN_ADDR=" + a[0], "SINK_URL=" + srv.URL + "/findings"}
	})

	accepted := map[string]int{}
	for _, a := range alerts {
		w, _ := gh.AlertWebhook(repo.ID, ghtest.CodeScanning, a.Number)
		guid := webhooktest.GUID("bites-" + w.Action + string(rune('a'+a.Number)))
		msg := &nats.Msg{Subject: stream.WebhookSubject(w.Event), Header: nats.Header{}, Data: w.Payload}
		msg.Header.Set(stream.HeaderMsgID, guid)
		msg.Header.Set(stream.HeaderDelivery, guid)
		msg.Header.Set(stream.HeaderEvent, w.Event)
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
		accepted[guid] = 1
	}
	streamtest.WaitFor(t, 60*time.Second, "the processor to drain", func() bool { return drained(js) })
	streamtest.WaitFor(t, 60*time.Second, "the sink to catch up", func() bool {
		c, err := js.Consumer(ctx, stream.FindingsStream, sink.DefaultDurable)
		if err != nil {
			return false
		}
		info, err := c.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})

	st := endState{gh: gh, repos: []ghtest.Repository{repo}, removed: map[string]bool{}, accepted: accepted, poisons: map[string]bool{}, sink: rec}
	check := func() []string {
		v := &violations{}
		checkEndState(t, ctx, js, st, v)
		return v.all()
	}
	if vs := check(); len(vs) != 0 {
		t.Fatalf("a healthy end state has violations:\n%s", strings.Join(vs, "\n"))
	}
	wants := func(name, phrase string) {
		t.Helper()
		vs := check()
		for _, v := range vs {
			if strings.Contains(v, phrase) {
				return
			}
		}
		t.Errorf("%s: no violation says %q; got %q", name, phrase, vs)
	}
	key := func(a ghtest.Alert) string { return finding.Key(finding.SAST, repo.ID, a.Number) }

	// GitHub changed and nothing told the pipeline.
	a0 := alerts[0]
	gh.UpdateAlert(repo.ID, ghtest.CodeScanning, a0.Number, func(a *ghtest.Alert) { a.State = "fixed" })
	wants("status", "GitHub says "+finding.StatusFixed)
	gh.PutAlert(repo.ID, ghtest.CodeScanning, a0)

	// An alert gone from GitHub that the test did not delete.
	a1 := alerts[1]
	gh.DeleteAlert(repo.ID, ghtest.CodeScanning, a1.Number)
	wants("unknown key", "KV holds "+key(a1)+", which GitHub never had")
	gh.PutAlert(repo.ID, ghtest.CodeScanning, a1)

	// The sink accepts an older revision after the current one.
	savedHighest := rec.highest[key(a0)]
	req := httptest.NewRequest(http.MethodPost, "/findings", strings.NewReader("{}"))
	req.Header.Set(stream.HeaderFindingKey, key(a0))
	req.Header.Set("Idempotency-Key", key(a0)+":0-0000")
	rec.highest[key(a0)] = sinkDelivery{id: key(a0) + ":7-0000", prev: 7}
	rec.ServeHTTP(httptest.NewRecorder(), req)
	wants("backwards", key(a0)+" went backwards at the sink")
	wants("last delivery", key(a0)+": the sink's last delivery is "+key(a0)+":0-0000")
	rec.highest[key(a0)], rec.backwards = savedHighest, nil
	rec.accepted[key(a0)] = rec.accepted[key(a0)][:len(rec.accepted[key(a0)])-1]

	// An id the latest import listed that KV lacks, and an imported finding
	// no import listed.
	st.imports = map[int64]map[string]bool{repo.ID: {"ghost": true}}
	wants("import lost", "imported finding sast."+fmt.Sprint(repo.ID)+".chaos.ghost, listed by its repository's latest import, is not in KV")
	st.imports = nil

	// A delivery answered 202 that GHAS_EVENTS lacks.
	st.accepted = map[string]int{"never-stored": 1}
	wants("accepted", "delivery never-stored answered 202 is stored 0 times")
	st.accepted = accepted

	// A poison event that never reached the DLQ, then a stray dead letter.
	st.poisons = map[string]bool{"poison-1": true}
	wants("poison", "poison event poison-1 is in GHAS_DLQ 0 times")
	st.poisons = map[string]bool{}
	stray := &nats.Msg{Subject: stream.DLQSubject("code_scanning_alert"), Header: nats.Header{}, Data: []byte("{}")}
	stray.Header.Set(stream.HeaderDelivery, "stray")
	if _, err := js.PublishMsg(ctx, stray); err != nil {
		t.Fatal(err)
	}
	wants("stray dead letter", `GHAS_DLQ holds ghas.dlq.code_scanning_alert (delivery "stray"`)
	dlq, err := js.Stream(ctx, stream.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := dlq.Purge(ctx); err != nil {
		t.Fatal(err)
	}

	// Last, as it cannot be undone: a finding message removed from
	// GHAS_FINDINGS.
	fs, err := js.Stream(ctx, stream.FindingsStream)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.OrderedConsumer(ctx, stream.FindingsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{stream.FindingsPrefix + ">"}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(100, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if m.Headers().Get(stream.HeaderFindingKey) == key(alerts[2]) {
			md, _ := m.Metadata()
			if err := fs.DeleteMsg(ctx, md.Sequence.Stream); err != nil {
				t.Fatal(err)
			}
		}
	}
	wants("message lost", key(alerts[2])+": revision")
}
