package webhook

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/logging/loggingtest"
	"github.com/ghas-relay/ghas-relay/internal/metrics"
	"github.com/ghas-relay/ghas-relay/internal/webhook/webhooktest"
)

// failingBody gives part of a body, then the error of a client that went
// away (or of the server's read timeout).
type failingBody struct{ sent bool }

func (b *failingBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		return copy(p, `{"action":"created","al`), nil
	}
	return 0, errors.New("read tcp: i/o timeout")
}

func (b *failingBody) Close() error { return nil }

// A body that cannot be read (a stalled or vanished client) is answered
// 400 and counted, but not logged at info or above: a thousand slow
// clients must not flood the log with a thousand warnings.
func TestUnreadableBodyNotLoggedAsWarning(t *testing.T) {
	var logs loggingtest.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	reg := metrics.NewRegistry()
	h := NewHandler(logger, &countingPublisher{}, NewMetrics(reg), Options{Secrets: ParseSecrets("s"), MaxBodyBytes: 1 << 20})
	req := httptest.NewRequest(http.MethodPost, Path, nil)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderGitHubEvent, "code_scanning_alert")
	req.Header.Set(HeaderGitHubDelivery, "d-1")
	req.Header.Set(HeaderSignature256, webhooktest.Sign("s", []byte(`{}`)))
	req.ContentLength = 1000
	req.Body = &failingBody{}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", rec.Code)
	}
	if strings.Contains(logs.String(), "webhook rejected") {
		t.Errorf("an unreadable body was logged at info or above:\n%s", logs.String())
	}
}
