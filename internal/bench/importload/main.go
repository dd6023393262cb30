// Command importload is the imports benchmark. It builds nats-server and
// cmd/receiver and runs each as its own process on loopback (JetStream
// with file storage), runs a processor in this process, and measures in
// one run:
//
//   - the baseline: the processor's rate for webhook code scanning alerts
//     (-alerts distinct alerts, drained from a backlog);
//   - one -results-result SARIF (about 2 KB per result) posted to the
//     receiver: the receiver's answer time and peak RSS growth (VmHWM after
//     clear_refs), and the processor's rate turning it into findings;
//   - unchanged re-imports: the same file posted again (answered as a
//     duplicate), the same stored import delivered again (another message
//     id), and the same content as another file (a new import id): time
//     to done and finding messages published;
//   - the CPU time this process (the processor and the uploading client)
//     used for the first import, per result: unlike wall time, not
//     inflated by other work on the machine.
//
// Run from the module root: go run ./internal/bench/importload
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/imports"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/proc"
	"github.com/ghas-relay/ghas-relay/internal/processor"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/transform/transformtest"
)

const token = "bench-token"

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "importload:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("importload", flag.ContinueOnError)
	results := fs.Int("results", 10000, "results in the SARIF file")
	alerts := fs.Int("alerts", 10000, "webhook alerts of the baseline")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	e, err := start(ctx, stderr)
	if err != nil {
		return err
	}
	defer e.stop()
	nc, err := nats.Connect(e.natsURL)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if err := stream.Ensure(ctx, js, stream.Layout{Replicas: 1}); err != nil {
		return err
	}
	stateNC, err := nats.Connect(e.natsURL)
	if err != nil {
		return err
	}
	defer stateNC.Close()
	stateJS, _ := jetstream.New(stateNC)
	kv, err := stateJS.KeyValue(ctx, stream.FindingsBucket)
	if err != nil {
		return err
	}

	// Baseline: webhook alerts of the same repository, drained from a backlog.
	sample, err := os.ReadFile(filepath.Join("testdata", "webhooks", "code_scanning_alert", "created.payload.json"))
	if err != nil {
		return err
	}
	var ev map[string]any
	if err := json.Unmarshal(sample, &ev); err != nil {
		return err
	}
	for i := 1; i <= *alerts; i++ {
		ev["alert"].(map[string]any)["number"] = 100000 + i
		b, _ := json.Marshal(ev)
		m := &nats.Msg{Subject: stream.WebhookSubject("code_scanning_alert"), Data: b, Header: nats.Header{}}
		m.Header.Set(stream.HeaderEvent, "code_scanning_alert")
		m.Header.Set(stream.HeaderMsgID, fmt.Sprintf("bench-%d", i))
		if _, err := js.PublishMsgAsync(m); err != nil {
			return err
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	processorInstance := processor.New(logger, js, stateJS, kv, transformtest.Defaults(), nil, processor.NewMetrics(metrics.NewRegistry()), processor.Config{})
	pctx, pstop := context.WithCancel(ctx)
	done := make(chan struct{})
	t0 := time.Now()
	go func() { defer close(done); _ = processorInstance.Run(pctx) }()
	defer func() { pstop(); <-done }()
	if err := waitDrained(ctx, js); err != nil {
		return err
	}
	baseline := time.Since(t0)
	webhookRate := float64(*alerts) / baseline.Seconds()
	fmt.Fprintf(stdout, "baseline: %d webhook alerts processed in %s: %.0f events/s\n", *alerts, baseline.Round(time.Millisecond), webhookRate)

	body := sarif(*results)
	fmt.Fprintf(stdout, "SARIF: %d results, %.1f MB\n", *results, float64(len(body))/(1<<20))
	pid := e.recv.Pid()
	time.Sleep(500 * time.Millisecond) // let the receiver settle
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		return fmt.Errorf("reset peak RSS: %w", err)
	}
	before, _ := proc.Memory(pid, "VmRSS")
	msgs0 := findingMessages(ctx, js)
	cpu0 := cpuTime()
	t1 := time.Now()
	ans, err := post(e.listen, body)
	if err != nil {
		return err
	}
	accept := time.Since(t1)
	peak, _ := proc.Memory(pid, "VmHWM")
	growth := peak - before
	fmt.Fprintf(stdout, "receiver: %s in %s; RSS %.1f MB before, peak %.1f MB: growth %.1f MB = %.2f x the body (limit 3)\n",
		ans.Status, accept.Round(time.Millisecond), mb(before), mb(peak), mb(growth), float64(growth)/float64(len(body)))
	if err := waitDrained(ctx, js); err != nil {
		return err
	}
	first := time.Since(t1)
	cpu := cpuTime() - cpu0
	procTime := first - accept
	importRate := float64(*results) / procTime.Seconds()
	published := findingMessages(ctx, js) - msgs0
	fmt.Fprintf(stdout, "first import: done %s after the POST (processor %s): %.0f findings/s = %.2f x the webhook rate (limit 0.5); %d finding messages\n",
		first.Round(time.Millisecond), procTime.Round(time.Millisecond), importRate, importRate/webhookRate, published)
	// CPU time counts what the processor did, whatever else runs on the
	// machine (this process is the processor and the uploading client).
	fmt.Fprintf(stdout, "first import: this process used %s of CPU = %.0f µs per result\n", cpu.Round(time.Millisecond), float64(cpu.Microseconds())/float64(*results))

	// Unchanged re-imports.
	msgs1 := findingMessages(ctx, js)
	t2 := time.Now()
	dup, err := post(e.listen, body)
	if err != nil {
		return err
	}
	d1 := time.Since(t2)
	fmt.Fprintf(stdout, "same file again: %s in %s = %.3f x the first import (limit 0.2)\n", dup.Status, d1.Round(time.Millisecond), d1.Seconds()/first.Seconds())

	st, _ := js.Stream(ctx, stream.EventsStream)
	stored, err := st.GetLastMsgForSubject(ctx, stream.ImportSubject(imports.FormatSARIF))
	if err != nil {
		return err
	}
	again := &nats.Msg{Subject: stored.Subject, Header: stored.Header, Data: stored.Data}
	again.Header.Set(stream.HeaderMsgID, "import:"+ans.Import+":again")
	t3 := time.Now()
	if _, err := js.PublishMsg(ctx, again); err != nil {
		return err
	}
	if err := waitDrained(ctx, js); err != nil {
		return err
	}
	d2 := time.Since(t3)
	fmt.Fprintf(stdout, "same stored import delivered again: processed in %s = %.3f x the first import\n", d2.Round(time.Millisecond), d2.Seconds()/first.Seconds())

	t4 := time.Now()
	if _, err := post(e.listen, append(body, '\n')); err != nil {
		return err
	}
	if err := waitDrained(ctx, js); err != nil {
		return err
	}
	d3 := time.Since(t4)
	fmt.Fprintf(stdout, "same content as a new file (new import id): done in %s = %.2f x the first import\n", d3.Round(time.Millisecond), d3.Seconds()/first.Seconds())
	fmt.Fprintf(stdout, "finding messages published by the three re-imports: %d\n", findingMessages(ctx, js)-msgs1)
	return nil
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type answer struct {
	Import, Status, Error string
	Results               int
}

func post(addr string, body []byte) (answer, error) {
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/imports?repository=Codertocat/Hello-World", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/sarif+json")
	resp, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	var a answer
	_ = json.NewDecoder(resp.Body).Decode(&a)
	if resp.StatusCode != http.StatusAccepted {
		return a, fmt.Errorf("POST /imports: %d %s", resp.StatusCode, a.Error)
	}
	return a, nil
}

