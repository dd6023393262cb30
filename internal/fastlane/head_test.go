package fastlane

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// githubHead is the head of a delivery as GitHub sends it.
const githubHead = "POST /webhook HTTP/1.1\r\n" +
	"Host: relay.example.com\r\n" +
	"User-Agent: GitHub-Hookshot/8f3a1c2\r\n" +
	"Content-Length: 5\r\n" +
	"Accept: */*\r\n" +
	"Content-Type: application/json\r\n" +
	"X-GitHub-Delivery: 72d3162e-cc78-11e3-81ab-4c9367dc0958\r\n" +
	"X-GitHub-Event: code_scanning_alert\r\n" +
	"X-GitHub-Hook-ID: 292430182\r\n" +
	"X-GitHub-Hook-Installation-Target-ID: 79929171\r\n" +
	"X-GitHub-Hook-Installation-Target-Type: integration\r\n" +
	"X-Hub-Signature-256: sha256=d57c68ca6f92289e6987922ff26938930f6e66a2d161ef06abdf1859230aa23c\r\n" +
	"\r\n"

func TestParseHeadGitHub(t *testing.T) {
	h, ok := parseHead([]byte(githubHead), requestLine("/webhook"))
	if !ok {
		t.Fatal("GitHub's head is not served by the lane")
	}
	if h.contentLength != 5 || h.host != "relay.example.com" || h.close {
		t.Fatalf("head = %+v", h)
	}
	if got := h.header.Get("X-Github-Event"); got != "code_scanning_alert" {
		t.Fatalf("X-GitHub-Event = %q", got)
	}
	if _, ok := h.header["Host"]; ok {
		t.Fatal("Host left in the header map (net/http moves it to Request.Host)")
	}
}

// Every head here must leave the lane: net/http answers it.
func TestParseHeadRefuses(t *testing.T) {
	base := "POST /webhook HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
	for name, head := range map[string]string{
		"GET":                     "GET /webhook HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n",
		"lower-case method":       "post /webhook HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n",
		"other path":              "POST /imports HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n",
		"query":                   "POST /webhook?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n",
		"absolute form":           "POST http://h/webhook HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.0":                "POST /webhook HTTP/1.0\r\nHost: h\r\nContent-Length: 5\r\n\r\n",
		"two spaces":              "POST  /webhook HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n",
		"chunked":                 base + "Transfer-Encoding: chunked\r\n\r\n",
		"CL and TE":               "POST /webhook HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
		"two lengths":             base + "Content-Length: 5\r\n\r\n",
		"length list":             "POST /webhook HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n",
		"signed length":           "POST /webhook HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n",
		"no length":               "POST /webhook HTTP/1.1\r\nHost: h\r\n\r\n",
		"19-digit length":         "POST /webhook HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000000000000000\r\n\r\n",
		"no host":                 "POST /webhook HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
		"two hosts":               base + "Host: i\r\n\r\n",
		"host with slash":         "POST /webhook HTTP/1.1\r\nHost: h/x\r\nContent-Length: 5\r\n\r\n",
		"expect":                  base + "Expect: 100-continue\r\n\r\n",
		"upgrade":                 base + "Upgrade: h2c\r\n\r\n",
		"connection upgrade":      base + "Connection: Upgrade\r\n\r\n",
		"te":                      base + "TE: trailers\r\n\r\n",
		"trailer":                 base + "Trailer: X\r\n\r\n",
		"obs-fold":                base + "X-A: 1\r\n 2\r\n\r\n",
		"space before colon":      base + "X-A : 1\r\n\r\n",
		"empty name":              base + ": 1\r\n\r\n",
		"no colon":                base + "X-A 1\r\n\r\n",
		"bare LF":                 "POST /webhook HTTP/1.1\nHost: h\r\nContent-Length: 5\r\n\r\n",
		"bare LF in header":       base + "X-A: 1\nX-B: 2\r\n\r\n",
		"bare CR in value":        base + "X-A: 1\r2\r\n\r\n",
		"NUL in value":            base + "X-A: 1\x002\r\n\r\n",
		"DEL in value":            base + "X-A: 1\x7f\r\n\r\n",
		"UTF-8 in value":          base + "X-A: é\r\n\r\n",
		"bytes after the blank":   base + "\r\nX",
		"no blank line":           base + "X-A: 1\r\n",
		"length with inner space": "POST /webhook HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\n",
	} {
		if _, ok := parseHead([]byte(head), requestLine("/webhook")); ok {
			t.Errorf("%s: served by the lane", name)
		}
	}
}

func TestParseHeadConnection(t *testing.T) {
	for value, close := range map[string]bool{"close": true, "Close": true, "keep-alive": false} {
		h, ok := parseHead([]byte("POST /webhook HTTP/1.1\r\nHost: h\r\nConnection: "+value+"\r\nContent-Length: 0\r\n\r\n"), requestLine("/webhook"))
		if !ok || h.close != close {
			t.Errorf("Connection: %s: ok %v, close %v", value, ok, h.close)
		}
	}
}

// FuzzParseHead holds the lane to net/http: whatever head the lane serves,
// net/http reads the same bytes as the same request (method, target, host,
// headers, body length and connection persistence), so no request means
// one thing to the lane and another to anything that parses like net/http.
func FuzzParseHead(f *testing.F) {
	f.Add([]byte(githubHead + "hello"))
	f.Add([]byte("POST /webhook HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 2\r\nX-A: a\r\nx-a:  b \r\n\r\nhi"))
	f.Add([]byte("POST /webhook HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"))
	f.Add([]byte("POST /webhook HTTP/1.1\r\nHost: h\r\nContent-Length: 05\r\nX-B:\t\tv\t\r\n\r\nhello"))
	f.Fuzz(func(t *testing.T, data []byte) {
		end := bytes.Index(data, headEnd)
		if end < 0 {
			return
		}
		head := data[:end+len(headEnd)]
		h, ok := parseHead(head, requestLine("/webhook"))
		if !ok {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			t.Fatalf("lane serves a head net/http refuses (%v):\n%q", err, head)
		}
		if req.Method != http.MethodPost || req.RequestURI != "/webhook" || req.ProtoMajor != 1 || req.ProtoMinor != 1 {
			t.Fatalf("net/http reads %s %s %s", req.Method, req.RequestURI, req.Proto)
		}
		if req.Host != h.host || req.ContentLength != h.contentLength || req.Close != h.close || len(req.TransferEncoding) != 0 {
			t.Fatalf("net/http: host %q length %d close %v te %v; lane: %+v", req.Host, req.ContentLength, req.Close, req.TransferEncoding, h)
		}
		if !reflect.DeepEqual(map[string][]string(req.Header), map[string][]string(h.header)) {
			t.Fatalf("headers differ:\nnet/http %q\nlane     %q", req.Header, h.header)
		}
		rest := data[len(head):]
		want := rest[:min(int64(len(rest)), h.contentLength)]
		got, _ := io.ReadAll(req.Body)
		if !bytes.Equal(got, want) {
			t.Fatalf("body: net/http %q, lane %q", got, want)
		}
	})
}

func TestParseHeadLongLines(t *testing.T) {
	long := "POST /webhook HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nX-A: " + strings.Repeat("a", 8000) + "\r\n\r\n"
	if _, ok := parseHead([]byte(long), requestLine("/webhook")); !ok {
		t.Fatal("a long value within the buffer is refused")
	}
}
