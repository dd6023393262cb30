package retry

import (
	"context"
	"errors"
	"math"
	"net/http"
	"slices"
	"testing"
	"time"
)

var errBroken = errors.New("broken")

func TestRestartDoublesUpToMaxWithoutJitter(t *testing.T) {
	var waits []time.Duration
	calls := 0
	err := Restart(t.Context(), Policy{Initial: time.Millisecond, Max: 4 * time.Millisecond}, func(context.Context) error {
		if calls++; calls < 6 {
			return errBroken
		}
		return nil
	}, func(err error, wait time.Duration) {
		if !errors.Is(err, errBroken) {
			t.Errorf("notified with %v", err)
		}
		waits = append(waits, wait)
	})
	if err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	if want := []time.Duration{ms, 2 * ms, 4 * ms, 4 * ms, 4 * ms}; !slices.Equal(waits, want) {
		t.Errorf("waits %v, want %v", waits, want)
	}
}

func TestRestartStops(t *testing.T) {
	p := Policy{Initial: time.Millisecond, Max: 2 * time.Millisecond}
	t.Run("permanent", func(t *testing.T) {
		calls := 0
		err := Restart(t.Context(), p, func(context.Context) error { calls++; return Permanent(errBroken) }, nil)
		if !errors.Is(err, errBroken) || calls != 1 {
			t.Errorf("err %v after %d calls, want errBroken after 1", err, calls)
		}
	})
	t.Run("context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		calls := 0
		err := Restart(ctx, p, func(context.Context) error {
			if calls++; calls == 3 {
				cancel()
			}
			return errBroken
		}, nil)
		if !errors.Is(err, context.Canceled) || !errors.Is(err, errBroken) || calls != 3 {
			t.Errorf("err %v after %d calls, want canceled and errBroken after 3", err, calls)
		}
	})
	t.Run("expired", func(t *testing.T) {
		start := time.Now()
		err := Restart(t.Context(), Policy{Initial: 10 * time.Millisecond, Max: 10 * time.Millisecond, MaxElapsed: 55 * time.Millisecond},
			func(context.Context) error { return errBroken }, nil)
		if !errors.Is(err, ErrExpired) || !errors.Is(err, errBroken) {
			t.Errorf("err %v, want ErrExpired wrapping errBroken", err)
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("gave up after %s", el)
		}
	})
}

func TestParseAfter(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"  ", 0},
		{"0", 0},
		{"-5", 0},
		{"30", 30 * time.Second},
		{" 7 ", 7 * time.Second},
		{"1.5", 0},
		{"soon", 0},
		{"99999999999999999", math.MaxInt64},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{now.Format(http.TimeFormat), 0},
		{"Fri, 01 May 2026 12:02:00 GMT", 2 * time.Minute},
	} {
		if got := ParseAfter(tc.in, now); got != tc.want {
			t.Errorf("ParseAfter(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// FuzzParseAfter: never negative, and a number of seconds is read exactly.
func FuzzParseAfter(f *testing.F) {
	for _, s := range []string{"", "0", "120", "-1", "Fri, 01 May 2026 12:02:00 GMT", "9223372036854775807", "1e3"} {
		f.Add(s)
	}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d := ParseAfter(s, now)
		if d < 0 {
			t.Fatalf("ParseAfter(%q) = %s", s, d)
		}
	})
}
