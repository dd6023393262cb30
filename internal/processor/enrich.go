package processor

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/transform"
)

// Enrichment modes (ENRICH).
const (
	EnrichAuto   = "auto"   // fetch when the rule's level is not cached
	EnrichAlways = "always" // fetch every code scanning webhook alert
	EnrichNever  = "never"
)

// AlertFetcher fetches one code scanning alert from REST; ghclient.App is one.
type AlertFetcher interface {
	GetCodeScanningAlert(ctx context.Context, installationID int64, owner, repo string, number int64) (json.RawMessage, error)
}

// RESTEnricher looks up a rule's security severity level in the rule cache
// (KV ghas_state, keys rule.<base64url(rule id)>) and fetches the alert from
// REST when it must, caching what it learns.
type RESTEnricher struct {
	cache   jetstream.KeyValue
	fetcher AlertFetcher
	mode    string
	timeout time.Duration
}

// NewRESTEnricher returns an enricher. timeout bounds one lookup, retries
// included, so enrichment never delays an event for long.
func NewRESTEnricher(cache jetstream.KeyValue, fetcher AlertFetcher, mode string, timeout time.Duration) *RESTEnricher {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &RESTEnricher{cache: cache, fetcher: fetcher, mode: mode, timeout: timeout}
}

func ruleKey(ruleID string) string {
	return "rule." + base64.RawURLEncoding.EncodeToString([]byte(ruleID))
}

// SecuritySeverity implements Enricher.
func (e *RESTEnricher) SecuritySeverity(ctx context.Context, meta transform.Meta) (string, error) {
	if meta.RuleID == "" {
		return "", nil
	}
	cached := ""
	if entry, err := e.cache.Get(ctx, ruleKey(meta.RuleID)); err == nil {
		cached = string(entry.Value())
	} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", fmt.Errorf("rule cache %s: %w", meta.RuleID, err)
	}
	if cached != "" && e.mode != EnrichAlways {
		return cached, nil
	}
	if meta.InstallationID == 0 || meta.Owner == "" || meta.Repo == "" {
		return cached, nil
	}
	fctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	raw, err := e.fetcher.GetCodeScanningAlert(fctx, meta.InstallationID, meta.Owner, meta.Repo, meta.Number)
	if err != nil {
		return cached, fmt.Errorf("fetch alert %s/%s#%d: %w", meta.Owner, meta.Repo, meta.Number, err)
	}
	var alert struct {
		Rule struct {
			SecuritySeverityLevel string `json:"security_severity_level"`
		} `json:"rule"`
	}
	if err := json.Unmarshal(raw, &alert); err != nil {
		return cached, fmt.Errorf("decode alert %s/%s#%d: %w", meta.Owner, meta.Repo, meta.Number, err)
	}
	level := alert.Rule.SecuritySeverityLevel
	if level != "" && level != cached {
		if _, err := e.cache.Put(ctx, ruleKey(meta.RuleID), []byte(level)); err != nil {
			return level, fmt.Errorf("rule cache %s: %w", meta.RuleID, err)
		}
	}
	return level, nil
}
