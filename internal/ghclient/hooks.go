package ghclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-github/v62/github"
)

// HookDelivery is one attempt to deliver a webhook of the App (GET
// /app/hook/deliveries), projected from go-github's github.HookDelivery onto
// the fields the missed-delivery sweep reads. Several attempts
// (redeliveries) share a GUID.
type HookDelivery struct {
	ID             int64
	GUID           string
	DeliveredAt    time.Time
	Redelivery     bool
	Status         string // "OK" on success, else GitHub's reason
	StatusCode     int    // the receiver's HTTP status; 0 if none
	Event          string
	Action         string
	InstallationID int64
	RepositoryID   int64
}

// Succeeded reports whether the attempt reached the receiver and got a 2xx.
func (d HookDelivery) Succeeded() bool { return d.StatusCode >= 200 && d.StatusCode < 300 }

// hookDeliveryOf projects go-github's delivery.
func hookDeliveryOf(d *github.HookDelivery) HookDelivery {
	return HookDelivery{
		ID: d.GetID(), GUID: d.GetGUID(), DeliveredAt: d.GetDeliveredAt().Time, Redelivery: d.GetRedelivery(),
		Status: d.GetStatus(), StatusCode: d.GetStatusCode(), Event: d.GetEvent(), Action: d.GetAction(),
		InstallationID: d.GetInstallationID(), RepositoryID: d.GetRepositoryID(),
	}
}

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
// per page, following the cursor of the Link header; visit returns false to
// stop (at the stored checkpoint).
func (a *App) ListHookDeliveries(ctx context.Context, visit func([]HookDelivery) (more bool, err error)) error {
	pg := a.pager()
	opts := &github.ListCursorOptions{PerPage: PerPage}
	for {
		var items []*github.HookDelivery
		resp, err := a.call(ctx, a.app, func() (*github.Response, error) {
			var err error
			var r *github.Response
			items, r, err = a.app.gh.Apps.ListHookDeliveries(ctx, opts)
			return r, err
		})
		if err != nil {
			return fmt.Errorf("list hook deliveries: %w", classify(err))
		}
		ds := make([]HookDelivery, len(items))
		for i, d := range items {
			ds[i] = hookDeliveryOf(d)
		}
		more, err := visit(ds)
		if err != nil {
			return fmt.Errorf("list hook deliveries: %w", err)
		}
		if !more {
			return nil
		}
		next, err := pg.next(resp, "")
		if err != nil {
			return fmt.Errorf("list hook deliveries: %w", err)
		}
		if next == (cursor{}) {
			return nil
		}
		if next.cursor == "" {
			return fmt.Errorf("list hook deliveries: %w: %s where a cursor was expected", ErrPagination, next)
		}
		opts.Cursor = next.cursor
	}
}

// GetHookDelivery fetches one delivery attempt with its headers and payload.
func (a *App) GetHookDelivery(ctx context.Context, id int64) (HookDeliveryDetail, error) {
	var d *github.HookDelivery
	_, err := a.call(ctx, a.app, func() (*github.Response, error) {
		var err error
		var r *github.Response
		d, r, err = a.app.gh.Apps.GetHookDelivery(ctx, id)
		return r, err
	})
	if err != nil {
		return HookDeliveryDetail{}, fmt.Errorf("get hook delivery %d: %w", id, classify(err))
	}
	out := HookDeliveryDetail{HookDelivery: hookDeliveryOf(d)}
	if d.Request != nil {
		out.Headers = d.Request.Headers
		if d.Request.RawPayload != nil {
			out.Payload = *d.Request.RawPayload
		}
	}
	if len(out.Payload) > 0 && out.Payload[0] == '"' { // a payload GitHub kept as a string
		var s string
		if err := json.Unmarshal(out.Payload, &s); err == nil {
			out.Payload = json.RawMessage(s)
		}
	}
	return out, nil
}

// RedeliverHookDelivery asks GitHub to deliver attempt id again (POST
// /app/hook/deliveries/{id}/attempts; GitHub answers 202 Accepted). It is
// not retried: a POST is not idempotent.
func (a *App) RedeliverHookDelivery(ctx context.Context, id int64) error {
	_, err := a.call(ctx, a.app, func() (*github.Response, error) {
		_, r, err := a.app.gh.Apps.RedeliverHookDelivery(ctx, id)
		return r, err
	})
	var accepted *github.AcceptedError
	if err != nil && !errors.As(err, &accepted) {
		return fmt.Errorf("redeliver hook delivery %d: %w", id, classify(err))
	}
	return nil
}
