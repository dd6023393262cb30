package imports

import (
	"bytes"
	"compress/gzip"
	"errors"
	"hash"
	"io"
	"net/http"
	"strings"
)

// The body of POST /imports is read as a stream: decompressed, bounded by
// MAX_BODY_BYTES, hashed into the import's content id and compressed for
// JetStream while the parser validates it one result at a time. What the
// request holds is the compressed copy and the parser's window, never the
// file; no buffer is sized from what a header claims.

// errTooLarge stops a body at MAX_BODY_BYTES.
var errTooLarge = errors.New("body too large")

// intake is one request body on its way through validation.
type intake struct {
	src      io.Reader
	gzipped  bool
	max, n   int64
	hash     hash.Hash
	zw       *gzip.Writer
	stored   bytes.Buffer
	err      error // the first read error other than io.EOF
	tooLarge bool
}

// openBody checks what can be checked before a byte is read — the
// Content-Length against max, whatever the Content-Encoding, and the
// encoding itself — and returns the body as an intake that writes what
// passes through it into h.
func openBody(w http.ResponseWriter, r *http.Request, max int64, h hash.Hash) (*intake, *httpError) {
	if r.ContentLength > max {
		return nil, fail(http.StatusRequestEntityTooLarge, "body larger than %d bytes", max)
	}
	in := &intake{max: max, hash: h}
	raw := http.MaxBytesReader(w, r.Body, max)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		in.src = raw
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(raw)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, fail(http.StatusRequestEntityTooLarge, "body larger than %d bytes", max)
			}
			return nil, fail(http.StatusBadRequest, "gzip: %v", err)
		}
		in.src, in.gzipped = zr, true
	default:
		return nil, fail(http.StatusUnsupportedMediaType, "content encoding %q: want gzip or none", enc)
	}
	in.zw, _ = gzip.NewWriterLevel(&in.stored, gzip.BestSpeed) // a valid level
	return in, nil
}

// Read passes the decompressed body on, counting, hashing and compressing
// it; past max it fails with errTooLarge.
func (in *intake) Read(b []byte) (int, error) {
	if in.tooLarge {
		return 0, errTooLarge
	}
	n, err := in.src.Read(b)
	if in.n+int64(n) > in.max {
		in.tooLarge = true
		return 0, errTooLarge
	}
	in.n += int64(n)
	if n > 0 {
		in.hash.Write(b[:n])
		_, _ = in.zw.Write(b[:n]) // into a bytes.Buffer: no error
	}
	if err != nil && !errors.Is(err, io.EOF) && in.err == nil {
		in.err = err
	}
	return n, err
}

// finish reads what the parser left (so that the hash and the stored copy
// are the whole body) and answers a body that could not be read: too
// large (413), broken gzip or a broken upload (400). parsed says whether
// the parser succeeded (after a failed parse nothing more is read). It
// returns nil when the body was read whole.
func (in *intake) finish(parsed bool) *httpError {
	if parsed && !in.tooLarge && in.err == nil {
		_, _ = io.Copy(io.Discard, in)
	}
	var mbe *http.MaxBytesError
	switch {
	case in.tooLarge:
		return fail(http.StatusRequestEntityTooLarge, "body larger than %d bytes (after decompression)", in.max)
	case errors.As(in.err, &mbe):
		return fail(http.StatusRequestEntityTooLarge, "body larger than %d bytes", in.max)
	case in.err != nil && in.gzipped:
		return fail(http.StatusBadRequest, "gzip: %v", in.err)
	case in.err != nil:
		return fail(http.StatusBadRequest, "read body: %v", in.err)
	}
	_ = in.zw.Close()
	return nil
}

// compressed is the stored copy of the body (gzip), valid after finish.
func (in *intake) compressed() []byte { return in.stored.Bytes() }
