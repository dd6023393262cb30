package processor

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/decisions"
	"github.com/ghas-relay/ghas-relay/internal/ghclient"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
)

// timedWriter records when each update was sent.
type timedWriter struct {
	AlertWriter
	mu   sync.Mutex
	sent []time.Time
}

func (w *timedWriter) UpdateAlert(ctx context.Context, inst int64, kind ghclient.Kind, owner, repo string, number int64, u ghclient.AlertUpdate) (json.RawMessage, error) {
	w.mu.Lock()
	w.sent = append(w.sent, time.Now())
	w.mu.Unlock()
	return w.AlertWriter.UpdateAlert(ctx, inst, kind, owner, repo, number, u)
}

// TestDecisionPace: updates of GitHub's alerts leave one processor at
// most one per WriteInterval, however many decisions are applied at once;
// a secondary rate limit (403 with Retry-After) is waited out and the
// decision applied, not failed.
func TestDecisionPace(t *testing.T) {
	e := newDecEnv(t)
	w := &timedWriter{AlertWriter: e.app}
	const interval = 150 * time.Millisecond
	e.start(e.processor(Config{WriteBack: w, WriteInterval: interval, DecisionWorkers: 8}))
	var reqs []decisions.Request
	for n := int64(1); n <= 6; n++ {
		reqs = append(reqs, decisions.Request{FindingKey: e.alert(ghtest.Dependabot, n), Decision: "dismiss", Reason: "no_bandwidth"})
	}
	e.waitDrained()
	f := ghtest.SecondaryLimit("/dependabot/alerts/3", time.Second, 1)
	f.Method = http.MethodPatch
	e.gh.Inject(f)
	for _, id := range e.decide("team-a", nil, reqs...) {
		if st := e.outcome(id); st.Status != decisions.StatusApplied {
			t.Errorf("%+v", st)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.sent) != 6 {
		t.Fatalf("%d updates sent, want 6", len(w.sent))
	}
	for i := 1; i < len(w.sent); i++ {
		if gap := w.sent[i].Sub(w.sent[i-1]); gap < interval-10*time.Millisecond {
			t.Errorf("updates %d and %d %s apart, want at least %s", i, i+1, gap, interval)
		}
	}
	if n := len(e.gh.Updates()); n != 6 {
		t.Errorf("GitHub took %d updates, want 6", n)
	}
	if n := e.gh.Stats().Faults; n != 1 {
		t.Errorf("%d secondary limits answered, want 1", n)
	}
}
