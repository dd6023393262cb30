package webhook

import (
	"bytes"
	"mime"
	"net/http"

	"github.com/ghas-relay/ghas-relay/internal/jsonobject"
)

// Canonical forms of the request headers, for map lookups that do not
// canonicalize (and allocate) on every request: net/http stores incoming
// header names canonicalized. TestCanonicalKeys checks them.
const (
	keyContentType = "Content-Type"
	keyEvent       = "X-Github-Event"
	keyDelivery    = "X-Github-Delivery"
	keyHookID      = "X-Github-Hook-Id"
	keyTargetID    = "X-Github-Hook-Installation-Target-Id"
	keySignature   = "X-Hub-Signature-256"
)

// header is h.Get(key) for a key already in canonical form.
func header(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// mediaType returns the media type of a Content-Type header value when it
// is one the receiver accepts, else errContentType.
func mediaType(contentType string) (string, error) {
	switch contentType {
	case contentTypeJSON, contentTypeForm: // what GitHub sends: no parameters to parse
		return contentType, nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", errContentType
	}
	switch mt {
	case contentTypeJSON, contentTypeForm:
		return mt, nil
	}
	return "", errContentType
}

// checkHeaders validates the GitHub headers that need no body: event and
// delivery GUID present and short, printable values.
func checkHeaders(h http.Header) error {
	event, id := header(h, keyEvent), header(h, keyDelivery)
	if event == "" {
		return errMissingEvent
	}
	if id == "" {
		return errMissingDelivery
	}
	if !printable(event) || !printable(id) || !printable(header(h, keyHookID)) || !printable(header(h, keyTargetID)) {
		return errBadHeader
	}
	return nil
}

func printable(s string) bool {
	if len(s) > maxHeaderValueLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// Parse turns the headers and raw body of a POST /webhook request into a
// verified Delivery. It checks, in order: content type (415), GitHub headers
// (400), the X-Hub-Signature-256 signature over the raw body against every
// secret (401), and that the payload is a JSON object (400). The returned
// error's status decides the HTTP answer.
//
// For form-encoded bodies the payload field is decoded in place, after the
// signature was verified: body is overwritten and Payload aliases it, so a
// delivery is held in memory once.
func Parse(h http.Header, body []byte, secrets [][]byte) (Delivery, error) {
	mt, err := mediaType(header(h, keyContentType))
	if err != nil {
		return Delivery{}, err
	}
	if err := checkHeaders(h); err != nil {
		return Delivery{}, err
	}
	return parseChecked(h, mt, body, newVerifier(secrets))
}

// parseChecked is Parse after the content type (mt) and the GitHub headers
// were checked: it verifies the signature with v, then the payload.
func parseChecked(h http.Header, mt string, body []byte, v *verifier) (Delivery, error) {
	if err := v.verify(header(h, keySignature), body); err != nil {
		return Delivery{}, err
	}
	payload := body
	if mt == contentTypeForm {
		var err error
		if payload, err = formPayload(body); err != nil {
			return Delivery{}, err
		}
	}
	if !jsonobject.Valid(payload) {
		return Delivery{}, errNotObject
	}
	return Delivery{
		Event:                header(h, keyEvent),
		ID:                   header(h, keyDelivery),
		HookID:               header(h, keyHookID),
		InstallationTargetID: header(h, keyTargetID),
		Payload:              payload,
	}, nil
}

// formPayload returns the decoded value of the first "payload" field of an
// application/x-www-form-urlencoded body, decoding in place: percent
// decoding only shrinks, so the output never overtakes the input. b is
// overwritten. Fields whose names do not decode are skipped, as
// net/url.ParseQuery does.
func formPayload(b []byte) ([]byte, error) {
	for len(b) > 0 {
		var field []byte
		field, b, _ = bytes.Cut(b, []byte{'&'})
		key, value, _ := bytes.Cut(field, []byte{'='})
		k, ok := unescapeInPlace(key)
		if !ok || string(k) != "payload" {
			continue
		}
		v, ok := unescapeInPlace(value)
		if !ok {
			return nil, errNoPayload
		}
		return v, nil
	}
	return nil, errNoPayload
}

// unescapeInPlace decodes form escaping ('+' is a space, %XX a byte) into
// s itself and returns the decoded prefix.
func unescapeInPlace(s []byte) ([]byte, bool) {
	w := 0
	for r := 0; r < len(s); w++ {
		switch c := s[r]; c {
		case '+':
			s[w] = ' '
			r++
		case '%':
			if r+2 >= len(s) {
				return nil, false
			}
			hi, ok1 := unhex(s[r+1])
			lo, ok2 := unhex(s[r+2])
			if !ok1 || !ok2 {
				return nil, false
			}
			s[w] = hi<<4 | lo
			r += 3
		default:
			s[w] = c
			r++
		}
	}
	return s[:w], true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
