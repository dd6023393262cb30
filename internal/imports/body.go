package imports

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"

	"github.com/nats-io/nats.go"
)

// maxStoredBody bounds the decompressed body the processor accepts from a
// stored import (the receiver already refused anything over
// MAX_BODY_BYTES).
const maxStoredBody = 1 << 30

// Body is the file of a stored import message, decompressed.
func Body(m *nats.Msg) ([]byte, error) {
	return body(m.Header.Get(HeaderEncoding), m.Data)
}

func body(encoding string, data []byte) ([]byte, error) {
	switch encoding {
	case "":
		return data, nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("stored import: %w", err)
		}
		var out bytes.Buffer
		n, err := out.ReadFrom(io.LimitReader(zr, maxStoredBody+1))
		if err != nil {
			return nil, fmt.Errorf("stored import: %w", err)
		}
		if n > maxStoredBody {
			return nil, fmt.Errorf("stored import: larger than %d bytes", maxStoredBody)
		}
		return out.Bytes(), nil
	}
	return nil, fmt.Errorf("stored import: unknown encoding %q", encoding)
}

// BodyOf is Body for a message given as headers and data.
func BodyOf(h nats.Header, data []byte) ([]byte, error) { return body(h.Get(HeaderEncoding), data) }
