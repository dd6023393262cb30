package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/decisions"
	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/webhook/webhooktest"
)

// decisionToken is the demo receiver's DECISION_TOKENS_FILE line: a
// token named appsec.
const decisionToken = "appsec demo-decision-token"

// demoDecisions is the round trip of a triage decision: a CodeQL alert
// and the Claude Security finding at the same place (a new alert of
// GitHub's documented example on octo-org/payments, and a Claude Security
// scan placed on it) are dismissed with one request (scope correlated);
// it prints the update the fake GitHub took, the two findings and the
// decision's status.
func demoDecisions(ctx context.Context, w io.Writer, listen string, js jetstream.JetStream, gh *ghtest.Server, world ghtest.Demo) error {
	repo := world.Repositories[1]
	const path, line = "src/refunds/archive.js", 42
	number, err := newCodeQLAlert(ctx, listen, gh, repo, path, line)
	if err != nil {
		return err
	}
	sarif, err := placedSARIF(path, line, "CWE-22") // imports.go
	if err != nil {
		return err
	}
	if _, err := importAndWait(ctx, listen, repo.FullName, "sarif", "application/sarif+json", sarif); err != nil {
		return err
	}
	if err := waitDrained(ctx, js); err != nil {
		return err
	}
	alertKey := finding.Key(finding.SAST, repo.ID, number)
	alert, imported, err := pairOf(ctx, js, alertKey)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\ntriage once: dismissing %s (%s) and %s (%s), both at %s:%d, with one request (scope correlated)\n",
		alert.FindingKey, alert.VendorProductName, imported.FindingKey, imported.VendorProductName, path, line)
	body, _ := json.Marshal(decisions.Request{FindingKey: alert.FindingKey, Decision: "dismiss", Reason: "false_positive",
		Comment: "The entry name is checked by the caller; both tools flag the same line.", Scope: "correlated"})
	client := &http.Client{Timeout: 10 * time.Second}
	token := strings.Fields(decisionToken)[1]
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+listen+decisions.Path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	var acc struct{ Decision, Status string }
	_ = json.NewDecoder(resp.Body).Decode(&acc)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST %s: %d", decisions.Path, resp.StatusCode)
	}
	fmt.Fprintf(w, "  POST %s → %d %s, decision %s\n", decisions.Path, resp.StatusCode, acc.Status, acc.Decision)
	st, err := waitDecision(ctx, client, listen, token, acc.Decision)
	if err != nil {
		return err
	}
	for _, u := range gh.Updates() {
		fmt.Fprintf(w, "  the fake GitHub took PATCH /repos/%s/%s/alerts/%d: state %s, reason %q, comment %q\n", repo.FullName, u.Kind, u.Number, u.State, u.Reason, u.Comment)
	}
	docs, err := loadFindings(ctx, js)
	if err != nil {
		return err
	}
	for _, d := range docs {
		if d.FindingKey != alert.FindingKey && d.FindingKey != imported.FindingKey {
			continue
		}
		f := d.Finding()
		if tr := f.Triage; tr != nil {
			fmt.Fprintf(w, "  %-58s %s, triage: %s %s by %s, applied to %s\n", d.FindingKey, f.FindingStatus, tr.Decision, tr.Reason, tr.By, tr.AppliedTo)
		} else {
			fmt.Fprintf(w, "  %-58s %s\n", d.FindingKey, f.FindingStatus)
		}
	}
	out, _ := json.MarshalIndent(st, "  ", "  ")
	fmt.Fprintf(w, "  GET %s/%s →\n  %s\n", decisions.Path, acc.Decision, out)
	return nil
}

// pairOf is the stored alert of key and the imported finding that shares
// its correlationKey.
func pairOf(ctx context.Context, js jetstream.JetStream, key string) (alert, imported *finding.Document, err error) {
	docs, err := loadFindings(ctx, js)
	if err != nil {
		return nil, nil, err
	}
	for i := range docs {
		if docs[i].FindingKey == key {
			alert = &docs[i]
		}
	}
	if alert == nil || alert.Finding() == nil || alert.Finding().CorrelationKey == "" {
		return nil, nil, fmt.Errorf("decisions: the alert %s is not stored with a correlationKey", key)
	}
	for i := range docs {
		if d := &docs[i]; strings.Count(d.FindingKey, ".") == 3 && d.Finding() != nil && d.Finding().CorrelationKey == alert.Finding().CorrelationKey {
			imported = d
		}
	}
	if imported == nil {
		return nil, nil, errors.New("decisions: no imported finding shares the alert's correlationKey")
	}
	return alert, imported, nil
}

// newCodeQLAlert puts an open CodeQL alert (GitHub's documented example,
// Zip Slip, CWE-22) at path:line in the fake and delivers its created
// webhook to the receiver; it returns the alert's number.
func newCodeQLAlert(ctx context.Context, listen string, gh *ghtest.Server, repo ghtest.Repository, path string, line int) (int64, error) {
	raw, err := ghtest.Example("code-scanning-alert")
	if err != nil {
		return 0, err
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return 0, err
	}
	now := time.Now().UTC().Truncate(time.Second).Format(time.RFC3339)
	doc["state"], doc["created_at"], doc["updated_at"] = "open", now, now
	for _, f := range []string{"dismissed_by", "dismissed_at", "dismissed_reason", "dismissed_comment", "fixed_at"} {
		doc[f] = nil
	}
	if mri, ok := doc["most_recent_instance"].(map[string]any); ok {
		mri["state"] = "open"
		mri["location"] = map[string]any{"path": path, "start_line": line, "end_line": line, "start_column": 5, "end_column": 40}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return 0, err
	}
	a, err := ghtest.ExampleAlert(b)
	if err != nil {
		return 0, err
	}
	a = gh.PutAlert(repo.ID, ghtest.CodeScanning, a)
	wh, ok := gh.AlertWebhook(repo.ID, ghtest.CodeScanning, a.Number)
	if !ok {
		return 0, errors.New("decisions: the new alert is not in the fake")
	}
	var payload map[string]json.RawMessage
	if err := json.Unmarshal(wh.Payload, &payload); err != nil {
		return 0, err
	}
	payload["action"] = json.RawMessage(`"created"`)
	body, _ := json.Marshal(payload)
	req := webhooktest.NewRequest("http://"+listen+"/webhook", wh.Event, webhooktest.GUID(fmt.Sprintf("demo-decision-alert-%d", a.Number)), body, secret)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req.WithContext(ctx))
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return 0, fmt.Errorf("decisions: the alert's webhook was answered %d", resp.StatusCode)
	}
	return a.Number, nil
}

// waitDecision polls GET /decisions/{id} until the decision has its
// outcome.
func waitDecision(ctx context.Context, client *http.Client, listen, token, id string) (decisions.Status, error) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+listen+decisions.Path+"/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			return decisions.Status{}, err
		}
		var st decisions.Status
		_ = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if st.Status == decisions.StatusApplied || st.Status == decisions.StatusFailed {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return decisions.Status{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return decisions.Status{}, fmt.Errorf("decision %s has no outcome within 60 s", id)
}

// writeDecisionTokens writes the demo receiver's DECISION_TOKENS_FILE
// (one named token) into dir and returns its path.
func writeDecisionTokens(dir string) (string, error) {
	p := filepath.Join(dir, "decision-tokens")
	return p, os.WriteFile(p, []byte(decisionToken+"\n"), 0o600)
}
