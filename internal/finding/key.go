package finding

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Key is the finding key <dataset>.<repository_id>.<alert number>.
func Key(dataset string, repositoryID int64, number int64) string {
	return dataset + "." + strconv.FormatInt(repositoryID, 10) + "." + strconv.FormatInt(number, 10)
}

// ErrImportKey is ParseKey's error for the key of an imported finding,
// <type>.<repository_id>.<tool>.<id>: it has no alert number.
var ErrImportKey = errors.New("finding key of an imported finding")

// ParseKey splits a finding key. The key of an imported finding gives its
// dataset and repository id with ErrImportKey; ParseImportKey splits it.
func ParseKey(key string) (dataset string, repositoryID, number int64, err error) {
	parts := strings.Split(key, ".")
	if len(parts) == 4 {
		if repositoryID, err = strconv.ParseInt(parts[1], 10, 64); err != nil {
			return "", 0, 0, fmt.Errorf("finding key %q: repository id: %w", key, err)
		}
		return parts[0], repositoryID, 0, fmt.Errorf("finding key %q: %w", key, ErrImportKey)
	}
	if len(parts) != 3 {
		return "", 0, 0, fmt.Errorf("finding key %q: want <type>.<repository_id>.<number>", key)
	}
	if repositoryID, err = strconv.ParseInt(parts[1], 10, 64); err != nil {
		return "", 0, 0, fmt.Errorf("finding key %q: repository id: %w", key, err)
	}
	if number, err = strconv.ParseInt(parts[2], 10, 64); err != nil {
		return "", 0, 0, fmt.Errorf("finding key %q: number: %w", key, err)
	}
	return parts[0], repositoryID, number, nil
}

// Dataset returns the dataset of a finding type name, or "".
func Dataset(typeName string) string {
	switch typeName {
	case TypeSAST:
		return SAST
	case TypeSCA:
		return SCA
	case TypeSecret:
		return Secret
	}
	return ""
}

// Finding returns the document's one finding, or nil.
func (d *Document) Finding() *Finding {
	if len(d.Findings) == 0 {
		return nil
	}
	return &d.Findings[0]
}

// ContentHash is a hex SHA-256 of the document without observedAt and
// origin: two documents with the same hash say the same about the finding,
// so the second is not published again: a finding message is published
// only when the content changed.
func (d Document) ContentHash() string {
	d.ObservedAt = ""
	d.Origin = ""
	b, err := json.Marshal(d)
	if err != nil {
		// A Document always marshals: it holds only strings, numbers,
		// bools, slices and maps of strings.
		panic(fmt.Sprintf("finding: marshal: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// Decode decodes a stored document.
func Decode(b []byte) (Document, error) {
	var d Document
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		return Document{}, fmt.Errorf("decode finding: %w", err)
	}
	return d, nil
}

// blankVolatile is how the two fields the content hash leaves out encode
// when empty; they are adjacent in Document.
const blankVolatile = `"origin":"","observedAt":""`

// Encode returns the document's JSON and its content hash with one
// encoding: the hash input is the document with origin and observedAt
// empty, and those two are then spliced in.
func (d Document) Encode() (data []byte, hash string, err error) {
	origin, observed := d.Origin, d.ObservedAt
	d.Origin, d.ObservedAt = "", ""
	b, err := json.Marshal(d)
	if err != nil {
		return nil, "", fmt.Errorf("encode finding %s: %w", d.FindingKey, err)
	}
	sum := sha256.Sum256(b)
	hash = hex.EncodeToString(sum[:16])
	i := bytes.Index(b, []byte(blankVolatile))
	if i < 0 {
		// Cannot happen with this struct; stay correct if it ever changes.
		d.Origin, d.ObservedAt = origin, observed
		b, err = json.Marshal(d)
		return b, hash, err
	}
	o, _ := json.Marshal(origin) // strings always marshal
	t, _ := json.Marshal(observed)
	out := make([]byte, 0, len(b)+len(o)+len(t))
	out = append(out, b[:i]...)
	out = append(out, `"origin":`...)
	out = append(out, o...)
	out = append(out, `,"observedAt":`...)
	out = append(out, t...)
	out = append(out, b[i+len(blankVolatile):]...)
	return out, hash, nil
}
