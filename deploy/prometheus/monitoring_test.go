// Package prometheus_test checks the monitoring shipped in deploy/: the
// alert rules of this folder and the Grafana dashboard of deploy/grafana
// are valid (YAML read without a library, JSON), say what an operator
// needs, and name only metrics the binaries export — read from each real
// binary's /metrics. It has no production code.
package prometheus_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/proc"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
	"github.com/ghas-relay/ghas-relay/internal/yamldoc"
)

// rule is one alerting rule of rules.yaml.
type rule struct {
	alert, expr, dur string
	labels, notes    map[string]any
}

func readRules(t *testing.T) []rule {
	t.Helper()
	b, err := os.ReadFile("rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := yamldoc.Parse(string(b))
	if err != nil || len(docs) != 1 {
		t.Fatalf("rules.yaml: %v (%d documents)", err, len(docs))
	}
	var out []rule
	groups, _ := docs[0].(map[string]any)["groups"].([]any)
	if len(groups) == 0 {
		t.Fatal("rules.yaml: no groups")
	}
	for _, g := range groups {
		gm, _ := g.(map[string]any)
		if name, _ := gm["name"].(string); name == "" {
			t.Error("rules.yaml: a group without a name")
		}
		rules, _ := gm["rules"].([]any)
		for i, r := range rules {
			rm, _ := r.(map[string]any)
			var x rule
			x.alert, _ = rm["alert"].(string)
			x.expr, _ = rm["expr"].(string)
			x.dur, _ = rm["for"].(string)
			x.labels, _ = rm["labels"].(map[string]any)
			x.notes, _ = rm["annotations"].(map[string]any)
			for k := range rm {
				if !slices.Contains([]string{"alert", "expr", "for", "labels", "annotations"}, k) {
					t.Errorf("rules.yaml: rule %d (%s): unknown field %q", i+1, x.alert, k)
				}
			}
			out = append(out, x)
		}
	}
	return out
}

// dashboardExprs are the queries of every panel of the dashboard, by
// panel title.
func dashboardExprs(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "grafana", "ghas-relay.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title, UID string
		Panels     []struct {
			Type, Title string
			GridPos     *struct{ H, W, X, Y int }      `json:"gridPos"`
			Targets     []struct{ Expr, RefID string } `json:"targets"`
		}
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("ghas-relay.json: %v", err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		t.Fatal("ghas-relay.json: no title, uid or panels")
	}
	out := map[string][]string{}
	for _, p := range d.Panels {
		if p.GridPos == nil || p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: no place on the 24-column grid", p.Title)
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q: an empty query", p.Title)
			}
			out[p.Title] = append(out[p.Title], tg.Expr)
		}
	}
	return out
}

// metricName finds the names of ghas-relay metrics in a query.
var metricName = regexp.MustCompile(`\bghas_[a-z0-9_]+\b`)

// unknownMetrics are the ghas-relay metric names in expr no binary
// exports (a histogram's _bucket, _sum and _count series count as its).
func unknownMetrics(expr string, exported map[string]string) []string {
	var out []string
	for _, m := range metricName.FindAllString(expr, -1) {
		if _, ok := exported[m]; ok {
			continue
		}
		base := m
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(m, suf); ok {
				base = b
			}
		}
		if kind := exported[base]; base != m && kind == "histogram" {
			continue
		}
		out = append(out, m)
	}
	return out
}

// TestRulesAndDashboardAreValid: the rules say what to alert on and how
// bad it is; the dashboard's panels all have queries. No binary runs.
func TestRulesAndDashboardAreValid(t *testing.T) {
	rules := readRules(t)
	names := map[string]bool{}
	for _, r := range rules {
		if r.alert == "" || r.expr == "" {
			t.Errorf("a rule without alert or expr: %+v", r)
		}
		if names[r.alert] {
			t.Errorf("alert %s twice", r.alert)
		}
		names[r.alert] = true
		if r.dur != "" {
			if _, err := time.ParseDuration(r.dur); err != nil {
				t.Errorf("%s: for %q: %v", r.alert, r.dur, err)
			}
		}
		if s, _ := r.labels["severity"].(string); s != "warning" && s != "critical" {
			t.Errorf("%s: severity %q, want warning or critical", r.alert, s)
		}
		if s, _ := r.notes["summary"].(string); s == "" {
			t.Errorf("%s: no summary", r.alert)
		}
		if strings.Count(r.expr, "(") != strings.Count(r.expr, ")") || strings.Count(r.expr, "{") != strings.Count(r.expr, "}") ||
			strings.Count(r.expr, "[") != strings.Count(r.expr, "]") {
			t.Errorf("%s: unbalanced brackets in %s", r.alert, r.expr)
		}
		if len(metricName.FindAllString(r.expr, -1)) == 0 {
			t.Errorf("%s: names no ghas-relay metric", r.alert)
		}
	}
	// What the operators were promised.
	for _, want := range []string{"GhasRelayDeadLettersGrowing", "GhasRelayReconcileFailed", "GhasRelayNoWebhook",
		"GhasRelaySignatureFailures", "GhasRelaySinkFailing", "GhasRelayConsoleBehind"} {
		if !names[want] {
			t.Errorf("no alert %s", want)
		}
	}
	exprs := dashboardExprs(t)
	all := ""
	for _, es := range exprs {
		all += strings.Join(es, "\n") + "\n"
	}
	for _, want := range []string{"ghas_posture_findings", "ghas_posture_open_findings", "ghas_posture_time_to_fix_seconds",
		"ghas_receiver_", "ghas_processor_", "ghas_sink_", "ghas_reconciler_", "ghas_console_lag_seconds"} {
		if !strings.Contains(all, want) {
			t.Errorf("the dashboard shows nothing of %s", want)
		}
	}
}

