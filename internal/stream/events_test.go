package stream

import (
	"slices"
	"testing"
)

// Handled and HandledEvents are the same list; IsAlert is part of it, ping
// is not.
func TestHandledEvents(t *testing.T) {
	list := HandledEvents()
	for _, e := range list {
		if !Handled(e) {
			t.Errorf("%s is in HandledEvents but not Handled", e)
		}
	}
	for _, e := range []string{EventPing, "push", "", "Code_Scanning_Alert"} {
		if Handled(e) {
			t.Errorf("Handled(%q) = true", e)
		}
	}
	alerts := 0
	for _, e := range list {
		if IsAlert(e) {
			alerts++
		}
	}
	if alerts != 3 || IsAlert(EventRepository) || slices.Contains(list, EventPing) {
		t.Errorf("%d alert events in %v, want 3", alerts, list)
	}
}
