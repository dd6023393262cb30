// Package webhook owns the receiver's public HTTP surface (its statuses are
// listed in docs/contract.md): GitHub webhook signature verification
// (HMAC-SHA256 against every configured secret), delivery parsing (JSON and
// form-encoded bodies), the POST /webhook handler that publishes each
// accepted delivery to JetStream subject ghas.webhook.<event> and answers
// only after the JetStream ack, and the listener with its timeouts.
// Payloads stay []byte end to end: the handler checks that the body is a
// JSON object and never decodes it.
package webhook

import (
	"fmt"
	"net/http"

	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// Request headers GitHub sets on every delivery.
const (
	HeaderGitHubEvent        = "X-GitHub-Event"
	HeaderGitHubDelivery     = "X-GitHub-Delivery"
	HeaderGitHubHookID       = "X-GitHub-Hook-ID"
	HeaderGitHubTargetID     = "X-GitHub-Hook-Installation-Target-ID"
	HeaderSignature256       = "X-Hub-Signature-256"
	HeaderSignatureSHA1      = "X-Hub-Signature" // never accepted on its own
	maxHeaderValueLen        = 256
	contentTypeJSON          = "application/json"
	contentTypeForm          = "application/x-www-form-urlencoded"
	defaultPublishTimeoutSec = 5
)

// Response statuses in the 202 body {"delivery":..,"status":..}.
const (
	StatusAccepted  = "accepted"
	StatusDuplicate = "duplicate"
	StatusIgnored   = "ignored"
)

// Handled reports whether deliveries of event are published: the events
// of stream.HandledEvents, every action, and ping; deliveries of other
// events are answered 202 "ignored".
func Handled(event string) bool { return event == stream.EventPing || stream.Handled(event) }

// Delivery is one parsed, verified GitHub webhook delivery.
type Delivery struct {
	Event                string // X-GitHub-Event
	ID                   string // X-GitHub-Delivery, a GUID
	HookID               string // X-GitHub-Hook-ID, may be empty
	InstallationTargetID string // X-GitHub-Hook-Installation-Target-ID, may be empty
	// Payload is the JSON object exactly as GitHub sent it (for
	// form-encoded deliveries, the decoded payload field).
	Payload []byte
}

// statusError is a failure that decides the HTTP answer. The message is
// safe to send to the client; it never says which secret or why a
// signature failed.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return fmt.Sprintf("%d %s", e.status, e.msg) }

// Sentinel errors, each mapped to its status in one place (statusOf).
var (
	errMissingEvent    = &statusError{http.StatusBadRequest, "missing X-GitHub-Event header"}
	errMissingDelivery = &statusError{http.StatusBadRequest, "missing X-GitHub-Delivery header"}
	errBadHeader       = &statusError{http.StatusBadRequest, "invalid GitHub header"}
	errNotObject       = &statusError{http.StatusBadRequest, "body is not a JSON object"}
	errNoPayload       = &statusError{http.StatusBadRequest, "form body has no valid payload field"}
	errNoSignature     = &statusError{http.StatusUnauthorized, "unauthorized"}
	errBadSignature    = &statusError{http.StatusUnauthorized, "unauthorized"}
	errContentType     = &statusError{http.StatusUnsupportedMediaType, "content type must be application/json or application/x-www-form-urlencoded"}
	errTooLarge        = &statusError{http.StatusRequestEntityTooLarge, "body too large"}
	errBodyRead        = &statusError{http.StatusBadRequest, "cannot read body"}
	errUnavailable     = &statusError{http.StatusServiceUnavailable, "jetstream unavailable, retry later"}
	errBusy            = &statusError{http.StatusServiceUnavailable, "too many bodies in memory, retry later"}
	errOverloaded      = &statusError{http.StatusServiceUnavailable, "too many requests in flight, retry later"}
)

// statusOf is the HTTP status of err: the status of a statusError, else 500.
func statusOf(err error) int {
	if se, ok := err.(*statusError); ok {
		return se.status
	}
	return http.StatusInternalServerError
}