// The name check bites: a metric no binary exports is reported, a
// histogram's series are not.
func TestUnknownMetricsBites(t *testing.T) {
	exported := map[string]string{"ghas_a_total": "counter", "ghas_b_seconds": "histogram", "ghas_c": "gauge"}
	if got := unknownMetrics(`rate(ghas_a_total[5m]) + ghas_b_seconds_bucket + ghas_c`, exported); len(got) != 0 {
		t.Errorf("known metrics reported: %v", got)
	}
	if got := unknownMetrics(`rate(ghas_a_totals[5m]) + ghas_c_count`, exported); !slices.Equal(got, []string{"ghas_a_totals", "ghas_c_count"}) {
		t.Errorf("unknown metrics: %v", got)
	}
}

// TestEveryMetricIsExported runs the four binaries (the processor with a
// sink and GitHub App credentials, so that it registers every metric) and
// reads their /metrics: every ghas-relay metric the rules and the
// dashboard name is one of them.
func TestEveryMetricIsExported(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs every binary")
	}
	exported := exportedMetrics(t)
	for _, r := range readRules(t) {
		if bad := unknownMetrics(r.expr, exported); len(bad) > 0 {
			t.Errorf("rules.yaml: %s names %v, which no binary exports", r.alert, bad)
		}
	}
	for title, es := range dashboardExprs(t) {
		for _, e := range es {
			if bad := unknownMetrics(e, exported); len(bad) > 0 {
				t.Errorf("ghas-relay.json: panel %q names %v, which no binary exports", title, bad)
			}
		}
	}
}

// exportedMetrics starts each binary against an in-process JetStream and
// a fake GitHub and returns the metric families of their /metrics, by
// name, with their type.
func exportedMetrics(t *testing.T) map[string]string {
	t.Helper()
	bin := t.TempDir()
	if err := proc.Build(t.Context(), filepath.Join("..", ".."), bin, nil, "./cmd/receiver", "./cmd/processor", "./cmd/reconciler", "./cmd/console"); err != nil {
		t.Fatal(err)
	}
	ns := streamtest.Run(t)
	_, js := ns.Connect()
	if _, err := stream.Apply(t.Context(), js, stream.Layout{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	gh := ghtest.New(t, ghtest.Options{})
	key := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(key, gh.PrivateKeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	app := []string{fmt.Sprintf("GITHUB_APP_ID=%d", gh.AppID()), "GITHUB_APP_PRIVATE_KEY_FILE=" + key, "GITHUB_API_URL=" + gh.URL()}
	common := []string{"NATS_URL=" + ns.URL(), "LOG_LEVEL=error", "PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	binaries := map[string][]string{
		"receiver":   {"GITHUB_WEBHOOK_SECRET=s"},
		"processor":  append([]string{"SINK_URL=http://127.0.0.1:1/findings"}, app...),
		"reconciler": app,
		"console":    nil,
	}
	out := map[string]string{}
	for name, env := range binaries {
		n := 1
		if name == "receiver" || name == "console" {
			n = 2
		}
		p, addrs, err := proc.StartOnFreeAddrs(t.Context(), n, func(a []string) proc.Spec {
			e := append(append(append([]string{}, common...), env...), "ADMIN_ADDR="+a[n-1])
			switch name {
			case "receiver":
				e = append(e, "LISTEN_ADDR="+a[0])
			case "console":
				e = append(e, "CONSOLE_ADDR="+a[0])
			}
			return proc.Spec{Name: name, Path: filepath.Join(bin, name), BaseEnv: []string{}, Env: e, Ready: proc.HTTPReady("http://" + a[n-1] + "/readyz")}
		})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(func() { p.Stop(10 * time.Second) })
		resp, err := http.Get("http://" + addrs[n-1] + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
				out[f[2]] = f[3]
			}
		}
		resp.Body.Close()
	}
	for _, want := range []string{"ghas_receiver_deliveries_total", "ghas_processor_events_total", "ghas_sink_requests_total", "ghas_reconciler_runs_total", "ghas_posture_findings", "ghas_console_lag_seconds"} {
		if out[want] == "" {
			t.Fatalf("no binary exports %s: %v", want, out)
		}
	}
	return out
}
