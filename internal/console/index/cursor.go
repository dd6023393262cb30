package index

import (
	"encoding/base64"
	"strconv"
	"strings"
)

// cursor is where the next page starts: the moment the first page was
// answered (gen), the sort, and the last item's place (its sort key and
// finding key) — never an offset, which would skip or repeat findings
// when others come or go before it.
type cursor struct {
	sort sortKind
	gen  uint64
	at   point
}

const cursorVersion = "c1"

// String is the cursor as the API gives it: opaque, URL-safe.
func (c cursor) String() string {
	s := strings.Join([]string{cursorVersion, strconv.Itoa(int(c.sort)), strconv.FormatUint(c.gen, 10),
		strconv.FormatInt(c.at.k, 10), c.at.key}, "|")
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

func parseCursor(s string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, ErrBadCursor
	}
	parts := strings.SplitN(string(b), "|", 5)
	if len(parts) != 5 || parts[0] != cursorVersion || parts[4] == "" {
		return cursor{}, ErrBadCursor
	}
	sort, err1 := strconv.Atoi(parts[1])
	gen, err2 := strconv.ParseUint(parts[2], 10, 64)
	k, err3 := strconv.ParseInt(parts[3], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || sort < 0 || sort >= len(Sorts) {
		return cursor{}, ErrBadCursor
	}
	return cursor{sort: sortKind(sort), gen: gen, at: point{k: k, key: parts[4]}}, nil
}
