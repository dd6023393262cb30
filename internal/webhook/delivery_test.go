package webhook

import (
	"bytes"
	"errors"
	"net/http"
	"net/textproto"
	"net/url"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/jsonobject"
	"github.com/ghas-relay/ghas-relay/internal/webhook/webhooktest"
)

const testSecret = "test-secret"

func headers(contentType, event, delivery, sig string) http.Header {
	h := http.Header{}
	for k, v := range map[string]string{
		"Content-Type":       contentType,
		HeaderGitHubEvent:    event,
		HeaderGitHubDelivery: delivery,
		HeaderSignature256:   sig,
	} {
		if v != "" {
			h.Set(k, v)
		}
	}
	return h
}

func TestParse(t *testing.T) {
	obj := []byte(` {"action":"created","alert":{"number":1}}`)
	form := webhooktest.FormBody(obj)
	secrets := ParseSecrets(testSecret)
	tests := []struct {
		name    string
		h       http.Header
		body    []byte
		want    error
		payload []byte
	}{
		{"json", headers("application/json", "ping", "g1", webhooktest.Sign(testSecret, obj)), obj, nil, obj},
		{"json with charset", headers("application/json; charset=utf-8", "ping", "g1", webhooktest.Sign(testSecret, obj)), obj, nil, obj},
		{"form", headers("application/x-www-form-urlencoded", "ping", "g1", webhooktest.Sign(testSecret, form)), form, nil, obj},
		{"form signed over payload, not raw body", headers("application/x-www-form-urlencoded", "ping", "g1", webhooktest.Sign(testSecret, obj)), form, errBadSignature, nil},
		{"form without payload", headers("application/x-www-form-urlencoded", "ping", "g1", webhooktest.Sign(testSecret, []byte("a=b"))), []byte("a=b"), errNoPayload, nil},
		{"form bad escape", headers("application/x-www-form-urlencoded", "ping", "g1", webhooktest.Sign(testSecret, []byte("payload=%7"))), []byte("payload=%7"), errNoPayload, nil},
		{"text/plain", headers("text/plain", "ping", "g1", webhooktest.Sign(testSecret, obj)), obj, errContentType, nil},
		{"no content type", headers("", "ping", "g1", webhooktest.Sign(testSecret, obj)), obj, errContentType, nil},
		{"no event", headers("application/json", "", "g1", webhooktest.Sign(testSecret, obj)), obj, errMissingEvent, nil},
		{"no delivery", headers("application/json", "ping", "", webhooktest.Sign(testSecret, obj)), obj, errMissingDelivery, nil},
		{"delivery with space", headers("application/json", "ping", "g 1", webhooktest.Sign(testSecret, obj)), obj, errBadHeader, nil},
		{"array", headers("application/json", "ping", "g1", webhooktest.Sign(testSecret, []byte("[]"))), []byte("[]"), errNotObject, nil},
		{"invalid json", headers("application/json", "ping", "g1", webhooktest.Sign(testSecret, []byte("{"))), []byte("{"), errNotObject, nil},
		{"trailing garbage", headers("application/json", "ping", "g1", webhooktest.Sign(testSecret, []byte("{}x"))), []byte("{}x"), errNotObject, nil},
		{"empty", headers("application/json", "ping", "g1", webhooktest.Sign(testSecret, nil)), nil, errNotObject, nil},
		{"unsigned", headers("application/json", "ping", "g1", ""), obj, errNoSignature, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse(tt.h, bytes.Clone(tt.body), secrets)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse error = %v, want %v", err, tt.want)
			}
			if err == nil && !bytes.Equal(d.Payload, tt.payload) {
				t.Fatalf("payload = %q, want %q", d.Payload, tt.payload)
			}
			if err == nil && (d.Event != "ping" || d.ID != "g1") {
				t.Fatalf("delivery = %+v", d)
			}
		})
	}
}

func TestFormPayloadMatchesParseQuery(t *testing.T) {
	for _, body := range []string{
		"payload=%7B%22a%22%3A1%7D",
		"x=1&payload=a+b&payload=second",
		"p%61yload=%7B%7D",
		"%zz=1&payload=ok",
		"payload",
		"payload=",
	} {
		v, err := url.ParseQuery(body)
		if err != nil {
			continue
		}
		got, err := formPayload([]byte(body))
		if _, ok := v["payload"]; !ok {
			if err == nil {
				t.Errorf("%q: got %q, want no payload", body, got)
			}
			continue
		}
		if err != nil || string(got) != v.Get("payload") {
			t.Errorf("%q: got %q, %v; want %q", body, got, err, v.Get("payload"))
		}
	}
}

// FuzzParse: parsing any headers and body never panics; a verified delivery
// always has a JSON object payload; any change to a signed body fails
// verification; form decoding agrees with net/url.
func FuzzParse(f *testing.F) {
	for _, b := range webhooktest.Seeds(f) {
		f.Add(b, false, 0, byte(1))
		f.Add(b, true, len(b), byte(0x41))
	}
	f.Add([]byte("payload=%7B%7D&x=%"), true, 3, byte(0))
	f.Add([]byte(" [1] "), false, 0, byte(2))
	secrets := ParseSecrets(testSecret)
	f.Fuzz(func(t *testing.T, body []byte, form bool, pos int, flip byte) {
		ct := "application/json"
		if form {
			ct = "application/x-www-form-urlencoded"
		}
		h := headers(ct, "code_scanning_alert", "0f6ee8f0-1e4b-11ef-8b5b-1c2d3e4f5a6b", webhooktest.Sign(testSecret, body))
		orig := bytes.Clone(body)
		d, err := Parse(h, bytes.Clone(body), secrets)
		if err == nil {
			if !jsonobject.Valid(d.Payload) {
				t.Fatalf("accepted payload %q is not a JSON object", d.Payload)
			}
			if !form && !bytes.Equal(d.Payload, orig) {
				t.Fatalf("json payload changed")
			}
		} else if s := statusOf(err); s != http.StatusBadRequest {
			t.Fatalf("signed delivery got status %d (%v)", s, err)
		}
		if form {
			if v, qerr := url.ParseQuery(string(orig)); qerr == nil {
				got, perr := formPayload(bytes.Clone(orig))
				if _, ok := v["payload"]; ok && (perr != nil || string(got) != v.Get("payload")) {
					t.Fatalf("formPayload = %q, %v; url.ParseQuery = %q", got, perr, v.Get("payload"))
				}
			}
		}
		mod := bytes.Clone(orig)
		if len(mod) == 0 || flip == 0 {
			mod = append(mod, flip)
		} else {
			i := pos % len(mod)
			if i < 0 {
				i = -i
			}
			mod[i] ^= flip
		}
		if _, err := Parse(h, mod, secrets); statusOf(err) != http.StatusUnauthorized {
			t.Fatalf("modified body: error %v, want 401", err)
		}
	})
}

// The canonical header keys the handler looks up are what net/http stores
// for GitHub's header names.
func TestCanonicalKeys(t *testing.T) {
	for key, name := range map[string]string{
		keyContentType: "Content-Type",
		keyEvent:       HeaderGitHubEvent,
		keyDelivery:    HeaderGitHubDelivery,
		keyHookID:      HeaderGitHubHookID,
		keyTargetID:    HeaderGitHubTargetID,
		keySignature:   HeaderSignature256,
	} {
		if c := textproto.CanonicalMIMEHeaderKey(name); c != key {
			t.Errorf("canonical %s is %q, the handler looks up %q", name, c, key)
		}
	}
}
