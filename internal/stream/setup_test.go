package stream_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

// TestApplyReports: on an empty server Apply creates every stream and
// bucket; again it changes nothing (the comparison agrees with what the
// server stored); a changed limit is an update of that stream only; with
// CreateOnly a difference is reported and left alone.
func TestApplyReports(t *testing.T) {
	srv := streamtest.Run(t)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	l := stream.Layout{Replicas: 1}
	want := len(l.BucketConfigs()) + len(l.StreamConfigs())
	for i, action := range []string{stream.ActionCreated, stream.ActionUnchanged} {
		changes, err := stream.Apply(ctx, js, l)
		if err != nil {
			t.Fatalf("apply #%d: %v", i+1, err)
		}
		if len(changes) != want {
			t.Fatalf("apply #%d: %d changes, want %d: %v", i+1, len(changes), want, changes)
		}
		for _, c := range changes {
			if c.Action != action {
				t.Errorf("apply #%d: %v, want %s", i+1, c, action)
			}
		}
	}

	changed := stream.Layout{Replicas: 1, EventsMaxBytes: 1 << 30}
	changes, err := stream.Apply(ctx, js, stream.Layout{Replicas: 1, EventsMaxBytes: 1 << 30, CreateOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := find(changes, stream.EventsStream); got.Action != stream.ActionDiffers || !slices.Equal(got.Fields, []string{"max bytes"}) || len(got.Lacks) != 0 {
		t.Errorf("create-only over another limit: %v, want differs (max bytes)", got)
	}
	changes, err = stream.Apply(ctx, js, changed)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		want := stream.ActionUnchanged
		if c.Name == stream.EventsStream {
			want = stream.ActionUpdated
		}
		if c.Action != want {
			t.Errorf("changed max bytes: %v, want %s", c, want)
		}
	}
	if s := find(changes, stream.EventsStream).String(); s != "updated stream GHAS_EVENTS (max bytes)" {
		t.Errorf("change line %q", s)
	}
}

func find(changes []stream.Change, name string) stream.Change {
	for _, c := range changes {
		if c.Name == name {
			return c
		}
	}
	return stream.Change{}
}

// TestApplyUpgradeLacks: a GHAS_EVENTS of an older version (no
// ghas.import.>) lacks a subject, which CreateOnly reports and Apply
// adds; a stream with a subject more than the layout's lacks nothing.
func TestApplyUpgradeLacks(t *testing.T) {
	srv := streamtest.Run(t)
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l := stream.Layout{Replicas: 1}
	old := l.StreamConfigs()[0]
	old.Subjects = slices.DeleteFunc(slices.Clone(old.Subjects), func(s string) bool { return strings.HasPrefix(s, stream.ImportPrefix) })
	if _, err := js.CreateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	changes, err := stream.Apply(ctx, js, stream.Layout{Replicas: 1, CreateOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := find(changes, stream.EventsStream); got.Action != stream.ActionDiffers || !slices.Equal(got.Lacks, []string{"subject ghas.import.>"}) {
		t.Errorf("older GHAS_EVENTS: %+v, want differs lacking subject ghas.import.>", got)
	}
	changes, err = stream.Apply(ctx, js, l)
	if err != nil {
		t.Fatal(err)
	}
	if got := find(changes, stream.EventsStream); got.Action != stream.ActionUpdated || !slices.Equal(got.Fields, []string{"subjects"}) {
		t.Errorf("upgrade: %v, want updated (subjects)", got)
	}
	// A newer version's extra subject: different, but nothing lacks.
	newer := l.StreamConfigs()[0]
	newer.Subjects = append(slices.Clone(newer.Subjects), "ghas.future.>")
	if _, err := js.UpdateStream(ctx, newer); err != nil {
		t.Fatal(err)
	}
	changes, err = stream.Apply(ctx, js, stream.Layout{Replicas: 1, CreateOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := find(changes, stream.EventsStream); got.Action != stream.ActionDiffers || len(got.Lacks) != 0 {
		t.Errorf("newer GHAS_EVENTS: %+v, want differs lacking nothing", got)
	}
}
