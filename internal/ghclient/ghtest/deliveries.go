package ghtest

import (
	"cmp"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Webhook deliveries of the App: recorded attempts, their listing (cursor),
// each attempt with its request, and redelivery requests.

type Delivery struct {
	ID             int64
	GUID           string
	DeliveredAt    time.Time
	Redelivery     bool
	Status         string // "OK" when delivered, else e.g. "Invalid HTTP Response: 503"
	StatusCode     int
	Event          string
	Action         string
	InstallationID int64
	RepositoryID   int64
	// Headers are the request headers (X-GitHub-Event etc. are added if missing).
	Headers map[string]string
	// Payload is the webhook body.
	Payload json.RawMessage
}

// AddDelivery records a delivery attempt (ID 0: the next id; zero
// DeliveredAt: now; empty Status: "OK" with 200).
func (s *Server) AddDelivery(d Delivery) Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.ID == 0 {
		d.ID = s.id()
	}
	if d.DeliveredAt.IsZero() {
		d.DeliveredAt = time.Now().UTC().Truncate(time.Second)
	}
	if d.Status == "" {
		d.Status, d.StatusCode = "OK", 200
	}
	h := maps.Clone(d.Headers)
	if h == nil {
		h = map[string]string{}
	}
	setDefault := func(k, v string) {
		if _, ok := h[k]; !ok {
			h[k] = v
		}
	}
	setDefault("X-GitHub-Delivery", d.GUID)
	setDefault("X-GitHub-Event", d.Event)
	setDefault("X-GitHub-Hook-ID", "42")
	setDefault("X-GitHub-Hook-Installation-Target-ID", strconv.FormatInt(s.opts.AppID, 10))
	setDefault("X-GitHub-Hook-Installation-Target-Type", "integration")
	setDefault("content-type", "application/json")
	d.Headers = h
	dd := d
	i, _ := slices.BinarySearchFunc(s.deliveries, d.ID, func(x *Delivery, id int64) int { return cmp.Compare(x.ID, id) })
	s.deliveries = slices.Insert(s.deliveries, i, &dd)
	return d
}

func deliverySummary(d *Delivery) map[string]any {
	m := map[string]any{
		"id": d.ID, "guid": d.GUID, "delivered_at": d.DeliveredAt.UTC().Format(time.RFC3339),
		"redelivery": d.Redelivery, "duration": 0.05, "status": d.Status, "status_code": d.StatusCode,
		"event": d.Event, "action": nil, "installation_id": nil, "repository_id": nil, "throttled_at": nil,
	}
	if d.Action != "" {
		m["action"] = d.Action
	}
	if d.InstallationID != 0 {
		m["installation_id"] = d.InstallationID
	}
	if d.RepositoryID != 0 {
		m["repository_id"] = d.RepositoryID
	}
	return m
}

func (s *Server) listDeliveries(r *http.Request, _ principal, _ []string) reply {
	s.mu.Lock()
	items := make([][]byte, 0, len(s.deliveries))
	for i := len(s.deliveries) - 1; i >= 0; i-- { // newest first
		b, _ := json.Marshal(deliverySummary(s.deliveries[i]))
		items = append(items, b)
	}
	s.mu.Unlock()
	return s.pageByCursor(r, items, "cursor")
}

func (s *Server) getDelivery(_ *http.Request, _ principal, seg []string) reply {
	id, _ := strconv.ParseInt(seg[3], 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := slices.BinarySearchFunc(s.deliveries, id, func(x *Delivery, id int64) int { return cmp.Compare(x.ID, id) })
	if !ok {
		return errReply(http.StatusNotFound, "Not Found")
	}
	d := s.deliveries[i]
	m := deliverySummary(d)
	m["url"] = "https://relay.example.com/webhook"
	payload := d.Payload
	if len(payload) == 0 {
		payload = json.RawMessage("{}")
	}
	m["request"] = map[string]any{"headers": d.Headers, "payload": payload}
	m["response"] = map[string]any{"headers": map[string]string{"Content-Type": "application/json"}, "payload": `{"status":"accepted"}`}
	b, err := json.Marshal(m)
	if err != nil {
		return errReply(http.StatusInternalServerError, err.Error())
	}
	return jsonReply(http.StatusOK, b)
}

// redeliver accepts a redelivery request of an existing attempt (202).
func (s *Server) redeliver(_ *http.Request, _ principal, seg []string) reply {
	id, _ := strconv.ParseInt(seg[3], 10, 64)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := slices.BinarySearchFunc(s.deliveries, id, func(x *Delivery, id int64) int { return cmp.Compare(x.ID, id) }); !ok {
		return errReply(http.StatusNotFound, "Not Found")
	}
	s.stats.Redeliveries++
	return jsonReply(http.StatusAccepted, []byte("{}"))
}