// sarif is a CodeQL-shaped log with n results of about 2 KB each.
func sarif(n int) []byte {
	type obj = map[string]any
	var rules []any
	for i := range 200 {
		rules = append(rules, obj{"id": fmt.Sprintf("js/rule-%d", i), "name": fmt.Sprintf("js/rule-%d", i),
			"shortDescription": obj{"text": fmt.Sprintf("Rule %d", i)},
			"help":             obj{"text": strings.Repeat("Explain the rule and how to fix it. ", 20)},
			"properties":       obj{"tags": []string{"security", fmt.Sprintf("external/cwe/cwe-%03d", 20+i%100)}, "security-severity": fmt.Sprintf("%.1f", float64(i%100)/10)}})
	}
	results := make([]any, 0, n)
	msg := strings.Repeat("This value flows from a user-provided source through several calls to a sensitive sink. ", 16)
	for i := range n {
		results = append(results, obj{
			"ruleId": fmt.Sprintf("js/rule-%d", i%200), "ruleIndex": i % 200,
			"message": obj{"text": msg},
			"locations": []any{obj{"physicalLocation": obj{"artifactLocation": obj{"uri": fmt.Sprintf("src/module%d/file%d.js", i%50, i), "uriBaseId": "%SRCROOT%"},
				"region": obj{"startLine": 10 + i%500, "startColumn": 5, "endLine": 10 + i%500, "endColumn": 40}}}},
			"partialFingerprints": obj{"primaryLocationLineHash": fmt.Sprintf("%016x:1", uint64(i)*2654435761)},
			"relatedLocations": []any{obj{"id": 1, "physicalLocation": obj{"artifactLocation": obj{"uri": fmt.Sprintf("src/lib/source%d.js", i)},
				"region": obj{"startLine": 3, "startColumn": 1, "endColumn": 30}}, "message": obj{"text": "user-provided value"}}},
		})
	}
	log := obj{"version": "2.1.0", "$schema": "https://json.schemastore.org/sarif-2.1.0.json", "runs": []any{obj{
		"tool":        obj{"driver": obj{"name": "CodeQL", "organization": "GitHub", "rules": rules}},
		"invocations": []any{obj{"executionSuccessful": true, "endTimeUtc": "2026-11-21T08:30:00Z"}},
		"results":     results,
	}}}
	b, _ := json.MarshalIndent(log, "", " ")
	return b
}

func waitDrained(ctx context.Context, js jetstream.JetStream) error {
	for {
		ok, err := stream.Drained(ctx, js, processor.ConsumerName)
		if err == nil && ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// findingMessages counts the finding messages of GHAS_FINDINGS.
func findingMessages(ctx context.Context, js jetstream.JetStream) int {
	st, err := js.Stream(ctx, stream.FindingsStream)
	if err != nil {
		return -1
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(stream.FindingsPrefix+">"))
	if err != nil {
		return -1
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }
