package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/config"
	"github.com/ghas-relay/ghas-relay/internal/imports"
	"github.com/ghas-relay/ghas-relay/internal/retry"
)

type importConfig struct {
	URL, Token, File                      string
	Repository, Format, Tool, Ref, Commit string
	Category, ScannedAt, Complete         string
	Wait                                  time.Duration
	Gzip                                  bool
}

func parseConfig(args []string, getenv func(string) string, out io.Writer) (importConfig, error) {
	var c importConfig
	s := config.New("ghas-import", getenv, out)
	s.String(&c.URL, "IMPORT_URL", "http://127.0.0.1:8080", "the receiver's public URL")
	s.Secret(&c.Token, "IMPORT_TOKEN", "IMPORT_TOKEN_FILE", "a bearer token of IMPORT_TOKENS")
	s.String(&c.File, "IMPORT_FILE", "", "the file to import (required)")
	s.String(&c.Repository, "IMPORT_REPOSITORY", "", "owner/name or the repository URL (required)")
	s.String(&c.Format, "IMPORT_FORMAT", "", "sarif, codex-csv or csv (default by the file name: .sarif/.json sarif, .csv csv)")
	s.String(&c.Tool, "IMPORT_TOOL", "", "the tool's name (required for csv; overrides SARIF's)")
	s.String(&c.Ref, "IMPORT_REF", "", "the scanned branch (default the repository's default branch)")
	s.String(&c.Commit, "IMPORT_COMMIT", "", "the scanned commit")
	s.String(&c.Category, "IMPORT_CATEGORY", "", "the scan's category (default SARIF automationDetails.id)")
	s.String(&c.ScannedAt, "IMPORT_SCANNED_AT", "", "the scan's time, RFC 3339 (default the file's, else now)")
	s.String(&c.Complete, "IMPORT_COMPLETE", "true", "true: a full scan of its scope (findings it no longer lists become FIXED)")
	s.Duration(&c.Wait, "IMPORT_WAIT", 5*time.Minute, "how long to wait for the outcome (0: do not wait)")
	s.Bool(&c.Gzip, "gzip", false, "send the file gzip-compressed")
	if len(args) > 0 {
		args = args[1:]
	}
	if err := s.Parse(args); err != nil {
		return c, err
	}
	if err := config.Required("IMPORT_FILE", c.File); err != nil {
		return c, err
	}
	if err := config.Required("IMPORT_REPOSITORY", c.Repository); err != nil {
		return c, err
	}
	if err := config.Required("IMPORT_TOKEN", c.Token); err != nil {
		return c, err
	}
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, &config.Error{Setting: "IMPORT_URL", Msg: fmt.Sprintf("%q is not an http(s) URL", c.URL)}
	}
	if c.Format == "" {
		switch strings.ToLower(filepath.Ext(c.File)) {
		case ".sarif", ".json":
			c.Format = imports.FormatSARIF
		case ".csv":
			c.Format = imports.FormatCSV
		default:
			return c, &config.Error{Setting: "IMPORT_FORMAT", Msg: "required: the file name does not tell (sarif, codex-csv or csv)"}
		}
	}
	if err := config.OneOf("IMPORT_FORMAT", c.Format, imports.Formats()...); err != nil {
		return c, err
	}
	if err := config.OneOf("IMPORT_COMPLETE", c.Complete, "true", "false"); err != nil {
		return c, err
	}
	return c, nil
}

// run uploads the file and waits for its outcome: exit 0 when processed,
// 1 when refused or failed, 2 for bad settings.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) (err error) {
	defer func() {
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "ghas-import:", err)
		}
	}()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := parseConfig(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 5 * time.Minute}
	st, err := upload(ctx, client, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "import %s %s (%d results)\n", st.Import, st.Status, st.Results)
	if cfg.Wait <= 0 {
		return nil
	}
	return wait(ctx, client, cfg, st.Import, stdout, stderr)
}

type answer struct {
	Import  string `json:"import"`
	Status  string `json:"status"`
	Results int    `json:"results"`
	Error   string `json:"error"`
	Line    int    `json:"line"`
}

