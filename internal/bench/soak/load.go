package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/decisions"
	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/webhook/webhooktest"
)

var datasetOf = map[ghtest.Kind]string{ghtest.CodeScanning: finding.SAST, ghtest.Dependabot: finding.SCA, ghtest.SecretScanning: finding.Secret}

var closedState = map[ghtest.Kind]string{ghtest.CodeScanning: "dismissed", ghtest.Dependabot: "dismissed", ghtest.SecretScanning: "resolved"}

var decisionKindOf = map[ghtest.Kind]decisions.Kind{
	ghtest.CodeScanning: decisions.CodeScanning, ghtest.Dependabot: decisions.Dependabot, ghtest.SecretScanning: decisions.SecretScanning,
}

// counts are the answers of one kind of request, by HTTP status (0: none).
type counts struct {
	mu sync.Mutex
	m  map[int]int
}

func (c *counts) add(status int) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[int]int{}
	}
	c.m[status]++
	c.mu.Unlock()
}

func (c *counts) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprint(c.m)
}

// load drives the soak: webhooks at a fixed rate (each the change of a
// random alert of the fake GitHub, opened or closed), a complete CSV scan
// of a random repository every importEvery, a triage decision on a
// random alert every decisionEvery.
type load struct {
	e       *env
	rng     *rand.Rand
	rngMu   sync.Mutex
	client  *http.Client
	hooks   counts
	imports counts
	decided counts
	seq     int64
}

func newLoad(e *env, seed uint64) *load {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	return &load{e: e, rng: rand.New(rand.NewPCG(seed, 0x50a6)), client: &http.Client{Timeout: 30 * time.Second, Transport: tr}}
}

func (l *load) intn(n int) int {
	l.rngMu.Lock()
	defer l.rngMu.Unlock()
	return l.rng.IntN(n)
}

// webhooks sends rate deliveries a second, each on its own goroutine (at
// most 512 in flight: more is counted as status -1, not sent), until ctx
// ends.
func (l *load) webhooks(ctx context.Context, rate int) {
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	slots := make(chan struct{}, 512)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case slots <- struct{}{}:
		default:
			l.hooks.add(-1)
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			l.webhook()
		}()
	}
}

// webhook changes one alert and sends GitHub's delivery for it.
func (l *load) webhook() {
	r := l.e.repos[l.intn(len(l.e.repos))]
	kind := ghtest.Kinds()[l.intn(3)]
	alerts := l.e.gh.Alerts(r.ID, kind)
	a := alerts[l.intn(len(alerts))]
	state := "open"
	if a.State == "open" {
		state = closedState[kind]
	}
	resolution := ""
	if state == "resolved" {
		resolution = "revoked"
	}
	l.e.gh.UpdateAlert(r.ID, kind, a.Number, func(a *ghtest.Alert) {
		a.State, a.Resolution, a.UpdatedAt = state, resolution, time.Now().UTC().Truncate(time.Second)
	})
	w, ok := l.e.gh.AlertWebhook(r.ID, kind, a.Number)
	if !ok {
		return
	}
	l.rngMu.Lock()
	l.seq++
	guid := webhooktest.GUID(fmt.Sprintf("soak-%d-%d", l.seq, l.rng.Int64()))
	l.rngMu.Unlock()
	req := webhooktest.NewRequest(l.e.webhook+"/webhook", w.Event, guid, w.Payload, secret)
	l.hooks.add(l.do(req))
}

// do sends req and returns its status (0: no answer).
func (l *load) do(req *http.Request) int {
	resp, err := l.client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// every calls f every d until ctx ends.
func every(ctx context.Context, d time.Duration, f func()) {
	if d <= 0 {
		return
	}
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			f()
		}
	}
}

// importScan posts a complete scan of 20–60 of 100 findings for a random
// repository.
func (l *load) importScan() {
	r := l.e.repos[l.intn(len(l.e.repos))]
	var body bytes.Buffer
	body.WriteString("id,title,path,line,severity\n")
	n := 20 + l.intn(41)
	for i := range 100 {
		if l.intn(100) < n {
			fmt.Fprintf(&body, "soak-%d,Soak finding %d,src/soak/f%d.go,%d,medium\n", i, i, i, 1+i)
		}
	}
	q := url.Values{"repository": {r.FullName}, "format": {"csv"}, "tool": {"soak"}}
	req, _ := http.NewRequest(http.MethodPost, l.e.webhook+"/imports?"+q.Encode(), &body)
	req.Header.Set("Authorization", "Bearer "+importToken)
	req.Header.Set("Content-Type", "text/csv")
	l.imports.add(l.do(req))
}

// decide posts a decision on a random alert: dismiss an open one, reopen
// a closed one.
func (l *load) decide() {
	r := l.e.repos[l.intn(len(l.e.repos))]
	kind := ghtest.Kinds()[l.intn(3)]
	alerts := l.e.gh.Alerts(r.ID, kind)
	a := alerts[l.intn(len(alerts))]
	d := decisions.Request{FindingKey: finding.Key(datasetOf[kind], r.ID, a.Number), Decision: decisions.Reopen}
	if a.State == "open" {
		reasons := decisions.Reasons(decisionKindOf[kind])
		d.Decision, d.Reason = decisions.Dismiss, reasons[l.intn(len(reasons))]
	}
	b, _ := json.Marshal(d)
	req, _ := http.NewRequest(http.MethodPost, l.e.webhook+decisions.Path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+decisionToken)
	req.Header.Set("Content-Type", "application/json")
	l.decided.add(l.do(req))
}
