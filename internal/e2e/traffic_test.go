package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/webhook/webhooktest"
)

// What becomes of a webhook GitHub would send after a change.
const (
	fateSent      = "sent"
	fateDelayed   = "delayed"    // sent later: after changes that follow it
	fateDuplicate = "duplicated" // sent, and sent again later with the same delivery id
	fateLost      = "lost"       // never arrives; GitHub's delivery log shows a failure, or nothing
)

// pendingDelivery is a webhook waiting for its time.
type pendingDelivery struct {
	due                    time.Time
	guid, event, action    string
	installation, repo     int64
	payload                []byte
	redelivery             bool
	recordedFailureOnError bool
}

// traffic changes the fake GitHub's alerts at random and sends the
// webhooks GitHub would send, some lost, duplicated or delayed past later
// ones. Every attempt is recorded in the fake's delivery log as GitHub
// records it (OK, or the failure), so the missed-delivery sweep sees what
// it would see.
type traffic struct {
	rng    *rand.Rand
	gh     *ghtest.Server
	repos  []ghtest.Repository
	url    string
	client *http.Client

	mu       sync.Mutex
	pending  []pendingDelivery
	accepted map[string]int  // delivery id → 202 answers
	removed  map[string]bool // finding keys of alerts deleted from GitHub
	fates    map[string]int
	changes  int
	answers  map[int]int // HTTP status (0: no answer) → count
	// updatesSeen is how many of the fake's alert updates have had their webhook planned.
	updatesSeen int
	inFlight    sync.WaitGroup
	seq         int
}

func newTraffic(seed int64, gh *ghtest.Server, repos []ghtest.Repository, url string) *traffic {
	return &traffic{
		rng: rand.New(rand.NewPCG(uint64(seed), 0x7af1c)), gh: gh, repos: repos, url: url,
		client:   &http.Client{Timeout: 10 * time.Second},
		accepted: map[string]int{}, removed: map[string]bool{}, fates: map[string]int{}, answers: map[int]int{},
	}
}

// run changes and sends until ctx ends, then sends what is still pending.
func (tr *traffic) run(ctx context.Context) {
	for {
		wait := time.Duration(40+tr.rng.IntN(200)) * time.Millisecond
		select {
		case <-ctx.Done():
			tr.flush()
			return
		case <-time.After(wait):
		}
		tr.change()
		tr.followUpdates()
		tr.sendDue(time.Now())
	}
}

// flush sends every pending delivery now and waits for the answers.
func (tr *traffic) flush() {
	tr.sendDue(time.Now().Add(time.Hour))
	tr.inFlight.Wait()
}

var nextState = map[ghtest.Kind][]string{
	ghtest.CodeScanning:   {"open", "dismissed", "fixed"},
	ghtest.Dependabot:     {"open", "dismissed", "fixed"},
	ghtest.SecretScanning: {"open", "resolved"},
}

var resolutions = []string{"revoked", "false_positive", "wont_fix", "used_in_tests"}

// change makes one change to the fake GitHub and plans its webhook.
func (tr *traffic) change() {
	r := tr.repos[tr.rng.IntN(len(tr.repos))]
	kind := ghtest.Kinds()[tr.rng.IntN(3)]
	now := time.Now().UTC().Truncate(time.Second)
	alerts := tr.gh.Alerts(r.ID, kind)
	op := tr.rng.IntN(100)
	var number int64
	created := false
	switch {
	case op < 12 || len(alerts) == 0:
		a := tr.gh.PutAlert(r.ID, kind, ghtest.Alert{State: "open", CreatedAt: now, UpdatedAt: now, Template: tr.rng.IntN(64)})
		number, created = a.Number, true
	case op < 17:
		a := alerts[tr.rng.IntN(len(alerts))]
		tr.gh.DeleteAlert(r.ID, kind, a.Number)
		tr.mu.Lock()
		tr.removed[finding.Key(kindDataset[kind], r.ID, a.Number)] = true
		tr.changes++
		tr.mu.Unlock()
		return // GitHub sends no webhook for a deleted alert
	default:
		a := alerts[tr.rng.IntN(len(alerts))]
		states := nextState[kind]
		state := states[tr.rng.IntN(len(states))]
		for state == a.State {
			state = states[tr.rng.IntN(len(states))]
		}
		resolution := ""
		if state == "resolved" {
			resolution = resolutions[tr.rng.IntN(len(resolutions))]
		}
		tr.gh.UpdateAlert(r.ID, kind, a.Number, func(a *ghtest.Alert) {
			a.State, a.Resolution, a.UpdatedAt = state, resolution, now
		})
		number = a.Number
	}
	tr.mu.Lock()
	tr.changes++
	tr.mu.Unlock()
	tr.planWebhook(r, kind, number, created)
}

