// Command processorload measures how fast processors drain a backlog. It
// starts an in-process JetStream server (file storage), fills GHAS_EVENTS
// with a mixed backlog built from the sample payloads (code scanning,
// Dependabot and secret scanning alerts in several lifecycle states, with
// repeated deliveries of the same alerts), and in the same run measures:
//
//   - raw: a durable consumer that only fetches and acks the backlog (the
//     broker's limit on this machine);
//   - stateful: the floor of any processor that keeps state durably — per
//     event, fetch it, do one compare-and-set write of a document of the
//     processor's size to KV ghas_findings (which GHAS_FINDINGS sources, as
//     in production), wait for the write's ack, then ack the event; with
//     as many workers as a processor instance;
//   - the processor with 1 and with 2 instances (each its own NATS
//     connection), KV state on, until every event is acked; "no-priority"
//     modes run the same processor without its finisher (no priority, no
//     correlation index), to measure what they cost.
//
// With -correlated every code scanning alert carries a CWE and a line of
// its own, so each has a correlation key of its own and each of its status
// changes moves it in or out of the correlation index (the index's worst
// case: no code scanning event leaves it alone).
//
// -repository-change N measures something else: N findings of one
// repository are stored, then one custom_property_values event changes the
// repository's criticality; it reports the time until every finding is
// rewritten with its new priority and on GHAS_FINDINGS.
//
// Each measurement is repeated -reps times on a fresh copy of the backlog
// and the median is reported with its ratio to the raw median.
//
// Run from the module root: go run ./internal/bench/processorload
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/processor"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/transform"
	"github.com/ghas-relay/ghas-relay/internal/transform/transformtest"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "processorload:", err)
		os.Exit(1)
	}
}

// profile, when set, receives a CPU profile of the first drain.
var profile *os.File

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("processorload", flag.ContinueOnError)
	n := fs.Int("events", 100000, "events in the backlog")
	reps := fs.Int("reps", 3, "repetitions of each measurement")
	workers := fs.Int("workers", 32, "workers per processor instance (cmd/processor's default)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the drains (not the fills) to this file")
	modesFlag := fs.String("modes", "raw,stateful,processor x1,processor x2", "comma-separated modes to measure (also: processor x1 no-priority, processor x2 no-priority)")
	correlated := fs.Bool("correlated", false, "give every code scanning alert a CWE, so each has a correlation key")
	repoChange := fs.Int("repository-change", 0, "instead: store this many findings of one repository and time a criticality change over all of them")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		profile = f
	}
	modes := strings.Split(*modesFlag, ",")
	dir, err := os.MkdirTemp("", "processorload-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		return err
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		return fmt.Errorf("nats server not ready")
	}
	defer srv.Shutdown()

	if *repoChange > 0 {
		return measureRepositoryChange(srv.ClientURL(), *repoChange, *workers, *reps, out)
	}
	events, err := backlog(*n, *correlated)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "backlog: %d events (%d distinct alerts), %d workers per instance, %d reps\n\n", len(events), distinct(events), *workers, *reps)

	results := map[string][]float64{}
	for rep := 0; rep < *reps; rep++ {
		for _, mode := range modes {
			rate, err := measure(srv.ClientURL(), mode, events, *workers)
			if err != nil {
				return fmt.Errorf("%s: %w", mode, err)
			}
			results[mode] = append(results[mode], rate)
			fmt.Fprintf(out, "rep %d %-13s %8.0f events/s\n", rep+1, mode, rate)
		}
	}
	raw, stateful := median(results["raw"]), median(results["stateful"])
	fmt.Fprintf(out, "\n| mode | events/s (median of %d) | runs | ratio to raw | ratio to stateful |\n|---|---|---|---|---|\n", *reps)
	for _, mode := range modes {
		m := median(results[mode])
		fmt.Fprintf(out, "| %s | %.0f | %s | %.3f | %.3f |\n", mode, m, runs(results[mode]), m/raw, m/stateful)
	}
	return nil
}

type event struct {
	name string
	body []byte
	key  string
}

