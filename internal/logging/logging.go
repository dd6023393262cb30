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
	KeySubject        = "subject"
	KeyComponent      = "component"
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
