package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/imports"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// importToken is the demo receiver's IMPORT_TOKENS.
const importToken = "demo-import-token"

// demoImports imports a Claude Security SARIF and the Codex Security CSV
// sample for the repository of one of GitHub's code scanning alerts — the
// SARIF's first result placed at that alert's path, line and weakness —
// and shows the repository's sources and the correlated pair.
func demoImports(ctx context.Context, w io.Writer, listen string, js jetstream.JetStream) error {
	docs, err := loadFindings(ctx, js)
	if err != nil {
		return err
	}
	var alert *finding.Document
	for i := range docs {
		d := &docs[i]
		if f := d.Finding(); f != nil && f.CorrelationKey != "" && f.FindingStatus == finding.StatusActive && strings.Count(d.FindingKey, ".") == 2 {
			alert = d
			break
		}
	}
	if alert == nil {
		return fmt.Errorf("imports: no active code scanning alert with a path, a line and a CWE")
	}
	f := alert.Finding()
	sarif, err := placedSARIF(f.Location.Path, f.Location.StartLine, f.FindingType.Vulnerability.CWEIDs[0])
	if err != nil {
		return err
	}
	csv, err := os.ReadFile(filepath.Join("testdata", "imports", "codex-security.csv"))
	if err != nil {
		return err
	}
	for _, up := range []struct {
		body         []byte
		format, kind string
	}{{sarif, imports.FormatSARIF, "application/sarif+json"}, {csv, imports.FormatCodexCSV, "text/csv"}} {
		st, err := importAndWait(ctx, listen, alert.AssetDetail.FullName, up.format, up.kind, up.body)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "imported %s for %s: %s, %d results (%d new)\n", up.format, alert.AssetDetail.FullName, st.Status, st.Results, st.Findings.New)
	}
	if err := waitDrained(ctx, js); err != nil {
		return err
	}
	id, _ := url.PathUnescape(alert.VendorAssetID)
	fs, err := js.Stream(ctx, stream.FindingsStream)
	if err != nil {
		return err
	}
	if m, err := fs.GetLastMsgForSubject(ctx, stream.AssetsPrefix+id); err == nil {
		var a finding.Document
		if json.Unmarshal(m.Data, &a) == nil {
			fmt.Fprintf(w, "asset %s (%s) now has %d sources: %s\n", a.AssetDetail.FullName, a.ExternalAssetID, len(a.AssetDetail.Sources), strings.Join(a.AssetDetail.Sources, "; "))
		}
	}
	docs, err = loadFindings(ctx, js)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "correlationKey %s joins:\n", f.CorrelationKey)
	for _, d := range docs {
		if g := d.Finding(); g != nil && g.CorrelationKey == f.CorrelationKey {
			fmt.Fprintf(w, "  %-55s %-32s %s:%d %v\n", d.FindingKey, d.Source, g.Location.Path, g.Location.StartLine, g.FindingType.Vulnerability.CWEIDs)
		}
	}
	return nil
}

// placedSARIF is the Claude Security sample with its first result at
// path:line and its rule tagged with cwe.
func placedSARIF(path string, line int, cwe string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join("testdata", "imports", "claude-security.sarif"))
	if err != nil {
		return nil, err
	}
	var log map[string]any
	if err := json.Unmarshal(b, &log); err != nil {
		return nil, err
	}
	run := log["runs"].([]any)[0].(map[string]any)
	rule := run["tool"].(map[string]any)["driver"].(map[string]any)["rules"].([]any)[0].(map[string]any)
	rule["properties"].(map[string]any)["tags"] = []any{"security", cwe}
	res := run["results"].([]any)[0].(map[string]any)
	pl := res["locations"].([]any)[0].(map[string]any)["physicalLocation"].(map[string]any)
	pl["artifactLocation"] = map[string]any{"uri": path}
	pl["region"] = map[string]any{"startLine": line}
	run["invocations"] = []any{map[string]any{"executionSuccessful": true, "endTimeUtc": time.Now().UTC().Format(time.RFC3339)}}
	return json.Marshal(log)
}

// importAndWait posts a file to /imports and polls its status until the
// processor has recorded an outcome.
func importAndWait(ctx context.Context, listen, repo, format, contentType string, body []byte) (imports.Status, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	u := fmt.Sprintf("http://%s%s?repository=%s&format=%s", listen, imports.Path, url.QueryEscape(repo), format)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+importToken)
	req.Header.Set("Content-Type", contentType)
	resp, err := client.Do(req)
	if err != nil {
		return imports.Status{}, fmt.Errorf("import %s: %w", format, err)
	}
	var ans struct{ Import, Status, Error string }
	_ = json.NewDecoder(resp.Body).Decode(&ans)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return imports.Status{}, fmt.Errorf("import %s: %d %s", format, resp.StatusCode, ans.Error)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s%s/%s", listen, imports.Path, ans.Import), nil)
		req.Header.Set("Authorization", "Bearer "+importToken)
		if resp, err := client.Do(req); err == nil {
			var st imports.Status
			_ = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && st.Status != imports.StatusAccepted {
				if st.Status == imports.StatusFailed {
					return st, fmt.Errorf("import %s failed: %s", format, st.Error)
				}
				return st, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return imports.Status{}, fmt.Errorf("import %s not processed within 60 s", format)
}
