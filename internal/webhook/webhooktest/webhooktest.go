// Package webhooktest signs GitHub webhook deliveries and lists the real
// sample payloads in testdata/webhooks/<event>/*.json, for tests, the load
// benchmark and the local demo. It does not import nats-server.
package webhooktest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// Sign returns the X-Hub-Signature-256 value of body under secret:
// "sha256=<hex HMAC-SHA256>".
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// NewRequest returns a signed JSON delivery of event with GUID delivery to
// url, as GitHub sends it. An empty secret leaves the request unsigned.
func NewRequest(url, event, delivery string, body []byte, secret string) *http.Request {
	return newRequest(url, "application/json", event, delivery, body, secret)
}

// NewFormRequest returns a signed form-encoded delivery: payload travels in
// the payload field and the signature covers the raw form body.
func NewFormRequest(url, event, delivery string, payload []byte, secret string) *http.Request {
	return newRequest(url, "application/x-www-form-urlencoded", event, delivery, FormBody(payload), secret)
}

func newRequest(u, contentType, event, delivery string, body []byte, secret string) *http.Request {
	req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		panic(fmt.Sprintf("webhooktest: new request: %v", err)) // a bad URL is a bug in the caller
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "GitHub-Hookshot/webhooktest")
	if event != "" {
		req.Header.Set("X-GitHub-Event", event)
	}
	if delivery != "" {
		req.Header.Set("X-GitHub-Delivery", delivery)
	}
	req.Header.Set("X-GitHub-Hook-ID", "4242")
	req.Header.Set("X-GitHub-Hook-Installation-Target-ID", "79929171")
	req.Header.Set("X-GitHub-Hook-Installation-Target-Type", "integration")
	if secret != "" {
		req.Header.Set("X-Hub-Signature-256", Sign(secret, body))
	}
	return req
}

// FormBody is the application/x-www-form-urlencoded body GitHub sends for
// payload.
func FormBody(payload []byte) []byte {
	return []byte("payload=" + url.QueryEscape(string(payload)))
}

// GUID returns a delivery GUID derived from seed, so the same sample sent
// twice is the same delivery.
func GUID(seed string) string {
	h := sha256.Sum256([]byte(seed))
	x := hex.EncodeToString(h[:16])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// Sample is one real GitHub payload from testdata/webhooks.
type Sample struct {
	Event string // directory name: the X-GitHub-Event value
	Name  string // file name, e.g. "created.payload.json"
	Body  []byte
}

// Delivery is the sample's stable delivery GUID.
func (s Sample) Delivery() string { return GUID(s.Event + "/" + s.Name) }

// Samples reads dir/<event>/*.json, sorted by event and name.
func Samples(dir string) ([]Sample, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*", "*.json"))
	if err != nil {
		return nil, fmt.Errorf("list samples: %w", err)
	}
	slices.Sort(paths)
	var out []Sample
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read sample: %w", err)
		}
		out = append(out, Sample{Event: filepath.Base(filepath.Dir(p)), Name: filepath.Base(p), Body: b})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("list samples: no %s/<event>/*.json", dir)
	}
	return out, nil
}

// Dir finds testdata/webhooks in the working directory or one of its
// parents (tests run in their package directory).
func Dir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find samples: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		p := filepath.Join(d, "testdata", "webhooks")
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("find samples: no testdata/webhooks above " + wd)
		}
	}
}

// Load returns every sample of the repository's testdata/webhooks, failing
// the test when there are none.
func Load(t testing.TB) []Sample {
	t.Helper()
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Samples(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Seeds returns the sample bodies, for fuzz corpora.
func Seeds(t testing.TB) [][]byte {
	t.Helper()
	var out [][]byte
	for _, s := range Load(t) {
		out = append(out, s.Body)
	}
	return out
}
