package main

import (
	"io"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/config/configtest"
	"github.com/ghas-relay/ghas-relay/internal/docscheck"
)

// TestDocsListTheSettings holds docs/contract.md, README.md and
// docs/operations.md to the settings console -h lists: each documented,
// none documented that does not exist, the same defaults.
func TestDocsListTheSettings(t *testing.T) {
	_, err := parseConfig([]string{"console", "-h"}, configtest.Getenv(nil), io.Discard)
	docscheck.Run(t, "../..", docscheck.Binary{Name: "console", Settings: docscheck.Settings(t, err)})
}
