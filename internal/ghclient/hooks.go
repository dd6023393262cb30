package ghclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// HookDelivery is one attempt to deliver a webhook of the App (GET
// /app/hook/deliveries). Several attempts (redeliveries) share a GUID.
type HookDelivery struct {
	ID             int64     `json:"id"`
	GUID           string    `json:"guid"`
	DeliveredAt    time.Time `json:"delivered_at"`
	Redelivery     bool      `json:"redelivery"`
	Status         string    `json:"status"`      // "OK" on success, else GitHub's reason
	StatusCode     int       `json:"status_code"` // the receiver's HTTP status; 0 if none
	Event          string    `json:"event"`
	Action         string    `json:"action"`
	InstallationID int64     `json:"installation_id"`
	RepositoryID   int64     `json:"repository_id"`
}

// Succeeded reports whether the attempt reached the receiver and got a 2xx.
func (d HookDelivery) Succeeded() bool { return d.StatusCode >= 200 && d.StatusCode < 300 }

// HookDeliveryDetail is one delivery attempt with its request (GET
// /app/hook/deliveries/{id}).
type HookDeliveryDetail struct {
	HookDelivery
	// Headers are the request headers GitHub sent (X-GitHub-Event, ...).
	Headers map[string]string
	// Payload is the webhook body as JSON.
	Payload json.RawMessage
}

// ListHookDeliveries walks the App's webhook deliveries, newest first, 100
// per page, following the cursor in Link rel="next"; visit returns false to
// stop (at the stored checkpoint).
func (a *App) ListHookDeliveries(ctx context.Context, visit func([]HookDelivery) (more bool, err error)) error {
	first := a.url(url.Values{"per_page": {strconv.Itoa(PerPage)}}, "app", "hook", "deliveries")
	err := a.paginate(ctx, a.appClient, first, nil, func(p *rawPage) (bool, error) {
		var items []HookDelivery
		if err := json.Unmarshal(p.body, &items); err != nil {
			return false, fmt.Errorf("decode deliveries page %d: %w", p.number, err)
		}
		return visit(items)
	})
	if err != nil {
		return fmt.Errorf("list hook deliveries: %w", err)
	}
	return nil
}

// GetHookDelivery fetches one delivery attempt with its headers and payload.
func (a *App) GetHookDelivery(ctx context.Context, id int64) (HookDeliveryDetail, error) {
	body, err := a.getJSON(ctx, a.appClient, a.url(nil, "app", "hook", "deliveries", strconv.FormatInt(id, 10)))
	if err != nil {
		return HookDeliveryDetail{}, fmt.Errorf("get hook delivery %d: %w", id, err)
	}
	var d struct {
		HookDelivery
		Request struct {
			Headers map[string]string `json:"headers"`
			Payload json.RawMessage   `json:"payload"`
		} `json:"request"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		return HookDeliveryDetail{}, fmt.Errorf("decode hook delivery %d: %w", id, err)
	}
	payload := d.Request.Payload
	if len(payload) > 0 && payload[0] == '"' { // a payload GitHub kept as a string
		var s string
		if err := json.Unmarshal(payload, &s); err == nil {
			payload = json.RawMessage(s)
		}
	}
	return HookDeliveryDetail{HookDelivery: d.HookDelivery, Headers: d.Request.Headers, Payload: payload}, nil
}
