package streamtest

import (
	"testing"
	"time"
)

// WaitFor polls cond every 20 ms until it holds, and fails the test when
// within passes first. JetStream's effects are asynchronous (a consumer
// drained, a revision sourced into a stream, a server back after a
// restart): tests wait for them with a deadline, never for ever.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
