package finding

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// MaxImportID is the longest id of an imported finding.
const MaxImportID = 64

// ToolSlug is a tool name as a key token: lower case, every run of
// characters other than a-z and 0-9 one '-', no '-' at either end
// ("Claude Security" → "claude-security").
func ToolSlug(tool string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(tool) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	if b.Len() == 0 {
		return "unknown"
	}
	return b.String()
}

// ImportID makes an imported finding's id from its parts: the parts joined
// with '-' when that is at most MaxImportID characters of [A-Za-z0-9_-],
// else the first 32 hex digits of SHA-256 of the parts joined with '|'.
// The same parts always give the same id.
func ImportID(parts ...string) string {
	s := strings.Join(parts, "-")
	if validImportID(s) {
		return s
	}
	sum := sha256.Sum256([]byte(strings.Join(parts, "|")))
	return hex.EncodeToString(sum[:16])
}

func validImportID(s string) bool {
	if s == "" || len(s) > MaxImportID {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ImportKey is the key of an imported finding:
// <dataset>.<repository_id>.<tool slug>.<id>.
func ImportKey(dataset string, repositoryID int64, tool, id string) string {
	return dataset + "." + strconv.FormatInt(repositoryID, 10) + "." + ToolSlug(tool) + "." + id
}

// ParseImportKey splits the key of an imported finding.
func ParseImportKey(key string) (dataset string, repositoryID int64, toolSlug, id string, err error) {
	parts := strings.Split(key, ".")
	if len(parts) != 4 {
		return "", 0, "", "", fmt.Errorf("finding key %q: want <type>.<repository_id>.<tool>.<id>", key)
	}
	if repositoryID, err = strconv.ParseInt(parts[1], 10, 64); err != nil {
		return "", 0, "", "", fmt.Errorf("finding key %q: repository id: %w", key, err)
	}
	if parts[2] == "" || !validImportID(parts[3]) {
		return "", 0, "", "", fmt.Errorf("finding key %q: bad tool or id", key)
	}
	return parts[0], repositoryID, parts[2], parts[3], nil
}
