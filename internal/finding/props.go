package finding

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// PropertyValue is one custom property value of a repository: a single
// string, or a list of strings for a multi-select property. It encodes as
// GitHub gives it: a JSON string or a JSON array of strings.
type PropertyValue struct {
	// Values are the property's values: one for a single-value property,
	// any number for a multi-select one.
	Values []string
	// Multi is true for a multi-select property (encoded as an array).
	Multi bool
}

// MarshalJSON encodes a single value as a string and a multi-select value
// as an array.
func (v PropertyValue) MarshalJSON() ([]byte, error) {
	if v.Multi {
		if v.Values == nil {
			return []byte("[]"), nil
		}
		return json.Marshal(v.Values)
	}
	if len(v.Values) == 0 {
		return []byte(`""`), nil
	}
	return json.Marshal(v.Values[0])
}

// UnmarshalJSON accepts a string, an array of strings or null.
func (v *PropertyValue) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	switch {
	case s == "null":
		*v = PropertyValue{}
		return nil
	case strings.HasPrefix(s, "["):
		var vs []string
		if err := json.Unmarshal(b, &vs); err != nil {
			return fmt.Errorf("custom property value: %w", err)
		}
		*v = PropertyValue{Values: vs, Multi: true}
		return nil
	default:
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return fmt.Errorf("custom property value: %w", err)
		}
		*v = PropertyValue{Values: []string{one}}
		return nil
	}
}

// CorrelationKey is the first 16 hex digits of SHA-256 of
// "<repository_id>|<path>|<startLine>|<lowest CWE number>", or "" when the
// path, the start line or a CWE is missing. The same weakness at the same
// place reported by two tools has the same key.
func CorrelationKey(repositoryID string, path string, startLine int, cweIDs []string) string {
	if repositoryID == "" || path == "" || startLine <= 0 {
		return ""
	}
	lowest := -1
	for _, c := range cweIDs {
		n, err := strconv.Atoi(strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(c)), "CWE-"))
		if err != nil || n < 0 {
			continue
		}
		if lowest < 0 || n < lowest {
			lowest = n
		}
	}
	if lowest < 0 {
		return ""
	}
	sum := sha256.Sum256([]byte(repositoryID + "|" + path + "|" + strconv.Itoa(startLine) + "|" + strconv.Itoa(lowest)))
	return hex.EncodeToString(sum[:8])
}
