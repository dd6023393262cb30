package reconcile

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

func sample(t *testing.T, path string) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile("../../testdata/webhooks/" + path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameJSON reports whether a and b hold the same JSON value (the fake
// re-encodes payloads with HTML escaping, as encoding/json does).
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}

func TestRedeliverySweep(t *testing.T) {
	e := newEnv(t, ghtest.Options{}, false)
	now := time.Now().UTC().Truncate(time.Second)
	failed := func(guid, event string, at time.Time, payload json.RawMessage) ghtest.Delivery {
		return e.gh.AddDelivery(ghtest.Delivery{GUID: guid, Event: event, Action: "created", DeliveredAt: at,
			Status: "Invalid HTTP Response: 503", StatusCode: 503, Payload: payload})
	}
	csa := sample(t, "code_scanning_alert/created.payload.json")
	dep := sample(t, "dependabot_alert/created.payload.json")
	failed("too-old", "code_scanning_alert", now.Add(-80*time.Hour), csa)
	failed("guid-a", "code_scanning_alert", now.Add(-time.Hour), csa)
	e.gh.AddDelivery(ghtest.Delivery{GUID: "guid-b", Event: "dependabot_alert", DeliveredAt: now.Add(-50 * time.Minute), Payload: dep})
	failed("guid-c", "dependabot_alert", now.Add(-40*time.Minute), dep)
	e.gh.AddDelivery(ghtest.Delivery{GUID: "guid-c", Event: "dependabot_alert", Redelivery: true, DeliveredAt: now.Add(-30 * time.Minute), Payload: dep})
	failed("guid-ping", "ping", now.Add(-20*time.Minute), sample(t, "ping/payload.json"))
	failed("guid-d", "dependabot_alert", now.Add(-10*time.Minute), dep)
	failed("guid-d", "dependabot_alert", now.Add(-5*time.Minute), dep) // a failed redelivery

	rep := e.mustRun(ModeRedeliver)
	want := DeliveryReport{Examined: 7, Failed: 3, Redelivered: 2, Ignored: 1}
	got := *rep.Deliveries
	got.Checkpoint = 0
	if got != want {
		t.Errorf("deliveries %+v, want %+v", got, want)
	}
	msgs := e.redeliveries()
	if len(msgs) != 2 {
		t.Fatalf("%d redeliveries published, want 2", len(msgs))
	}
	for i, m := range msgs {
		guid, event, body := []string{"guid-a", "guid-d"}[i], []string{"code_scanning_alert", "dependabot_alert"}[i], [][]byte{csa, dep}[i]
		h := m.Headers()
		if m.Subject() != stream.RedeliverySubject(event) || h.Get(stream.HeaderMsgID) != guid || h.Get(stream.HeaderDelivery) != guid ||
			h.Get(stream.HeaderEvent) != event || h.Get(stream.HeaderOrigin) != stream.OriginRedelivery ||
			h.Get(stream.HeaderHookID) != "42" || h.Get(stream.HeaderInstallationTarget) == "" || h.Get(stream.HeaderReceivedAt) == "" {
			t.Errorf("redelivery %d: subject %s headers %v", i, m.Subject(), h)
		}
		if !sameJSON(t, m.Data(), body) {
			t.Errorf("redelivery %d: payload differs from the stored delivery", i)
		}
	}

	// The checkpoint: a second sweep examines nothing and publishes nothing.
	rep = e.mustRun(ModeRedeliver)
	if rep.Deliveries.Examined != 0 || rep.Published != 0 {
		t.Errorf("second sweep: %+v, published %d", rep.Deliveries, rep.Published)
	}
	failed("guid-e", "secret_scanning_alert", now, sample(t, "secret_scanning_alert/reopened.payload.json"))
	rep = e.mustRun(ModeRedeliver)
	if rep.Deliveries.Examined != 1 || rep.Deliveries.Redelivered != 1 || len(e.redeliveries()) != 3 {
		t.Errorf("third sweep: %+v, %d redeliveries in the stream", rep.Deliveries, len(e.redeliveries()))
	}
}

func TestRedeliveryFailureKeepsCheckpoint(t *testing.T) {
	e := newEnv(t, ghtest.Options{}, false)
	d := e.gh.AddDelivery(ghtest.Delivery{GUID: "guid-a", Event: "code_scanning_alert", DeliveredAt: time.Now().Add(-time.Minute),
		Status: "timed out", StatusCode: 0, Payload: sample(t, "code_scanning_alert/created.payload.json")})
	e.gh.Inject(ghtest.Fault{Path: "/app/hook/deliveries/", Times: 1, Status: 404, Message: "Not Found"})
	if _, err := e.run(ModeRedeliver); err == nil {
		t.Fatal("sweep with a failed fetch reported success")
	}
	rep := e.mustRun(ModeRedeliver)
	if rep.Deliveries.Redelivered != 1 || rep.Deliveries.Checkpoint != d.ID {
		t.Errorf("retry sweep: %+v", rep.Deliveries)
	}
}
