package sink

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

func TestClaimsOrderVersionsAcrossHolders(t *testing.T) {
	srv := streamtest.Run(t)
	_, js := srv.Connect()
	ctx := context.Background()
	kv, err := js.KeyValue(ctx, stream.StateBucket)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	a := &claims{kv: kv, prefix: "sink.test.", holder: "a", lease: time.Minute, now: clock}
	b := &claims{kv: kv, prefix: "sink.test.", holder: "b", lease: time.Minute, now: clock}
	const key = "sast.1.1"

	expect := func(cl *claims, seq uint64, want verdict) claim {
		t.Helper()
		c, v, err := cl.acquire(ctx, key, seq)
		if err != nil {
			t.Fatalf("%s acquire %d: %v", cl.holder, seq, err)
		}
		if v != want {
			t.Fatalf("%s acquire %d = %v, want %v", cl.holder, seq, v, want)
		}
		return c
	}

	c5 := expect(a, 5, verdictDeliver)
	expect(b, 6, verdictBusy)       // a newer version waits for the older in flight
	expect(b, 5, verdictBusy)       // the same message, moved to b, waits for a's lease
	expect(b, 4, verdictSuperseded) // an older version is never sent
	if ok, err := a.renew(ctx, &c5); !ok || err != nil {
		t.Fatalf("renew: %v %v", ok, err)
	}
	if err := a.done(ctx, c5); err != nil {
		t.Fatal(err)
	}
	expect(b, 5, verdictDelivered) // ack was lost: not sent twice
	c6 := expect(b, 6, verdictDeliver)

	// b dies holding 6; once its lease runs out, a takes over.
	expect(a, 7, verdictBusy)
	now = now.Add(61 * time.Second)
	c7 := expect(a, 7, verdictDeliver)
	if ok, err := b.renew(ctx, &c6); ok || err != nil {
		t.Fatalf("renew of a lost claim = %v, %v; want false, nil", ok, err)
	}
	expect(b, 6, verdictSuperseded)

	// A released claim frees the key at once, and stays a watermark.
	if err := a.release(ctx, c7); err != nil {
		t.Fatal(err)
	}
	expect(b, 6, verdictSuperseded)
	c8 := expect(b, 8, verdictDeliver)
	if err := b.done(ctx, c8); err != nil {
		t.Fatal(err)
	}
	expect(a, 7, verdictSuperseded)
}

func TestClaimKeys(t *testing.T) {
	c := &claims{prefix: "sink.ghas-sink."}
	if got := c.kvKey("sast.1296269.42"); got != "sink.ghas-sink.sast.1296269.42" {
		t.Errorf("plain key = %q", got)
	}
	for _, k := range []string{"a b", "x.*.y", "a..b", ".a", "a.", "é", strings.Repeat("a", 300)} {
		got := c.kvKey(k)
		if !strings.HasPrefix(got, "sink.ghas-sink.h.") || len(got) != len("sink.ghas-sink.h.")+64 {
			t.Errorf("kvKey(%q) = %q, want a hashed key", k, got)
		}
	}
}

func TestClassify(t *testing.T) {
	for status, want := range map[int]class{
		200: classDelivered, 201: classDelivered, 204: classDelivered,
		408: classTransient, 429: classTransient, 500: classTransient, 502: classTransient, 503: classTransient,
		302: classTransient, 100: classTransient,
		400: classPermanent, 401: classPermanent, 403: classPermanent, 404: classPermanent, 409: classPermanent, 422: classPermanent,
	} {
		if got := classify(status); got != want {
			t.Errorf("classify(%d) = %v, want %v", status, got, want)
		}
	}
}
