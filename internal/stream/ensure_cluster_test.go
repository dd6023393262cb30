package stream_test

import (
	"context"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

// TestEnsureAgainOnCluster: on a 3-node cluster, a second Apply of the
// same layout finds nothing to change, Ensure succeeds with and without
// CreateOnly, and a changed limit is applied.
func TestEnsureAgainOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	c := streamtest.RunCluster(t, 3)
	_, js := c.Connect(3) // ensures the layout at R3
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// What a cluster stored compares equal to the layout: nothing to update.
	changes, err := stream.Apply(ctx, js, stream.Layout{Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.Action != stream.ActionUnchanged {
			t.Errorf("second apply on the cluster: %v", c)
		}
	}
	for _, l := range []stream.Layout{{Replicas: 3, CreateOnly: true}, {Replicas: 3}, {Replicas: 3, EventsMaxBytes: 1 << 30}} {
		if err := stream.Ensure(ctx, js, l); err != nil {
			t.Fatalf("Ensure %+v: %v", l, err)
		}
	}
	s, err := js.Stream(ctx, stream.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxBytes; got != 1<<30 {
		t.Fatalf("MaxBytes = %d, want %d", got, 1<<30)
	}
}