// backlog builds n events: alerts of the three kinds from the samples, each
// alert created, then changed, with every tenth delivery a duplicate;
// correlated gives every code scanning alert a CWE (a correlation key).
func backlog(n int, correlated bool) ([]event, error) {
	type tmpl struct {
		event, file, dataset string
		actions              []string
	}
	tmpls := []tmpl{
		{"code_scanning_alert", "code_scanning_alert/created.payload.json", "sast", []string{"created", "fixed", "reopened"}},
		{"dependabot_alert", "dependabot_alert/created.payload.json", "sca", []string{"created", "fixed"}},
		{"secret_scanning_alert", "secret_scanning_alert/reopened.payload.json", "secret", []string{"reopened"}},
	}
	var out []event
	for i := 0; len(out) < n; i++ {
		t := tmpls[i%len(tmpls)]
		raw, err := os.ReadFile(filepath.Join("testdata", "webhooks", t.file))
		if err != nil {
			return nil, fmt.Errorf("read sample (run from the module root): %w", err)
		}
		for j, action := range t.actions {
			var p map[string]any
			if err := json.Unmarshal(raw, &p); err != nil {
				return nil, err
			}
			p["action"] = action
			a := p["alert"].(map[string]any)
			a["number"] = i
			at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Minute + time.Duration(j)*time.Second).Format(time.RFC3339)
			a["updated_at"] = at
			if correlated && t.dataset == "sast" {
				// A weakness of its own: a CWE, and a line of its own.
				a["rule"].(map[string]any)["tags"] = []string{"security", "external/cwe/cwe-089"}
				a["instances"].([]any)[0].(map[string]any)["location"].(map[string]any)["start_line"] = 1 + i
			}
			switch action {
			case "fixed":
				a["state"] = "fixed"
				a["fixed_at"] = at
			case "created", "reopened":
				if t.dataset != "secret" {
					a["state"] = "open"
				}
			}
			p["repository"].(map[string]any)["id"] = 1000 + i%500
			b, err := json.Marshal(p)
			if err != nil {
				return nil, err
			}
			ev := event{name: t.event, body: b, key: fmt.Sprintf("%s.%d.%d", t.dataset, 1000+i%500, i)}
			out = append(out, ev)
			if len(out)%10 == 0 {
				out = append(out, ev) // a second delivery of the same content
			}
		}
	}
	return out[:n], nil
}

func distinct(evs []event) int {
	m := map[string]bool{}
	for _, e := range evs {
		m[e.key] = true
	}
	return len(m)
}

// measure resets the layout, fills the backlog and drains it in mode,
// returning events per second of the drain.
func measure(url, mode string, events []event, workers int) (float64, error) {
	ctx := context.Background()
	nc, err := nats.Connect(url)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	if err := resetLayout(ctx, js); err != nil {
		return 0, err
	}
	// Fill asynchronously, then wait for every ack.
	for i, ev := range events {
		msg := &nats.Msg{Subject: stream.WebhookSubject(ev.name), Header: nats.Header{}, Data: ev.body}
		msg.Header.Set(stream.HeaderEvent, ev.name)
		msg.Header.Set(stream.HeaderMsgID, fmt.Sprintf("d-%d", i))
		if _, err := js.PublishMsgAsync(msg); err != nil {
			return 0, err
		}
		if i%2000 == 0 {
			<-js.PublishAsyncComplete()
		}
	}
	<-js.PublishAsyncComplete()

	if profile != nil {
		if err := pprof.StartCPUProfile(profile); err == nil {
			defer pprof.StopCPUProfile()
		}
	}
	start := time.Now()
	switch mode {
	case "raw":
		err = drainRaw(ctx, js, len(events))
	case "stateful":
		err = drainStateful(ctx, js, events, workers)
	case "processor x1":
		err = drainProcessors(ctx, url, 1, workers, len(events), false)
	case "processor x2":
		err = drainProcessors(ctx, url, 2, workers, len(events), false)
	case "processor x1 no-priority":
		err = drainProcessors(ctx, url, 1, workers, len(events), true)
	case "processor x2 no-priority":
		err = drainProcessors(ctx, url, 2, workers, len(events), true)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		return 0, err
	}
	return float64(len(events)) / time.Since(start).Seconds(), nil
}

// resetLayout deletes the streams and buckets and creates them again.
func resetLayout(ctx context.Context, js jetstream.JetStream) error {
	for _, name := range []string{stream.EventsStream, stream.FindingsStream, stream.DLQStream} {
		_ = js.DeleteStream(ctx, name)
	}
	for _, name := range []string{stream.FindingsBucket, stream.StateBucket, stream.MapsBucket} {
		_ = js.DeleteKeyValue(ctx, name)
	}
	return stream.Ensure(ctx, js, stream.Layout{Replicas: 1})
}

func drainRaw(ctx context.Context, js jetstream.JetStream, n int) error {
	cons, err := js.CreateOrUpdateConsumer(ctx, stream.EventsStream, jetstream.ConsumerConfig{
		Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 4096,
	})
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	count := 0
	wg.Add(1)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		_ = m.Ack()
		count++
		if count == n {
			close(done)
		}
	})
	if err != nil {
		return err
	}
	<-done
	cc.Stop()
	wg.Done()
	return waitAcked(ctx, js, "raw")
}

