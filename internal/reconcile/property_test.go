package reconcile

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ghclient"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// pendingEvent is a webhook GitHub sent that has not reached the receiver
// yet (it arrives late, out of order), or failed and sits in the delivery
// log for the sweep.
type pendingEvent struct {
	event, guid string
	payload     []byte
	sentAt      time.Time
}

// webhookOf renders what GitHub would send for an alert as it is now.
func (e *env) webhookOf(t *testing.T, inst int64, repo ghclient.Repository, kind ghtest.Kind, number int64, sentAt time.Time, seq int) pendingEvent {
	t.Helper()
	raw, err := e.app.GetAlert(context.Background(), inst, ghclient.Kind(kind), repo.Owner.Login, repo.Name, number)
	if err != nil {
		t.Fatalf("get alert %d: %v", number, err)
	}
	action := "reopened"
	for _, a := range e.gh.Alerts(repo.ID, kind) {
		if a.Number == number && a.State != "open" {
			action = map[string]string{"fixed": "fixed", "dismissed": "closed_by_user", "resolved": "resolved"}[a.State]
			if kind == ghtest.Dependabot && a.State == "dismissed" {
				action = "dismissed"
			}
		}
	}
	body := fmt.Appendf(nil, `{"action":%q,"alert":%s,"repository":%s,"installation":{"id":%d}}`, action, raw, repo.Raw, inst)
	return pendingEvent{event: eventOf(ghclient.Kind(kind)), guid: fmt.Sprintf("guid-%d", seq), payload: body, sentAt: sentAt}
}

// Random interleavings of alert changes at GitHub, webhooks that arrive
// late and out of order, failed deliveries recovered by the sweep, full
// pulls, and findings deleted or rewritten behind the processor's back:
// after a final complete full pull, every finding is what GitHub's data
// gives (a further pull finds nothing to correct, every status matches),
// and the last message of every key on GHAS_FINDINGS is the stored
// revision.
func TestRandomInterleavingsEndEqualToGitHub(t *testing.T) {
	seeds := []uint64{1, 2, 3}
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { interleaving(t, seed) })
	}
}

