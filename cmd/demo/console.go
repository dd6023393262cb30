package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/console/index"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/proc"
	"github.com/ghas-relay/ghas-relay/internal/webhook/webhooktest"
)

// startConsole starts the console as its NATS user console, open on a
// loopback address (no tokens), and returns its address once it has
// loaded the findings.
func startConsole(ctx context.Context, ps *proc.Group, bin func(string, []string, []string, string) proc.Spec, env []string) (string, error) {
	_, addrs, err := ps.StartOnFreeAddrs(ctx, 2, func(a []string) proc.Spec {
		return bin("console", nil, append(env, "CONSOLE_ADDR="+a[0], "ADMIN_ADDR="+a[1]), a[1])
	})
	if err != nil {
		return "", err
	}
	return "http://" + addrs[0], nil
}

// delivered are the sample deliveries as the fake GitHub takes them
// (ghtest.AddDelivered): their repositories and alerts then exist there,
// and the full pull keeps their findings.
func delivered(samples []webhooktest.Sample) []ghtest.Delivered {
	var out []ghtest.Delivered
	for _, s := range samples {
		out = append(out, ghtest.Delivered{Event: s.Event, Payload: s.Body})
	}
	return out
}

// printConsole asks the console what a person would see first — the open
// findings, the top exposure and what changed today — once it shows every
// finding in KV (want).
func printConsole(ctx context.Context, w io.Writer, base string, want int) error {
	client := &http.Client{Timeout: 10 * time.Second}
	getJSON := func(path string, v any) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return json.NewDecoder(resp.Body).Decode(v)
	}
	var s index.Summary
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := getJSON("/api/summary", &s); err == nil && s.Findings >= int64(want) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the console shows %d of %d findings after 30 s", s.Findings, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	var ch index.Changes
	if err := getJSON("/api/changes?since=24h", &ch); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nThe console at %s/ (JSON at %s/api/summary):\n", base, base)
	fmt.Fprintf(w, "  %d open findings of %d, on %d repositories\n", s.Open, s.Findings, s.Repositories)
	if len(s.TopExposures) > 0 {
		top := s.TopExposures[0]
		score := 0
		if top.Priority != nil {
			score = top.Priority.Score
		}
		fmt.Fprintf(w, "  top exposure: %s — %s on %s, priority %d\n", top.FindingKey, top.Name, top.Repository, score)
	}
	fmt.Fprintf(w, "  changes since yesterday: %d new, %d fixed, %d dismissed, %d reopened, %d removed\n",
		ch.Counts[index.KindNew], ch.Counts[index.KindFixed], ch.Counts[index.KindDismissed], ch.Counts[index.KindReopened], ch.Counts[index.KindRemoved])
	return nil
}
