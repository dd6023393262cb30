package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/state"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/transform"
)

// removeRepository marks every stored finding of a repository REMOVED.
func (p *Processor) removeRepository(ctx context.Context, repositoryID int64, at time.Time, reason string) (string, error) {
	keys, err := p.store.KeysOfRepository(ctx, repositoryID)
	if err != nil {
		return "", err
	}
	result := "unchanged"
	for _, k := range keys {
		o, err := p.markRemoved(ctx, k, at, 0, reason)
		if err != nil {
			return "", err
		}
		if o == state.Written {
			result = "processed"
		}
	}
	return result, nil
}

type repoEvent struct {
	Action     string          `json:"action"`
	Repository json.RawMessage `json:"repository"`
}

type repoIdentity struct {
	ID        int64  `json:"id"`
	UpdatedAt string `json:"updated_at"`
}

// publishAsset publishes the repository asset on ghas.assets.repository.<id>.
func (p *Processor) publishAsset(ctx context.Context, repositoryID int64, asset finding.Document) error {
	asset.Findings = nil
	data, err := json.Marshal(asset)
	if err != nil {
		return fmt.Errorf("marshal asset %d: %w", repositoryID, err)
	}
	msg := &nats.Msg{Subject: stream.AssetSubject(repositoryID), Header: nats.Header{}, Data: data}
	msg.Header.Set(stream.HeaderMsgID, fmt.Sprintf("asset.%d:%s", repositoryID, asset.ContentHash()))
	if _, err := p.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish asset %d: %w", repositoryID, err)
	}
	return nil
}

type installationEvent struct {
	Action              string         `json:"action"`
	Repositories        []repoIdentity `json:"repositories"`
	RepositoriesRemoved []repoIdentity `json:"repositories_removed"`
}

// installation handles installation and installation_repositories events:
// repositories that left the installation (or the whole installation, when
// the App is uninstalled) have their findings marked REMOVED.
func (p *Processor) installation(ctx context.Context, ev transform.Event) (string, error) {
	var ie installationEvent
	if err := json.Unmarshal(ev.Payload, &ie); err != nil {
		return "", fmt.Errorf("%w: %s event: %v", transform.ErrInvalid, ev.Name, err)
	}
	var gone []repoIdentity
	switch {
	case ev.Name == "installation_repositories" && ie.Action == "removed":
		gone = ie.RepositoriesRemoved
	case ev.Name == "installation" && ie.Action == "deleted":
		gone = ie.Repositories
	default:
		return "ignored", nil
	}
	result := "unchanged"
	for _, r := range gone {
		if r.ID == 0 {
			continue
		}
		res, err := p.removeRepository(ctx, r.ID, ev.ReceivedAt, finding.RemovedRepositoryRemoved)
		if err != nil {
			return "", err
		}
		if res == "processed" {
			result = res
		}
	}
	return result, nil
}
