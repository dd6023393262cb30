package sink

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ocsf"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// Body formats (Config.Format, SINK_FORMAT).
const (
	// FormatDocument POSTs the finding document as it is stored.
	FormatDocument = "document"
	// FormatOCSF POSTs one OCSF 1.6.0 event per finding revision.
	FormatOCSF = "ocsf"
)

// CheckFormat refuses a format other than "", FormatDocument and FormatOCSF.
func CheckFormat(format string) error {
	switch format {
	case "", FormatDocument, FormatOCSF:
		return nil
	}
	return fmt.Errorf("SINK_FORMAT %q is not %s or %s", format, FormatDocument, FormatOCSF)
}

// body is what the POST of a message carries: the document itself, or its
// OCSF event. An error means the message can never be sent (a document
// that does not decode or convert): it is dead-lettered.
func (f *Forwarder) body(msg jetstream.Msg, meta *jetstream.MsgMetadata) ([]byte, error) {
	if f.cfg.Format != FormatOCSF {
		return msg.Data(), nil
	}
	doc, err := finding.Decode(msg.Data())
	if err != nil {
		return nil, fmt.Errorf("ocsf: %w", err)
	}
	b, err := ocsf.Encode(doc, revisionOf(msg, meta, doc))
	if err != nil {
		return nil, err
	}
	return b, nil
}

// revisionOf reads a revision's facts from the headers the processor sets
// on every finding message: Ghas-Previous-Revision ("0" for a new finding;
// a message without it counts as a later revision) and
// Ghas-Previous-Status. Its time is the document's observedAt, else when
// the message was stored.
func revisionOf(msg jetstream.Msg, meta *jetstream.MsgMetadata, doc finding.Document) ocsf.Revision {
	h := msg.Headers()
	rev := ocsf.Revision{
		First:          h.Get(stream.HeaderPreviousRevision) == "0",
		PreviousStatus: h.Get(stream.HeaderPreviousStatus),
	}
	if t, err := time.Parse(time.RFC3339Nano, doc.ObservedAt); err == nil {
		rev.Time = t
	} else if meta != nil {
		rev.Time = meta.Timestamp
	}
	return rev
}