// planWebhook plans the webhook GitHub sends for the current state of one
// alert, and decides its fate.
func (tr *traffic) planWebhook(r ghtest.Repository, kind ghtest.Kind, number int64, created bool) {
	w, ok := tr.gh.AlertWebhook(r.ID, kind, number)
	if !ok {
		return
	}
	payload := w.Payload
	if created {
		w.Action = "created"
		var m map[string]json.RawMessage
		if json.Unmarshal(payload, &m) == nil {
			m["action"], _ = json.Marshal("created")
			payload, _ = json.Marshal(m)
		}
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.seq++
	d := pendingDelivery{due: time.Now(), guid: webhooktest.GUID(fmt.Sprintf("random-%d-%d", tr.rng.Int64(), tr.seq)),
		event: w.Event, action: w.Action, installation: r.InstallationID, repo: r.ID, payload: payload}
	fate := tr.rng.IntN(100)
	switch {
	case fate < 55:
		tr.fates[fateSent]++
		tr.pending = append(tr.pending, d)
	case fate < 70:
		tr.fates[fateDelayed]++
		d.due = d.due.Add(time.Duration(500+tr.rng.IntN(5500)) * time.Millisecond)
		tr.pending = append(tr.pending, d)
	case fate < 80:
		tr.fates[fateDuplicate]++
		tr.pending = append(tr.pending, d)
		again := d
		again.due, again.redelivery = d.due.Add(time.Duration(200+tr.rng.IntN(3800))*time.Millisecond), true
		tr.pending = append(tr.pending, again)
	default:
		tr.fates[fateLost]++
		if tr.rng.IntN(100) < 60 {
			// GitHub tried and failed: its delivery log shows it, and the
			// sweep redelivers it.
			tr.gh.AddDelivery(ghtest.Delivery{GUID: d.guid, Event: d.event, Action: d.action, Status: "Invalid HTTP Response: 502",
				StatusCode: 502, InstallationID: d.installation, RepositoryID: d.repo, Payload: d.payload})
		}
	}
}

// followUpdates plans the webhook of every alert update the fake GitHub
// accepted since the last call (a decision written back by a processor):
// GitHub sends one after each.
func (tr *traffic) followUpdates() {
	ups := tr.gh.Updates()
	tr.mu.Lock()
	from := tr.updatesSeen
	tr.updatesSeen = len(ups)
	tr.mu.Unlock()
	for _, u := range ups[from:] {
		for _, r := range tr.repos {
			if r.ID == u.RepositoryID {
				tr.planWebhook(r, u.Kind, u.Number, false)
			}
		}
	}
}

// sendDue starts the sends of every pending delivery due by now.
func (tr *traffic) sendDue(now time.Time) {
	tr.mu.Lock()
	var due []pendingDelivery
	kept := tr.pending[:0]
	for _, d := range tr.pending {
		if d.due.After(now) {
			kept = append(kept, d)
		} else {
			due = append(due, d)
		}
	}
	tr.pending = kept
	tr.mu.Unlock()
	for _, d := range due {
		tr.inFlight.Add(1)
		go func() {
			defer tr.inFlight.Done()
			tr.send(d)
		}()
	}
}

// send posts one delivery and records the attempt as GitHub does.
func (tr *traffic) send(d pendingDelivery) {
	req := webhooktest.NewRequest(tr.url, d.event, d.guid, d.payload, secret)
	status := 0
	if resp, err := tr.client.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		status = resp.StatusCode
	}
	tr.mu.Lock()
	tr.answers[status]++
	if status == http.StatusAccepted {
		tr.accepted[d.guid]++
	}
	tr.mu.Unlock()
	rec := ghtest.Delivery{GUID: d.guid, Event: d.event, Action: d.action, Redelivery: d.redelivery,
		InstallationID: d.installation, RepositoryID: d.repo, Payload: d.payload}
	switch {
	case status == 0:
		rec.Status, rec.StatusCode = "failed to connect to host", 0
	case status/100 != 2:
		rec.Status, rec.StatusCode = fmt.Sprintf("Invalid HTTP Response: %d", status), status
	}
	tr.gh.AddDelivery(rec)
}

// summary is the traffic's counters for the test's log.
func (tr *traffic) summary() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return fmt.Sprintf("%d changes; webhooks %v; answers %v; %d alerts deleted", tr.changes, tr.fates, tr.answers, len(tr.removed))
}
