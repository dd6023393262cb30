package retry

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ParseAfter reads a Retry-After value: delay seconds or an HTTP date,
// relative to now. It returns 0 when the value is absent, invalid, zero or
// in the past; a delay too long for a time.Duration is the longest one.
// Callers cap it as their own rules require.
func ParseAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(math.MaxInt64/time.Second) {
			return math.MaxInt64
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