func interleaving(t *testing.T, seed uint64) {
	rnd := rand.New(rand.NewPCG(seed, 7))
	e := newEnv(t, ghtest.Options{}, true)
	org := e.gh.AddInstallation("octo-org", "Organization")
	var repos []ghtest.Repository
	for i := range 2 {
		r := e.gh.AddRepository(org.ID, fmt.Sprintf("repo-%d", i), true)
		e.gh.AddAlerts(r.ID, ghtest.CodeScanning, 12)
		e.gh.AddAlerts(r.ID, ghtest.Dependabot, 8)
		repos = append(repos, r)
	}
	listed, err := e.app.Repositories(context.Background(), org.ID)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[int64]ghclient.Repository{}
	for _, r := range listed {
		byID[r.ID] = r
	}
	e.mustRun(ModeFull)

	clock := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	var late []pendingEvent
	seq := 0
	kinds := []ghtest.Kind{ghtest.CodeScanning, ghtest.Dependabot}
	states := map[ghtest.Kind][]string{ghtest.CodeScanning: {"open", "fixed", "dismissed"}, ghtest.Dependabot: {"open", "fixed", "dismissed"}}
	for step := range 40 {
		clock = clock.Add(time.Duration(1+rnd.IntN(60)) * time.Second)
		repo := repos[rnd.IntN(len(repos))]
		kind := kinds[rnd.IntN(len(kinds))]
		alerts := e.gh.Alerts(repo.ID, kind)
		switch op := rnd.IntN(10); {
		case op < 4 && len(alerts) > 0: // an alert changes; its webhook arrives now, late, or fails
			a := alerts[rnd.IntN(len(alerts))]
			st := states[kind][rnd.IntN(3)]
			e.gh.UpdateAlert(repo.ID, kind, a.Number, func(x *ghtest.Alert) { x.State = st; x.UpdatedAt = clock })
			seq++
			ev := e.webhookOf(t, org.ID, byID[repo.ID], kind, a.Number, clock, seq)
			switch rnd.IntN(3) {
			case 0:
				e.publishWebhook(ev.event, ev.guid, ev.payload, ev.sentAt)
			case 1:
				late = append(late, ev)
			default:
				e.gh.AddDelivery(ghtest.Delivery{GUID: ev.guid, Event: ev.event, DeliveredAt: ev.sentAt,
					Status: "Invalid HTTP Response: 502", StatusCode: 502, Payload: ev.payload})
			}
		case op == 4 && len(late) > 0: // a late webhook arrives
			i := rnd.IntN(len(late))
			ev := late[i]
			late = append(late[:i], late[i+1:]...)
			e.publishWebhook(ev.event, ev.guid, ev.payload, ev.sentAt)
		case op == 5 && len(alerts) > 1: // GitHub deletes an alert
			e.gh.DeleteAlert(repo.ID, kind, alerts[rnd.IntN(len(alerts))].Number)
		case op == 6: // state stored behind the processor's back
			keys := e.stored()
			for k := range keys {
				if rnd.IntN(2) == 0 {
					_ = e.findings.Delete(context.Background(), k)
				} else {
					future := clock.Add(24 * time.Hour).Format(time.RFC3339)
					e.putStored(k, func(d *finding.Document) { d.Findings[0].LastFoundOn = &future })
				}
				break
			}
		case op == 7:
			e.mustRun(ModeRedeliver)
		default:
			if _, err := e.rec.Run(ctx(t), ModeFull); err != nil {
				t.Fatalf("step %d: full pull: %v", step, err)
			}
			e.drain()
		}
	}
	// Everything in flight arrives, in a random order; then a complete pull.
	rnd.Shuffle(len(late), func(i, j int) { late[i], late[j] = late[j], late[i] })
	for _, ev := range late {
		e.publishWebhook(ev.event, ev.guid, ev.payload, ev.sentAt)
	}
	e.mustRun(ModeRedeliver)
	e.mustRun(ModeFull)

	// Nothing left to correct, and every status is GitHub's.
	if rep := e.mustRun(ModeFull); rep.Published != 0 || rep.Drift != (Drift{}) {
		t.Errorf("seed %d: a pull after the final one still corrects: published %d, drift %+v", seed, rep.Published, rep.Drift)
	}
	want := map[string]string{}
	for _, r := range repos {
		for _, k := range kinds {
			for _, a := range e.gh.Alerts(r.ID, k) {
				want[finding.Key(datasetOfKind(k), r.ID, a.Number)] = a.FindingStatus()
			}
		}
	}
	stored := e.stored()
	for k, d := range stored {
		st, ok := want[k]
		if !ok {
			st = finding.StatusRemoved // GitHub deleted it
		}
		if d.Findings[0].FindingStatus != st {
			t.Errorf("seed %d: %s is %s, GitHub says %s", seed, k, d.Findings[0].FindingStatus, st)
		}
	}
	for k := range want {
		if _, ok := stored[k]; !ok {
			t.Errorf("seed %d: %s not stored", seed, k)
		}
	}
	// The last message of every key is the stored revision.
	last := e.lastMessages(t)
	for k, d := range stored {
		if last[k] != d.ContentHash() {
			t.Errorf("seed %d: %s: last message %q, stored %q; history:\n%s", seed, k, last[k], d.ContentHash(), e.history(k))
		}
	}
}

// lastMessages returns the content hash of the last GHAS_FINDINGS message
// of every finding key (delete markers aside).
func (e *env) lastMessages(t *testing.T) map[string]string {
	t.Helper()
	st, err := e.js.Stream(context.Background(), stream.FindingsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(context.Background(), seq)
		if err != nil {
			continue
		}
		// By the document itself: a revision written behind the
		// processor's back carries none of its headers, and is a message
		// all the same.
		if d, err := finding.Decode(m.Data); err == nil && d.FindingKey != "" {
			out[d.FindingKey] = d.ContentHash()
		}
	}
	return out
}

// history describes every stored revision of a key, for a failure message.
func (e *env) history(key string) string {
	hist, err := e.findings.History(context.Background(), key)
	if err != nil {
		return err.Error()
	}
	out := ""
	for _, h := range hist {
		status := ""
		if d, err := finding.Decode(h.Value()); err == nil && d.Finding() != nil {
			status = d.Finding().FindingStatus + " " + d.ContentHash() + " origin " + d.Origin
		}
		out += fmt.Sprintf("  rev %d %s %s\n", h.Revision(), h.Operation(), status)
	}
	return out
}
