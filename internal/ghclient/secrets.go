package ghclient

import (
	"bytes"
	"encoding/json"
)

// secretFields are the fields of a secret scanning alert that hold the
// secret's value. GitHub leaves them out when asked hide_secret=true; they
// are removed here whatever the server did, so no secret leaves ghclient.
var secretFields = []string{"secret"}

// dropSecret returns alert without its top-level secret-value fields,
// keeping the other members verbatim and in their order. An alert that is not a JSON object
// is returned unchanged only if it names no secret field; otherwise it is
// replaced by null rather than passed on with the value.
func dropSecret(alert json.RawMessage) json.RawMessage {
	if !bytes.Contains(alert, []byte(`"secret"`)) {
		return alert
	}
	out, ok := withoutFields(alert, secretFields)
	if !ok {
		return json.RawMessage("null")
	}
	return out
}

// withoutFields removes the named members of a JSON object, copying the
// others verbatim in their order; false if obj is not a JSON object.
func withoutFields(obj []byte, names []string) ([]byte, bool) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	out := make([]byte, 0, len(obj))
	out = append(out, '{')
	first := true
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		name, ok := tok.(string)
		if !ok {
			return nil, false
		}
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, false
		}
		drop := false
		for _, n := range names {
			if name == n {
				drop = true
			}
		}
		if drop {
			continue
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		key, _ := json.Marshal(name)
		out = append(out, key...)
		out = append(out, ':')
		out = append(out, val...)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, false
	}
	if _, err := dec.Token(); err == nil {
		return nil, false // trailing data
	}
	return append(out, '}'), true
}
