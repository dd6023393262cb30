package transform

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/priority"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

// TestDefaultPriorityTable: the embedded table is the documented default.
func TestDefaultPriorityTable(t *testing.T) {
	pt := Defaults().Priority()
	if pt == nil {
		t.Fatal("no default priority table")
	}
	want := map[string]int{"CRITICAL": 90, "HIGH": 70, "MEDIUM": 45, "LOW": 20, "INFO": 5}
	for w, p := range want {
		if pt.Severity[w] != p {
			t.Errorf("severity %s = %d, want %d", w, pt.Severity[w], p)
		}
	}
	if pt.NumericScoreMultiplier != 10 || len(pt.EPSS) != 3 || pt.EPSS[0] != (priority.Band{AtLeast: 0.5, Points: 15}) ||
		pt.EPSS[1] != (priority.Band{AtLeast: 0.1, Points: 8}) || pt.EPSS[2] != (priority.Band{AtLeast: 0.01, Points: 3}) {
		t.Errorf("numeric multiplier %v, epss %+v", pt.NumericScoreMultiplier, pt.EPSS)
	}
	checks := []struct {
		name      string
		got, want int
	}{
		{"secretValidity.active", pt.SecretValidity["active"], 20},
		{"secretValidity.inactive", pt.SecretValidity["inactive"], -30},
		{"publiclyLeaked", pt.PubliclyLeaked, 10},
		{"exposure.public", pt.Exposure["public"], 10},
		{"exposure.archived", pt.Exposure["archived"], -20},
		{"criticality.critical", pt.Criticality["critical"], 15},
		{"criticality.high", pt.Criticality["high"], 8},
		{"criticality.medium", pt.Criticality["medium"], 0},
		{"criticality.low", pt.Criticality["low"], -10},
		{"corroborated", pt.Corroborated, 5},
		{"dependency.development", pt.Dependency["development"], -15},
		{"codeContext.points", pt.CodeContext.Points, -15},
		{"secretReach.multiRepo", pt.SecretReach.MultiRepo, 5},
		{"secretReach.pushProtectionBypassed", pt.SecretReach.PushProtectionBypassed, 5},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if got := strings.Join(pt.CodeContext.Classifications, ","); got != "test,library,generated,documentation" {
		t.Errorf("codeContext.classifications %s", got)
	}
}

// TestWatcherPriority: the priority table is seeded, a change takes effect
// without a restart, a bad table is refused with the reason (logged and
// counted) while the last good one stays, and a deleted key returns to
// the default.
func TestWatcherPriority(t *testing.T) {
	srv := streamtest.Run(t)
	_, js := srv.Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, stream.MapsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := Seed(ctx, kv); err != nil {
		t.Fatal(err)
	}
	if e, err := kv.Get(ctx, PriorityKey); err != nil || !bytes.Equal(e.Value(), DefaultPriorityJSON()) {
		t.Fatalf("seeded %s: %v", PriorityKey, err)
	}
	var logs bytes.Buffer
	w := NewWatcher(slog.New(slog.NewTextHandler(&logs, nil)), kv)
	reg := metrics.NewRegistry()
	w.Register(reg)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = w.Run(runCtx) }()
	if err := w.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	put := func(v string) {
		t.Helper()
		rev, err := kv.Put(ctx, PriorityKey, []byte(v))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WaitRevision(ctx, rev); err != nil {
			t.Fatal(err)
		}
	}
	changed := strings.Replace(string(DefaultPriorityJSON()), `"CRITICAL": 90`, `"CRITICAL": 95`, 1)
	put(changed)
	if got := w.Current().Priority().Severity["CRITICAL"]; got != 95 {
		t.Fatalf("after update: CRITICAL %d", got)
	}
	before := w.Changed()
	bad := strings.Replace(changed, `{"atLeast": 0.1, "points": 8}`, `{"atLeast": 0.9, "points": 8}`, 1)
	put(bad)
	select {
	case <-before:
	default:
		t.Error("Changed not closed by a processed update")
	}
	if got := w.Current().Priority().Severity["CRITICAL"]; got != 95 {
		t.Fatalf("after a bad table: CRITICAL %d, want the last good 95", got)
	}
	if !strings.Contains(logs.String(), "map rejected") || !strings.Contains(logs.String(), "epss[1].atLeast") {
		t.Errorf("rejection not logged with its reason: %s", logs.String())
	}
	if got := w.rejected.Value(PriorityKey); got != 1 {
		t.Errorf("ghas_maps_rejected_total{map=priority} = %d, want 1", got)
	}
	var out bytes.Buffer
	if _, err := reg.WriteTo(&out); err != nil || !strings.Contains(out.String(), `ghas_maps_rejected_total{map="priority"} 1`) {
		t.Errorf("metrics: %v\n%s", err, out.String())
	}
	put(`{"severity": {"CRITICAL": 90}, "secretValidity": {"revoked": -30}}`)
	if got := w.rejected.Value(PriorityKey); got != 2 {
		t.Errorf("second bad table: rejected %d", got)
	}
	if err := kv.Delete(ctx, PriorityKey); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for w.Current().Priority().Severity["CRITICAL"] != 90 {
		if time.Now().After(deadline) {
			t.Fatal("delete not applied")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
