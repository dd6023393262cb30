package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/processor"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/transform/transformtest"
)

// changeRepo is the repository of -repository-change.
const changeRepo = 4242

// measureRepositoryChange stores n code scanning findings of one
// repository (criticality medium) with one processor instance, then
// publishes one custom_property_values event setting criticality critical
// and times it until every finding is rewritten and on GHAS_FINDINGS; reps
// times, each on a fresh layout.
func measureRepositoryChange(url string, n, workers, reps int, out io.Writer) error {
	fmt.Fprintf(out, "criticality change on a repository with %d findings, 1 processor instance, %d workers, %d reps\n\n", n, workers, reps)
	var times []float64
	for rep := 1; rep <= reps; rep++ {
		d, err := repositoryChangeOnce(url, n, workers)
		if err != nil {
			return err
		}
		times = append(times, d.Seconds())
		fmt.Fprintf(out, "rep %d  %6.2f s  (%.0f findings/s)\n", rep, d.Seconds(), float64(n)/d.Seconds())
	}
	m := median(times)
	var rs []string
	for _, t := range times {
		rs = append(rs, fmt.Sprintf("%.2f", t))
	}
	fmt.Fprintf(out, "\n| findings | seconds (median of %d) | runs | findings/s |\n|---|---|---|---|\n| %d | %.2f | %s | %.0f |\n", reps, n, m, strings.Join(rs, ", "), float64(n)/m)
	return nil
}

func repositoryChangeOnce(url string, n, workers int) (time.Duration, error) {
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
	raw, err := os.ReadFile(filepath.Join("testdata", "webhooks", "code_scanning_alert", "created.payload.json"))
	if err != nil {
		return 0, fmt.Errorf("read sample (run from the module root): %w", err)
	}
	var repo map[string]any
	for i := 1; i <= n; i++ {
		var p map[string]any
		if err := json.Unmarshal(raw, &p); err != nil {
			return 0, err
		}
		a := p["alert"].(map[string]any)
		a["number"], a["state"] = i, "open"
		a["updated_at"] = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second).Format(time.RFC3339)
		repo = p["repository"].(map[string]any)
		repo["id"], repo["full_name"], repo["name"] = changeRepo, "octo-org/payments", "payments"
		repo["custom_properties"] = map[string]any{"criticality": "medium", "owner": "payments-team"}
		if err := publish(js, "code_scanning_alert", fmt.Sprintf("fill-%d", i), p); err != nil {
			return 0, err
		}
	}
	<-js.PublishAsyncComplete()

	stop, err := startProcessor(ctx, url, workers)
	if err != nil {
		return 0, err
	}
	defer stop()
	if err := waitAcked(ctx, js, processor.ConsumerName); err != nil {
		return 0, err
	}
	delete(repo, "custom_properties")
	ev := map[string]any{
		"action":              "updated",
		"repository":          repo,
		"new_property_values": []map[string]any{{"property_name": "criticality", "value": "critical"}},
		"installation":        map[string]any{"id": 1},
	}
	start := time.Now()
	if err := publish(js, "custom_property_values", "change", ev); err != nil {
		return 0, err
	}
	<-js.PublishAsyncComplete()
	if err := waitAcked(ctx, js, processor.ConsumerName); err != nil {
		return 0, err
	}
	took := time.Since(start)
	return took, checkCritical(ctx, js, n)
}

// publish stores one webhook event asynchronously.
func publish(js jetstream.JetStream, event, id string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: stream.WebhookSubject(event), Header: nats.Header{}, Data: b}
	msg.Header.Set(stream.HeaderEvent, event)
	msg.Header.Set(stream.HeaderMsgID, id)
	_, err = js.PublishMsgAsync(msg)
	return err
}

// startProcessor runs one processor instance until the returned stop.
func startProcessor(ctx context.Context, url string, workers int) (stop func(), err error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return nil, err
	}
	stateConn, err := nats.Connect(url)
	if err != nil {
		nc.Close()
		return nil, err
	}
	js, _ := jetstream.New(nc)
	stateJS, _ := jetstream.New(stateConn)
	findings, err := stateJS.KeyValue(ctx, stream.FindingsBucket)
	if err != nil {
		nc.Close()
		stateConn.Close()
		return nil, err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p := processor.New(logger, js, stateJS, findings, transformtest.Defaults(), nil, processor.NewMetrics(metrics.NewRegistry()), processor.Config{Workers: workers})
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Run(pctx)
	}()
	return func() {
		cancel()
		<-done
		nc.Close()
		stateConn.Close()
	}, nil
}

// checkCritical checks that all n findings carry the new criticality and
// its priority factor.
func checkCritical(ctx context.Context, js jetstream.JetStream, n int) error {
	kv, err := js.KeyValue(ctx, stream.FindingsBucket)
	if err != nil {
		return err
	}
	for i := 1; i <= n; i++ {
		key := finding.Key(finding.SAST, changeRepo, int64(i))
		e, err := kv.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		d, err := finding.Decode(e.Value())
		if err != nil {
			return err
		}
		f := d.Finding()
		ok := d.AssetDetail.RepositoryAssetClass.Criticality == "critical" && f.Priority != nil
		if ok {
			ok = false
			for _, x := range f.Priority.Factors {
				ok = ok || (x.Name == "criticality" && x.Value == "critical")
			}
		}
		if !ok {
			return fmt.Errorf("%s: criticality %q, priority %+v after the change", key, d.AssetDetail.RepositoryAssetClass.Criticality, f.Priority)
		}
	}
	return nil
}
