package stream_test

import (
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/logging/loggingtest"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// authServer starts a JetStream server with two users: "admin" (every
// right) and "app", which may read stream info but never create or update
// a stream, as the long-running users of deploy/nats.
func authServer(t *testing.T) string {
	t.Helper()
	app := &server.Permissions{
		Publish: &server.SubjectPermission{
			Allow: []string{"$JS.API.INFO", "$JS.API.STREAM.INFO.>"},
			Deny:  []string{"$JS.API.STREAM.CREATE.>", "$JS.API.STREAM.UPDATE.>"},
		},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
		Users: []*server.User{{Username: "admin", Password: "admin"}, {Username: "app", Password: "app", Permissions: app}},
	})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	return "nats://" + srv.Addr().String()
}

// userJS connects as user and counts the permission violations the server
// reports to it.
func userJS(t *testing.T, url, user string, refused *atomic.Int32) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url, nats.UserInfo(user, user), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) && refused != nil {
			refused.Add(1)
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// TestWaitEnsureWithoutRightsGivesUp: a binary whose user may not create
// the layout finds it missing, is refused once, says once that it waits
// for processor -setup, stops asking, and gives up after its start timeout
// naming NATS_START_TIMEOUT and what is missing.
func TestWaitEnsureWithoutRightsGivesUp(t *testing.T) {
	url := authServer(t)
	var refused atomic.Int32
	js := userJS(t, url, "app", &refused)
	var log loggingtest.Buffer
	start := time.Now()
	err := stream.WaitEnsure(t.Context(), slog.New(slog.NewTextHandler(&log, nil)), js, stream.Layout{Replicas: 1, CreateOnly: true, StartTimeout: 2 * time.Second})
	if err == nil {
		t.Fatal("WaitEnsure succeeded without a layout")
	}
	if el := time.Since(start); el > 8*time.Second {
		t.Errorf("gave up after %s, want about the 2 s start timeout", el)
	}
	for _, want := range []string{"NATS_START_TIMEOUT", "bucket ghas_findings missing", "stream GHAS_EVENTS missing", "may not create"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if !errors.Is(err, stream.ErrLayoutNotReady) {
		t.Errorf("error %v is not ErrLayoutNotReady", err)
	}
	if n := strings.Count(log.String(), "waiting for the nats layout: run processor -setup"); n != 1 {
		t.Errorf("said %d times that it waits, want once within 30 s:\n%s", n, log.String())
	}
	if n := refused.Load(); n != 1 {
		t.Errorf("the server refused %d requests, want 1 (no more asking after a refusal)", n)
	}
}

// TestWaitEnsureWaitsForSetup: the binary waits, and starts once the setup
// identity has created the layout.
func TestWaitEnsureWaitsForSetup(t *testing.T) {
	url := authServer(t)
	js, admin := userJS(t, url, "app", nil), userJS(t, url, "admin", nil)
	done := make(chan error, 1)
	go func() {
		done <- stream.WaitEnsure(t.Context(), slog.New(slog.DiscardHandler), js, stream.Layout{Replicas: 1, CreateOnly: true, StartTimeout: 30 * time.Second})
	}()
	time.Sleep(time.Second)
	select {
	case err := <-done:
		t.Fatalf("WaitEnsure returned before the layout existed: %v", err)
	default:
	}
	if _, err := stream.Apply(t.Context(), admin, stream.Layout{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("WaitEnsure after the setup: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("WaitEnsure still waits after the setup")
	}
}

// TestWaitEnsureOlderLayout: a processor (not CreateOnly) whose user may
// not update works with a layout whose limits differ, warning that
// processor -setup should run; one whose stream lacks a subject it needs
// waits and gives up naming it. Neither waits out a refused request.
func TestWaitEnsureOlderLayout(t *testing.T) {
	url := authServer(t)
	js, admin := userJS(t, url, "app", nil), userJS(t, url, "admin", nil)
	ctx := t.Context()
	if _, err := stream.Apply(ctx, admin, stream.Layout{Replicas: 1, EventsMaxBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	var log loggingtest.Buffer
	start := time.Now()
	if err := stream.WaitEnsure(ctx, slog.New(slog.NewTextHandler(&log, nil)), js, stream.Layout{Replicas: 1, StartTimeout: 30 * time.Second}); err != nil {
		t.Fatalf("other limits: %v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("took %s: a refused update was waited out", el)
	}
	if out := log.String(); !strings.Contains(out, "run processor -setup") || !strings.Contains(out, "stream GHAS_EVENTS (max bytes)") {
		t.Errorf("no warning naming the difference:\n%s", out)
	}
	s, err := admin.Stream(ctx, stream.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxBytes; got != 1<<20 {
		t.Errorf("MaxBytes changed to %d", got)
	}

	// An older GHAS_EVENTS without ghas.import.>.
	old := stream.Layout{Replicas: 1}.StreamConfigs()[0]
	old.Subjects = slices.DeleteFunc(slices.Clone(old.Subjects), func(s string) bool { return strings.HasPrefix(s, stream.ImportPrefix) })
	if _, err := admin.UpdateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	err = stream.WaitEnsure(ctx, slog.New(slog.DiscardHandler), js, stream.Layout{Replicas: 1, StartTimeout: 2 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "stream GHAS_EVENTS lacks subject ghas.import.>") || !strings.Contains(err.Error(), "NATS_START_TIMEOUT") {
		t.Errorf("older stream: %v, want a give-up naming the missing subject", err)
	}
}

// TestWaitEnsureLookOnly: a binary that only reads (LookOnly) creates
// nothing even where its user may, says so when it gives up, and starts
// once the layout exists.
func TestWaitEnsureLookOnly(t *testing.T) {
	url := authServer(t)
	admin := userJS(t, url, "admin", nil)
	err := stream.WaitEnsure(t.Context(), slog.New(slog.DiscardHandler), admin, stream.Layout{Replicas: 1, CreateOnly: true, LookOnly: true, StartTimeout: time.Second})
	if !errors.Is(err, stream.ErrLayoutNotReady) || !strings.Contains(err.Error(), "only reads the layout") {
		t.Fatalf("LookOnly on an empty server: %v, want a give-up saying it only reads", err)
	}
	if names := admin.StreamNames(t.Context()); names.Err() == nil {
		for n := range names.Name() {
			t.Errorf("LookOnly created stream %s", n)
		}
	}
	if _, err := stream.Apply(t.Context(), admin, stream.Layout{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	if err := stream.WaitEnsure(t.Context(), slog.New(slog.DiscardHandler), admin, stream.Layout{Replicas: 1, CreateOnly: true, LookOnly: true, StartTimeout: 10 * time.Second}); err != nil {
		t.Fatalf("LookOnly once the layout exists: %v", err)
	}
}
