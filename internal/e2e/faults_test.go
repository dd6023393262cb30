package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/proc"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

// sendAll posts every delivery with conc senders and records the status of
// each; during lets the test break the world while the load runs.
func sendAll(url string, ds []delivery, conc int, during func(sent *atomic.Int64)) []int {
	client := &http.Client{Timeout: 15 * time.Second}
	codes := make([]int, len(ds))
	var next, sent atomic.Int64
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ds) {
					return
				}
				codes[i] = send(client, url, ds[i])
				sent.Add(1)
			}
		}()
	}
	if during != nil {
		during(&sent)
	}
	wg.Wait()
	return codes
}

// waitSent waits until n deliveries were answered (any status).
func waitSent(t *testing.T, sent *atomic.Int64, n int64) {
	t.Helper()
	streamtest.WaitFor(t, 120*time.Second, fmt.Sprintf("%d deliveries answered", n), func() bool { return sent.Load() >= n })
}

// TestClusterNodeAndProcessorKilledUnderLoad: a 3-node JetStream cluster
// with the streams at R3, a receiver and two processors as processes;
// 2,000 signed deliveries while one NATS node is killed and restarted and
// one processor is killed (SIGKILL) and restarted. Every delivery answered
// 202 is stored exactly once and its finding is in KV with the right state.
func TestClusterNodeAndProcessorKilledUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-process fault test")
	}
	cluster := streamtest.RunCluster(t, 3)
	_, js := cluster.Connect(3)
	env := []string{"NATS_URL=" + cluster.URLs(), "STREAM_REPLICAS=3", "LOG_LEVEL=warn"}
	recv, addrs := serve(t, "receiver", "receiver", 2, func(a []string) []string {
		return append(env, "LISTEN_ADDR="+a[0], "ADMIN_ADDR="+a[1], "GITHUB_WEBHOOK_SECRET="+secret)
	})
	listen := addrs[0]
	var procs []*proc.Process
	for i := range 2 {
		p, _ := serve(t, fmt.Sprintf("processor-%d", i+1), "processor", 1, func(a []string) []string { return append(env, "ADMIN_ADDR="+a[0]) })
		procs = append(procs, p)
	}

	const repo = 777001
	ds := makeDeliveries(t, 2000, repo)
	codes := sendAll("http://"+listen+"/webhook", ds, 16, func(sent *atomic.Int64) {
		waitSent(t, sent, 400)
		cluster.Servers[1].Shutdown() // a NATS node dies
		waitSent(t, sent, 900)
		procs[0].Kill() // a processor dies holding messages
		waitSent(t, sent, 1300)
		cluster.Servers[1].Start()
		if err := procs[0].Restart(t.Context()); err != nil { // same address, same log
			t.Error(err)
		}
	})

	accepted := 0
	for _, c := range codes {
		switch c {
		case 202:
			accepted++
		case 503:
		default:
			t.Errorf("status %d: only 202 or 503 are allowed", c)
		}
	}
	if accepted < len(ds)/2 {
		t.Fatalf("only %d of %d deliveries accepted; receiver log:\n%s", accepted, len(ds), recv.Logs())
	}
	streamtest.WaitFor(t, 90*time.Second, "processors to drain", func() bool { return drained(js) })

	stored := storedDeliveries(t, js)
	kv, err := js.KeyValue(t.Context(), stream.FindingsBucket)
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range ds {
		if codes[i] != 202 {
			continue
		}
		if n := stored[d.guid]; n != 1 {
			t.Errorf("delivery %s answered 202 is stored %d times", d.guid, n)
			continue
		}
		key := finding.Key(finding.SAST, repo, int64(d.number))
		got, ok := findingStatus(kv, key)
		if !ok || got != statusOf[d.state] {
			t.Errorf("finding %s: %q (present %v), want %s", key, got, ok, statusOf[d.state])
		}
	}
	t.Logf("%d of %d deliveries accepted (others 503 while the cluster moved leaders)", accepted, len(ds))
}

