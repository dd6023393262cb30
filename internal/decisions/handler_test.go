package decisions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/decisions"
	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
	"github.com/ghas-relay/ghas-relay/internal/tokens"
)

// Tokens of the tests: an unscoped one and one for octo-org/web-*.
const tokenFile = "admin tok-admin\nteam-web tok-web octo-org/web-*\n"

type env struct {
	t   *testing.T
	srv *streamtest.Server
	js  jetstream.JetStream
	ts  *httptest.Server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := streamtest.Run(t)
	_, js := srv.Connect()
	set, err := tokens.Parse(tokenFile, true)
	if err != nil {
		t.Fatal(err)
	}
	h := decisions.NewHandler(slog.New(slog.NewTextHandler(io.Discard, nil)), js, decisions.Options{Tokens: set, PublishTimeout: 2 * time.Second})
	ts := httptest.NewServer(decisions.Routes(http.NotFoundHandler(), h))
	t.Cleanup(ts.Close)
	e := &env{t: t, srv: srv, js: js, ts: ts}
	// Two stored findings: one of octo-org/web-shop, one of octo-org/api.
	e.store("sca.11.1", "octo-org/web-shop")
	e.store("sast.22.3", "octo-org/api")
	return e
}

func (e *env) store(key, repo string) {
	e.t.Helper()
	kv, err := e.js.KeyValue(context.Background(), stream.FindingsBucket)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := json.Marshal(finding.Document{FindingKey: key, AssetDetail: finding.AssetDetail{FullName: repo}, Findings: []finding.Finding{{FindingStatus: "ACTIVE"}}})
	if _, err := kv.Put(context.Background(), key, b); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) do(method, path, token string, body []byte) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.ts.URL+path, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (e *env) post(token, body string) (int, map[string]any) {
	e.t.Helper()
	return e.do(http.MethodPost, decisions.Path, token, []byte(body))
}

// events counts the decision messages stored on GHAS_EVENTS.
func (e *env) events() int {
	e.t.Helper()
	s, err := e.js.Stream(context.Background(), stream.EventsStream)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(stream.DecisionPrefix+">"))
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, c := range info.State.Subjects {
		n += int(c)
	}
	return n
}

