package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/decisions"
	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
)

// decisionToken is the receiver's DECISION_TOKENS in the random-fault test.
const decisionToken = "random-faults-decision-token"

var decisionKind = map[ghtest.Kind]decisions.Kind{
	ghtest.CodeScanning: decisions.CodeScanning, ghtest.Dependabot: decisions.Dependabot, ghtest.SecretScanning: decisions.SecretScanning,
}

// decisionTraffic posts triage decisions on random GitHub alerts (dismiss
// an open one, reopen a closed one); the processors write them back to
// the fake GitHub (WRITE_BACK), which is then the truth the end state is
// compared with, and the webhooks GitHub sends after each update are part
// of the webhook traffic (traffic.followUpdates).
type decisionTraffic struct {
	rng    *rand.Rand
	gh     *ghtest.Server
	repos  []ghtest.Repository
	url    string
	client *http.Client

	mu    sync.Mutex
	ids   []string    // decisions answered 202
	posts map[int]int // HTTP status (0: no answer) → count
}

func newDecisionTraffic(seed int64, gh *ghtest.Server, repos []ghtest.Repository, receiver string) *decisionTraffic {
	return &decisionTraffic{
		rng: rand.New(rand.NewPCG(uint64(seed), 0xdec1)), gh: gh, repos: repos, url: receiver + decisions.Path,
		client: &http.Client{Timeout: 10 * time.Second}, posts: map[int]int{},
	}
}

// run posts a decision every 1–3 s until ctx ends.
func (dt *decisionTraffic) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(1000+dt.rng.IntN(2000)) * time.Millisecond):
		}
		r := dt.repos[dt.rng.IntN(len(dt.repos))]
		kind := ghtest.Kinds()[dt.rng.IntN(3)]
		alerts := dt.gh.Alerts(r.ID, kind)
		if len(alerts) == 0 {
			continue
		}
		a := alerts[dt.rng.IntN(len(alerts))]
		req := decisions.Request{FindingKey: finding.Key(kindDataset[kind], r.ID, a.Number), Decision: decisions.Reopen}
		if a.State == "open" {
			reasons := decisions.Reasons(decisionKind[kind])
			req.Decision, req.Reason = decisions.Dismiss, reasons[dt.rng.IntN(len(reasons))]
		}
		dt.post(ctx, req)
	}
}

// post sends one decision once (a decision is not idempotent: a retry
// would be a second one).
func (dt *decisionTraffic) post(ctx context.Context, d decisions.Request) {
	body, _ := json.Marshal(d)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dt.url, bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+decisionToken)
	req.Header.Set("Content-Type", "application/json")
	status, answer := 0, []byte(nil)
	if resp, err := dt.client.Do(req); err == nil {
		answer, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		status = resp.StatusCode
	}
	var acc struct {
		Decision string `json:"decision"`
	}
	dt.mu.Lock()
	defer dt.mu.Unlock()
	dt.posts[status]++
	if status == http.StatusAccepted && json.Unmarshal(answer, &acc) == nil && acc.Decision != "" {
		dt.ids = append(dt.ids, acc.Decision)
	}
}

// settled reports whether every accepted decision has its outcome.
func (dt *decisionTraffic) settled() bool {
	v := &violations{}
	dt.check(v)
	return len(v.all()) == 0
}

// check wants every accepted decision settled (applied or failed, never
// still accepted) once the system is quiet, and returns the count of each.
func (dt *decisionTraffic) check(v *violations) map[string]int {
	dt.mu.Lock()
	ids := append([]string(nil), dt.ids...)
	dt.mu.Unlock()
	out := map[string]int{}
	for _, id := range ids {
		req, _ := http.NewRequest(http.MethodGet, dt.url+"/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+decisionToken)
		resp, err := dt.client.Do(req)
		if err != nil {
			v.add("GET decision %s: %v", id, err)
			continue
		}
		var st decisions.Status
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		switch {
		case resp.StatusCode != http.StatusOK || err != nil:
			v.add("GET decision %s: %d (%v)", id, resp.StatusCode, err)
		case st.Status != decisions.StatusApplied && st.Status != decisions.StatusFailed:
			v.add("decision %s on %s is still %q after healing", id, st.FindingKey, st.Status)
		}
		out[st.Status]++
	}
	return out
}

func (dt *decisionTraffic) summary() string {
	dt.mu.Lock()
	defer dt.mu.Unlock()
	return fmt.Sprintf("%d decisions accepted; posts %v", len(dt.ids), dt.posts)
}