// TestJetStreamDownTenSeconds: the whole JetStream goes away for 10 s under
// load. The receiver answers 503 (never 202 for a lost delivery) and
// accepts again by itself once the server is back on the same store.
func TestJetStreamDownTenSeconds(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-process fault test")
	}
	ns := streamtest.Run(t)
	_, js := ns.Connect()
	_, addrs := serve(t, "receiver", "receiver", 2, func(a []string) []string {
		return []string{"NATS_URL=" + ns.URL(), "LOG_LEVEL=warn", "LISTEN_ADDR=" + a[0], "ADMIN_ADDR=" + a[1], "GITHUB_WEBHOOK_SECRET=" + secret}
	})
	listen := addrs[0]

	ds := makeDeliveries(t, 3000, 777002)
	var downFrom, downTo time.Time
	url := "http://" + listen + "/webhook"
	client := &http.Client{Timeout: 15 * time.Second}
	codes := make([]int, len(ds))
	when := make([]time.Time, len(ds))
	// A steady 200 deliveries/s for ~15 s, across the outage.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var wg sync.WaitGroup
	start := time.Now()
	for i := range ds {
		<-tick.C
		if downFrom.IsZero() && time.Since(start) > 2*time.Second {
			downFrom = time.Now()
			go func() {
				ns.Shutdown()
				time.Sleep(10 * time.Second)
				ns.Start()
			}()
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			codes[i] = send(client, url, ds[i])
			when[i] = time.Now()
		}(i)
	}
	wg.Wait()
	downTo = downFrom.Add(10 * time.Second)

	var ok, unavailable, okAfter int
	for i, c := range codes {
		switch c {
		case 202:
			ok++
			if when[i].After(downTo.Add(2 * time.Second)) {
				okAfter++
			}
		case 503:
			unavailable++
		default:
			t.Errorf("delivery %d: status %d, want 202 or 503", i, c)
		}
	}
	if unavailable == 0 {
		t.Error("no 503 while JetStream was down")
	}
	if okAfter == 0 {
		t.Errorf("the receiver did not accept again after JetStream came back (ok %d, 503 %d)", ok, unavailable)
	}
	stored := storedDeliveries(t, js)
	for i, d := range ds {
		if codes[i] == 202 && stored[d.guid] != 1 {
			t.Errorf("delivery %d answered 202 is stored %d times", i, stored[d.guid])
		}
	}
	t.Logf("202: %d (of which %d after recovery), 503: %d", ok, okAfter, unavailable)
}

// TestSinkDownThirtySeconds: the sink refuses connections for 30 s while
// findings are produced; afterwards every finding is delivered, none missing.
func TestSinkDownThirtySeconds(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-process fault test")
	}
	ns := streamtest.Run(t)
	nc, js := ns.Connect()
	_ = nc
	sinkAddr := addr(t) // nothing listens yet: connection refused
	serve(t, "processor", "processor", 1, func(a []string) []string {
		return []string{"NATS_URL=" + ns.URL(), "LOG_LEVEL=warn", "ADMIN_ADDR=" + a[0], "SINK_URL=http://" + sinkAddr + "/findings"}
	})

	const repo = 777003
	ds := makeDeliveries(t, 300, repo)
	for _, d := range ds {
		publishEvent(t, js, d)
	}
	streamtest.WaitFor(t, 60*time.Second, "processor to drain", func() bool { return drained(js) })
	time.Sleep(30 * time.Second) // the sink stays down for 30 s in all

	var mu sync.Mutex
	got := map[string]bool{}
	ln, err := net.Listen("tcp", sinkAddr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		d, err := finding.Decode(body)
		mu.Lock()
		if err == nil {
			got[r.Header.Get("Ghas-Finding-Key")+" "+d.ContentHash()] = true
		}
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	kv, err := js.KeyValue(t.Context(), stream.FindingsBucket)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, d := range ds {
		key := finding.Key(finding.SAST, repo, int64(d.number))
		e, err := kv.Get(t.Context(), key)
		if err != nil {
			t.Fatalf("finding %s missing from KV: %v", key, err)
		}
		doc, err := finding.Decode(e.Value())
		if err != nil {
			t.Fatal(err)
		}
		want[key+" "+doc.ContentHash()] = true
	}
	streamtest.WaitFor(t, 90*time.Second, "every finding at the sink", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for k := range want {
			if !got[k] {
				return false
			}
		}
		return true
	})
}
