// Package logging builds the slog loggers of ghas-relay and owns the stable
// attribute keys its logs use. Logs never carry secrets, tokens or payloads.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Stable attribute keys: dashboards and alerts may rely on them.
const (
	KeyDeliveryID     = "delivery_id"
	KeyEvent          = "event"
	KeyAction         = "action"
	KeyInstallationID = "installation_id"
	KeyRepositoryID   = "repository_id"
	KeyFindingKey     = "finding_key"
	KeyError          = "error"
	KeyPanic          = "panic"
	KeyStack          = "stack"
	KeySubject        = "subject"
	KeyComponent      = "component"
)

// Attribute keys of operational details: counts, durations, settings.
const (
	KeyAccount            = "account"
	KeyAddr               = "addr"
	KeyAlertsSeen         = "alerts_seen"
	KeyAttempt            = "attempt"
	KeyAttempts           = "attempts"
	KeyAuth               = "auth"
	KeyBy                 = "by"
	KeyDecision           = "decision"
	KeyDecisions          = "decisions"
	KeyDelivered          = "delivered"
	KeyDeliveries         = "deliveries"
	KeyDeltaEvery         = "delta_every"
	KeyDriftChanged       = "drift_changed"
	KeyDriftNew           = "drift_new"
	KeyDriftRemoved       = "drift_removed"
	KeyDriftStale         = "drift_stale"
	KeyDurable            = "durable"
	KeyDurationSeconds    = "duration_seconds"
	KeyElapsed            = "elapsed"
	KeyEnrich             = "enrich"
	KeyFailed             = "failed"
	KeyFailures           = "failures"
	KeyFeaturesOff        = "features_off"
	KeyFindings           = "findings"
	KeyFormat             = "format"
	KeyHeldBy             = "held_by"
	KeyHolder             = "holder"
	KeyImport             = "import"
	KeyInstallations      = "installations"
	KeyLease              = "lease"
	KeyMap                = "map"
	KeyMaxBodyBytes       = "max_body_bytes"
	KeyMaxPayload         = "max_payload"
	KeyMode               = "mode"
	KeyNextFull           = "next_full"
	KeyNotModified        = "not_modified"
	KeyOnce               = "once"
	KeyPages              = "pages"
	KeyPublished          = "published"
	KeyRateLimitRemaining = "rate_limit_remaining"
	KeyRateLimitSpent     = "rate_limit_spent"
	KeyReason             = "reason"
	KeyRedeliverEvery     = "redeliver_every"
	KeyRemovalsConfirmed  = "removals_confirmed"
	KeyRemovalsRefuted    = "removals_refuted"
	KeyRepositories       = "repositories"
	KeyRequests           = "requests"
	KeyResult             = "result"
	KeyResults            = "results"
	KeyRetryIn            = "retry_in"
	KeyRevision           = "revision"
	KeyScope              = "scope"
	KeyServer             = "server"
	KeySink               = "sink"
	KeySkipped            = "skipped"
	KeySource             = "source"
	KeyStatus             = "status"
	KeyStreamSeq          = "stream_seq"
	KeyTTL                = "ttl"
	KeyURL                = "url"
	KeyWait               = "wait"
)

// New returns a logger writing to w at level ("debug", "info", "warn",
// "error") in format ("json" or "text").
func New(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(strings.ToLower(level))); err != nil {
		return nil, fmt.Errorf("LOG_LEVEL: %q is not one of debug, info, warn, error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("LOG_FORMAT: %q is not json or text", format)
}

// Err is the attribute for an error.
func Err(err error) slog.Attr { return slog.Any(KeyError, err) }
