package state

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

// TestNoRevisionReplacedBeforeCopied: while GHAS_FINDINGS's source is
// stalled, a key written ten times more does not lose revisions to the
// bucket's history of 8: the second write waits until the source copies
// the first, and once the source is back every revision has its message.
// (The random-fault test's seeds 7008, 7011 and 7026: revisions replaced 8
// times before the source, behind by some 300 writes, copied them.)
func TestNoRevisionReplacedBeforeCopied(t *testing.T) {
	_, js := streamtest.Run(t).Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, stream.FindingsBucket)
	if err != nil {
		t.Fatal(err)
	}
	s := New(js, kv, 16)
	const k = "sast.1.1"
	put := func(i int) error {
		d := doc(k, "ACTIVE", fmt.Sprintf("2026-01-01T00:00:%02dZ", i), "webhook")
		_, err := s.Apply(ctx, k, func(*finding.Document, uint64) (*finding.Document, error) { return d, nil })
		return err
	}
	if err := put(0); err != nil {
		t.Fatal(err)
	}
	caughtUp := func() {
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if ok, _ := stream.FindingsCaughtUp(ctx, js); ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("GHAS_FINDINGS did not catch up")
			}
		}
	}
	caughtUp()

	// The source stalls: GHAS_FINDINGS without it.
	fs, err := js.Stream(ctx, stream.FindingsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := fs.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.Config
	sources := cfg.Sources
	cfg.Sources = nil
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 10)
	errs := make(chan error, 1)
	go func() {
		for i := 1; i <= 10; i++ {
			if err := put(i); err != nil {
				errs <- err
				return
			}
			done <- i
		}
		close(done)
	}()
	time.Sleep(1500 * time.Millisecond)
	if n := len(done); n > 1 {
		t.Errorf("%d writes replaced revisions not yet copied while the source stalled; want 1 (the copied one)", n)
	}
	cfg.Sources = sources
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	for range done {
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	caughtUp()

	// Every revision of the key has its message.
	hist, err := kv.History(ctx, k, jetstream.MetaOnly())
	if err != nil {
		t.Fatal(err)
	}
	last := hist[len(hist)-1].Revision()
	copied := map[uint64]bool{}
	cons, err := js.OrderedConsumer(ctx, stream.FindingsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{stream.FindingsPrefix + ">"}, HeadersOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	for len(copied) < 11 {
		m, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			break
		}
		f := strings.Fields(m.Headers().Get("Nats-Stream-Source"))
		if n, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			copied[n] = true
		}
	}
	if len(copied) != 11 || !copied[last] {
		t.Errorf("GHAS_FINDINGS holds %d of the key's 11 revisions (the last, %d: %v)", len(copied), last, copied[last])
	}
}