// TestPostOne: one decision is stored on ghas.decision.<type> before the
// 202 with its id, and its status reads back as accepted with the token's
// name; the message carries the token's globs, never the token.
func TestPostOne(t *testing.T) {
	e := newEnv(t)
	status, body := e.post("tok-web", `{"findingKey":"sca.11.1","decision":"dismiss","reason":"tolerable_risk","comment":"behind the VPN"}`)
	if status != http.StatusAccepted || body["status"] != "accepted" || !decisions.ValidID(fmt.Sprint(body["decision"])) {
		t.Fatalf("%d %v", status, body)
	}
	id := body["decision"].(string)
	s, _ := e.js.Stream(context.Background(), stream.EventsStream)
	m, err := s.GetLastMsgForSubject(context.Background(), stream.DecisionSubject("sca"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := decisions.FromMessage(m.Data)
	if err != nil || d.ID != id || d.By != "team-web" || d.Reason != "tolerable_risk" || d.Scope != "finding" ||
		len(d.Repositories) != 1 || d.Repositories[0] != "octo-org/web-*" || strings.Contains(string(m.Data), "tok-web") {
		t.Errorf("message %s: %+v %v", m.Data, d, err)
	}
	if m.Header.Get(stream.HeaderMsgID) != "decision:"+id {
		t.Errorf("Nats-Msg-Id %q", m.Header.Get(stream.HeaderMsgID))
	}
	status, st := e.do(http.MethodGet, decisions.Path+"/"+id, "tok-web", nil)
	if status != http.StatusOK || st["status"] != "accepted" || st["by"] != "team-web" || st["findingKey"] != "sca.11.1" ||
		st["repository"] != "octo-org/web-shop" || st["decision"] != id {
		t.Errorf("GET: %d %v", status, st)
	}
	if _, hidden := st["sent"]; hidden {
		t.Errorf("the record's progress leaked into the status: %v", st)
	}
}

// TestPostBatch: a batch answers the ids in request order, one message
// each; a batch with one bad entry is refused whole, naming the field
// with its index, and stores nothing.
func TestPostBatch(t *testing.T) {
	e := newEnv(t)
	var items []string
	for i := 0; i < 1000; i++ {
		items = append(items, fmt.Sprintf(`{"findingKey":"sca.11.%d","decision":"dismiss","reason":"no_bandwidth"}`, i+1))
	}
	status, body := e.post("tok-admin", `{"decisions":[`+strings.Join(items, ",")+`]}`)
	ds, _ := body["decisions"].([]any)
	if status != http.StatusAccepted || len(ds) != 1000 {
		t.Fatalf("batch of 1,000: %d, %d answers", status, len(ds))
	}
	seen := map[string]bool{}
	for _, d := range ds {
		m := d.(map[string]any)
		if m["status"] != "accepted" || seen[m["decision"].(string)] {
			t.Fatalf("answer %v", m)
		}
		seen[m["decision"].(string)] = true
	}
	if n := e.events(); n != 1000 {
		t.Errorf("%d messages, want 1000", n)
	}
	items = append(items, items[0])
	if status, body := e.post("tok-admin", `{"decisions":[`+strings.Join(items, ",")+`]}`); status != http.StatusBadRequest || body["field"] != "decisions" {
		t.Errorf("1,001 decisions: %d %v", status, body)
	}
	status, body = e.post("tok-admin", `{"decisions":[
		{"findingKey":"sca.11.1","decision":"dismiss","reason":"inaccurate"},
		{"findingKey":"sast.22.3","decision":"dismiss","reason":"false_positive"},
		{"findingKey":"sast.22.4","decision":"dismiss","reason":"fix_started"}]}`)
	if status != http.StatusBadRequest || body["field"] != "decisions[2].reason" || !strings.Contains(body["error"].(string), "false_positive") {
		t.Errorf("a bad third entry: %d %v", status, body)
	}
	if n := e.events(); n != 1000 {
		t.Errorf("a refused batch stored %d messages", n-1000)
	}
}

// TestPostRefusals: every refusal of the contract with its field.
func TestPostRefusals(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("é", 281)
	for name, c := range map[string]struct {
		token, body string
		status      int
		field       string
	}{
		"no token":                 {"", `{"findingKey":"sca.11.1","decision":"reopen"}`, 401, ""},
		"wrong token":              {"tok-nope", `{"findingKey":"sca.11.1","decision":"reopen"}`, 401, ""},
		"not JSON":                 {"tok-admin", `{"findingKey":`, 400, ""},
		"unknown decision":         {"tok-admin", `{"findingKey":"sca.11.1","decision":"ignore"}`, 400, "decision"},
		"no decision":              {"tok-admin", `{"findingKey":"sca.11.1"}`, 400, "decision"},
		"not a finding key":        {"tok-admin", `{"findingKey":"sca.11","decision":"reopen"}`, 400, "findingKey"},
		"a number for a key":       {"tok-admin", `{"findingKey":7,"decision":"reopen"}`, 400, "findingKey"},
		"unknown field":            {"tok-admin", `{"findingKey":"sca.11.1","decision":"reopen","why":"x"}`, 400, "why"},
		"reason of another type":   {"tok-admin", `{"findingKey":"sast.22.3","decision":"dismiss","reason":"tolerable_risk"}`, 400, "reason"},
		"secret: revoked is fine":  {"tok-admin", `{"findingKey":"secret.22.1","decision":"dismiss","reason":"revoked"}`, 202, ""},
		"sast: revoked is not":     {"tok-admin", `{"findingKey":"sast.22.3","decision":"dismiss","reason":"revoked"}`, 400, "reason"},
		"imported: any reason":     {"tok-admin", `{"findingKey":"sast.22.claude-security.abc","decision":"dismiss","reason":"tolerable_risk"}`, 202, ""},
		"dismiss without reason":   {"tok-admin", `{"findingKey":"sca.11.1","decision":"dismiss"}`, 400, "reason"},
		"reopen with a reason":     {"tok-admin", `{"findingKey":"sca.11.1","decision":"reopen","reason":"inaccurate"}`, 400, "reason"},
		"281-character comment":    {"tok-admin", `{"findingKey":"sca.11.1","decision":"reopen","comment":"` + long + `"}`, 400, "comment"},
		"280-character comment":    {"tok-admin", `{"findingKey":"sca.11.1","decision":"reopen","comment":"` + long[2:] + `"}`, 202, ""},
		"unknown scope":            {"tok-admin", `{"findingKey":"sca.11.1","decision":"reopen","scope":"repository"}`, 400, "scope"},
		"outside the token's glob": {"tok-web", `{"findingKey":"sast.22.3","decision":"reopen"}`, 403, "findingKey"},
		"batch outside the glob":   {"tok-web", `{"decisions":[{"findingKey":"sca.11.1","decision":"reopen"},{"findingKey":"sast.22.3","decision":"reopen"}]}`, 403, "decisions[1].findingKey"},
		"unknown finding, scoped":  {"tok-web", `{"findingKey":"sca.33.1","decision":"reopen"}`, 202, ""},
		"empty batch":              {"tok-admin", `{"decisions":[]}`, 400, "decisions"},
	} {
		status, body := e.post(c.token, c.body)
		if status != c.status || (c.field != "" && body["field"] != c.field) {
			t.Errorf("%s: %d %v, want %d naming %q", name, status, body, c.status, c.field)
		}
	}
	big := `{"findingKey":"sca.11.1","decision":"reopen","comment":"` + strings.Repeat(" ", decisions.MaxBodyBytes) + `"}`
	if status, _ := e.post("tok-admin", big); status != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over 1 MiB: %d, want 413", status)
	}
	if status, _ := e.do(http.MethodGet, decisions.Path, "tok-admin", nil); status != http.StatusMethodNotAllowed {
		t.Errorf("GET /decisions: %d", status)
	}
}

// TestGetScoped: a scoped token reads the decisions on its repositories
// and its own on unknown findings; 404 for an unknown id.
func TestGetScoped(t *testing.T) {
	e := newEnv(t)
	_, a := e.post("tok-admin", `{"findingKey":"sast.22.3","decision":"reopen"}`)
	_, w := e.post("tok-web", `{"findingKey":"sca.11.1","decision":"reopen"}`)
	_, u := e.post("tok-web", `{"findingKey":"sca.33.1","decision":"reopen"}`)
	_, v := e.post("tok-admin", `{"findingKey":"sca.33.2","decision":"reopen"}`)
	for _, c := range []struct {
		token, id string
		want      int
	}{
		{"tok-web", a["decision"].(string), 403},
		{"tok-web", w["decision"].(string), 200},
		{"tok-web", u["decision"].(string), 200},
		{"tok-web", v["decision"].(string), 403},
		{"tok-admin", a["decision"].(string), 200},
		{"tok-admin", u["decision"].(string), 200},
		{"tok-admin", strings.Repeat("0", 32), 404},
		{"tok-admin", "not-an-id", 404},
		{"", a["decision"].(string), 401},
	} {
		if status, body := e.do(http.MethodGet, decisions.Path+"/"+c.id, c.token, nil); status != c.want {
			t.Errorf("GET %s as %s: %d %v, want %d", c.id, c.token, status, body, c.want)
		}
	}
}

// TestUnavailable: without JetStream a decision is not accepted (503);
// without tokens the paths do not exist (404).
func TestUnavailable(t *testing.T) {
	e := newEnv(t)
	e.srv.Shutdown()
	if status, body := e.post("tok-admin", `{"findingKey":"sca.11.1","decision":"reopen"}`); status != http.StatusServiceUnavailable {
		t.Errorf("JetStream down: %d %v", status, body)
	}
	ts := httptest.NewServer(decisions.Routes(http.NotFoundHandler(), decisions.NewHandler(slog.New(slog.DiscardHandler), e.js, decisions.Options{})))
	defer ts.Close()
	resp, err := http.Post(ts.URL+decisions.Path, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("without DECISION_TOKENS: %d, want 404", resp.StatusCode)
	}
}
