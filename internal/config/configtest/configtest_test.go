package configtest

import "testing"

func TestGetenv(t *testing.T) {
	get := Getenv(map[string]string{"NATS_URL": "nats://x:4222"})
	if get("NATS_URL") != "nats://x:4222" || get("LOG_LEVEL") != "" {
		t.Errorf("Getenv: %q %q", get("NATS_URL"), get("LOG_LEVEL"))
	}
}