func upload(ctx context.Context, client *http.Client, cfg importConfig) (answer, error) {
	data, err := os.ReadFile(cfg.File)
	if err != nil {
		return answer{}, fmt.Errorf("read %s: %w", cfg.File, err)
	}
	contentType := "application/sarif+json"
	if cfg.Format != imports.FormatSARIF {
		contentType = "text/csv"
	}
	q := url.Values{"repository": {cfg.Repository}, "format": {cfg.Format}, "complete": {cfg.Complete}}
	for k, v := range map[string]string{"tool": cfg.Tool, "ref": cfg.Ref, "commit": cfg.Commit, "category": cfg.Category, "scanned_at": cfg.ScannedAt} {
		if v != "" {
			q.Set(k, v)
		}
	}
	body := data
	if cfg.Gzip {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = zw.Write(data) // a bytes.Buffer does not fail
		_ = zw.Close()
		body = b.Bytes()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(cfg.URL, "/")+imports.Path+"?"+q.Encode(), bytes.NewReader(body))
	if err != nil {
		return answer{}, fmt.Errorf("upload: %w", err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+cfg.Token)
	if cfg.Gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	var a answer
	code, err := do(client, req, &a)
	if err != nil {
		return answer{}, fmt.Errorf("upload: %w", err)
	}
	if code != http.StatusAccepted {
		if a.Line > 0 {
			return answer{}, fmt.Errorf("upload refused (%d): line %d: %s", code, a.Line, a.Error)
		}
		return answer{}, fmt.Errorf("upload refused (%d): %s", code, a.Error)
	}
	return a, nil
}

func do(client *http.Client, req *http.Request, v any) (int, error) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil && resp.StatusCode < 300 {
		return resp.StatusCode, fmt.Errorf("decode answer: %w", err)
	}
	return resp.StatusCode, nil
}

// errPending is a poll's answer while the import is neither processed nor
// failed.
var errPending = errors.New("import pending")

// wait polls GET /imports/{id} until the import is processed or failed,
// rewriting one progress line on stderr; polls are 200 ms apart at first,
// then twice as far each time up to 2 s.
func wait(ctx context.Context, client *http.Client, cfg importConfig, id string, stdout, stderr io.Writer) error {
	start := time.Now()
	deadline := start.Add(cfg.Wait)
	poll := func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(cfg.URL, "/")+imports.Path+"/"+id, nil)
		if err != nil {
			return retry.Permanent(err)
		}
		req.Header.Set("Authorization", "Bearer "+cfg.Token)
		var st imports.Status
		code, err := do(client, req, &st)
		switch {
		case err != nil:
			fmt.Fprintf(stderr, "\rwaiting for import %s: %v", id, err)
		case code == http.StatusOK && st.Status == imports.StatusProcessed:
			fmt.Fprintf(stderr, "\r\033[K")
			fmt.Fprintf(stdout, "import %s processed: %d results: %d new, %d changed, %d unchanged, %d fixed\n",
				id, st.Results, st.Findings.New, st.Findings.Changed, st.Findings.Unchanged, st.Findings.Fixed)
			return nil
		case code == http.StatusOK && st.Status == imports.StatusFailed:
			fmt.Fprintf(stderr, "\r\033[K")
			return retry.Permanent(fmt.Errorf("import %s failed: %s", id, st.Error))
		default:
			fmt.Fprintf(stderr, "\rimport %s: %s, %s", id, orDefault(st.Status, "waiting"), time.Since(start).Round(time.Second))
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(stderr)
			return retry.Permanent(fmt.Errorf("import %s not processed within %s (it goes on; GET %s/%s)", id, cfg.Wait, imports.Path, id))
		}
		return errPending
	}
	err := retry.Restart(ctx, retry.Policy{Initial: 200 * time.Millisecond, Max: 2 * time.Second}, poll, nil)
	if err != nil && ctx.Err() != nil {
		fmt.Fprintln(stderr)
		return ctx.Err()
	}
	return err
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