// drainStateful is the stateful baseline: workers that each fetch an
// event, write one document of the processor's size to its key under
// compare-and-set (the revision from a local cache, read from KV only
// after a conflict), wait for the write's ack, and ack the event.
func drainStateful(ctx context.Context, js jetstream.JetStream, events []event, workers int) error {
	doc, err := sampleDocument(events[0])
	if err != nil {
		return err
	}
	kv, err := js.KeyValue(ctx, stream.FindingsBucket)
	if err != nil {
		return err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, stream.EventsStream, jetstream.ConsumerConfig{
		Durable: "stateful", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 4096,
	})
	if err != nil {
		return err
	}
	keyOf := map[string]string{}
	for i, ev := range events {
		keyOf[fmt.Sprintf("d-%d", i)] = ev.key
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * workers))
	if err != nil {
		return err
	}
	var (
		mu   sync.Mutex
		revs = map[string]uint64{}
		wg   sync.WaitGroup
	)
	msgs := make(chan jetstream.Msg)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range msgs {
				key := keyOf[m.Headers().Get(stream.HeaderMsgID)]
				for {
					mu.Lock()
					rev := revs[key]
					mu.Unlock()
					w := &nats.Msg{Subject: stream.FindingsKVPrefix + key, Header: nats.Header{}, Data: doc}
					w.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(rev, 10))
					w.Header.Set(stream.HeaderMsgID, fmt.Sprintf("%s:%d", key, rev))
					w.Header.Set(stream.HeaderFindingKey, key)
					ack, err := js.PublishMsg(ctx, w)
					if err == nil {
						mu.Lock()
						revs[key] = ack.Sequence
						mu.Unlock()
						break
					}
					e, gerr := kv.Get(ctx, key)
					if gerr != nil {
						fmt.Fprintln(os.Stderr, "stateful:", err, gerr)
						return
					}
					mu.Lock()
					revs[key] = e.Revision()
					mu.Unlock()
				}
				_ = m.Ack()
			}
		}()
	}
	for range events {
		m, err := it.Next()
		if err != nil {
			break
		}
		msgs <- m
	}
	it.Stop()
	close(msgs)
	wg.Wait()
	return waitAcked(ctx, js, "stateful")
}

// sampleDocument is the processor's document for one event: the stateful
// baseline writes documents of this size.
func sampleDocument(ev event) ([]byte, error) {
	d, err := transform.Defaults().Alert(transform.Event{Name: ev.name, Payload: ev.body, Origin: stream.OriginWebhook, ReceivedAt: time.Now()}, time.Now())
	if err != nil {
		return nil, err
	}
	b, _, err := d.Encode()
	return b, err
}

func drainProcessors(ctx context.Context, url string, instances, workers, n int, noPriority bool) error {
	pctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var conns []*nats.Conn
	for i := 0; i < instances; i++ {
		nc, err := nats.Connect(url)
		if err != nil {
			cancel()
			return err
		}
		conns = append(conns, nc)
		js, _ := jetstream.New(nc)
		// As cmd/processor: finding state on a second connection.
		stateConn, err := nats.Connect(url)
		if err != nil {
			cancel()
			return err
		}
		conns = append(conns, stateConn)
		stateJS, _ := jetstream.New(stateConn)
		findings, err := stateJS.KeyValue(ctx, stream.FindingsBucket)
		if err != nil {
			cancel()
			return err
		}
		p := processor.New(logger, js, stateJS, findings, transformtest.Defaults(), nil, processor.NewMetrics(metrics.NewRegistry()), processor.Config{Workers: workers, NoPriority: noPriority})
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Run(pctx); err != nil {
				fmt.Fprintln(os.Stderr, "processor:", err)
			}
		}()
	}
	nc, _ := nats.Connect(url)
	defer nc.Close()
	js, _ := jetstream.New(nc)
	err := waitAcked(ctx, js, processor.ConsumerName)
	cancel()
	wg.Wait()
	for _, c := range conns {
		c.Close()
	}
	return err
}

// waitAcked waits until the durable has nothing pending or unacked.
func waitAcked(ctx context.Context, js jetstream.JetStream, durable string) error {
	deadline := time.Now().Add(30 * time.Minute)
	for time.Now().Before(deadline) {
		// Every event acked (the ack floor at the stream's last sequence)
		// and every finding on GHAS_FINDINGS.
		if ok, _ := stream.Drained(ctx, js, durable); ok {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("%s: backlog not drained", durable)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func runs(xs []float64) string {
	s := ""
	for i, x := range xs {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%.0f", x)
	}
	return s
}
