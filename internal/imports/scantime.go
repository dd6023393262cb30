package imports

import (
	"fmt"
	"strings"
	"time"
)

// Scan times order the scans of a scope (docs/mapping.md, Lifecycle of
// imported findings). They keep their sub-second part — the receive time
// to the millisecond, a file's or a parameter's time as written — so that
// two scans a few milliseconds apart apply in their order, and they are
// compared as times, never as strings: "…:05Z" sorts after "…:05.5Z" as
// text.

// maxFuture is how far after the receive time a scan time may lie (clock
// skew between a scanner and the receiver); one further is refused, since
// a scan from the future would outrank every real scan of its scope until
// that time.
const maxFuture = 5 * time.Minute

// scanTimeFormat is how scan times are written: UTC, RFC 3339 with the
// fraction's trailing zeros dropped (whole seconds read as before).
const scanTimeFormat = time.RFC3339Nano

// receiveScanTime is the scan time of a scan that states none: the
// receive time to the millisecond.
func receiveScanTime(received time.Time) string {
	return received.UTC().Truncate(time.Millisecond).Format(scanTimeFormat)
}

// scanTime reads a stated scan time (RFC 3339, any offset, any fraction)
// and refuses one more than maxFuture after received; field names it in
// the error.
func scanTime(field, s string, received time.Time) (string, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("%s: want RFC 3339: %v", field, err)
	}
	if t.After(received.Add(maxFuture)) {
		return "", fmt.Errorf("%s %s is more than %s after the receive time %s", field, s, maxFuture, received.UTC().Format(time.RFC3339))
	}
	return t.UTC().Format(scanTimeFormat), nil
}

// CompareScanTimes compares two scan times as times: -1 when a is
// earlier, 0 when equal, +1 when later. A value that is not RFC 3339
// (none is written so) compares as text.
func CompareScanTimes(a, b string) int {
	ta, errA := time.Parse(time.RFC3339Nano, a)
	tb, errB := time.Parse(time.RFC3339Nano, b)
	if errA != nil || errB != nil {
		return strings.Compare(a, b)
	}
	return ta.Compare(tb)
}
