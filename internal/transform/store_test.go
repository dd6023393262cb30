package transform

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

func productName(t *testing.T, m *Maps) string {
	t.Helper()
	d, err := m.Alert(Event{Name: EventCodeScanning, Payload: readFile(t, repoRoot+"/webhooks/code_scanning_alert/created.payload.json")}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	return d.VendorProductName
}

// TestWatcher: seeded defaults load; a changed map takes effect without a
// restart; an invalid map is rejected and the last good one stays; a
// deleted key falls back to the default; Seed never overwrites.
func TestWatcher(t *testing.T) {
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
	for _, ds := range Datasets() {
		e, err := kv.Get(ctx, ds)
		if err != nil || !bytes.Equal(e.Value(), DefaultJSON(ds)) {
			t.Fatalf("seeded %s: %v", ds, err)
		}
	}

	var logs bytes.Buffer
	w := NewWatcher(slog.New(slog.NewTextHandler(&logs, nil)), kv)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	if err := w.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if got := productName(t, w.Current()); got != "GitHub Code Security" {
		t.Fatalf("initial product %q", got)
	}

	// A changed map takes effect without a restart.
	changed := strings.Replace(string(DefaultJSON("sast")), `"value": "GitHub Code Security"`, `"value": "ACME CodeQL"`, 1)
	rev, err := kv.Put(ctx, "sast", []byte(changed))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WaitRevision(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if got := productName(t, w.Current()); got != "ACME CodeQL" {
		t.Fatalf("after update: product %q", got)
	}

	// An invalid map is rejected; the last good one stays.
	bad := strings.Replace(changed, `"function": "cweFromTags"`, `"function": "noSuchFunction"`, 1)
	if rev, err = kv.Put(ctx, "sast", []byte(bad)); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitRevision(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if got := productName(t, w.Current()); got != "ACME CodeQL" {
		t.Fatalf("after invalid update: product %q", got)
	}
	if !strings.Contains(logs.String(), "noSuchFunction") {
		t.Errorf("rejection not logged: %s", logs.String())
	}
	if rev, err = kv.Put(ctx, "sast", []byte(`not json`)); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitRevision(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if got := productName(t, w.Current()); got != "ACME CodeQL" {
		t.Fatalf("after garbage: product %q", got)
	}

	// Seed leaves the operator's map alone.
	if err := Seed(ctx, kv); err != nil {
		t.Fatal(err)
	}
	if e, _ := kv.Get(ctx, "sast"); string(e.Value()) != "not json" {
		t.Errorf("Seed overwrote an existing key")
	}

	// A watcher started now has never seen a good sast map in the
	// bucket, so it keeps the default.
	w2 := NewWatcher(slog.New(slog.NewTextHandler(io.Discard, nil)), kv)
	go func() { _ = w2.Run(runCtx) }()
	if err := w2.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if got := productName(t, w2.Current()); got != "GitHub Code Security" {
		t.Errorf("fresh watcher with an invalid stored map: product %q", got)
	}

	// Deleting the key returns to the default.
	if err := kv.Delete(ctx, "sast"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for productName(t, w.Current()) != "GitHub Code Security" {
		if time.Now().After(deadline) {
			t.Fatal("delete not applied")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
