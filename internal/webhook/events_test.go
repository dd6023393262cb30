package webhook

import "testing"

func TestCustomPropertyValuesIsHandled(t *testing.T) {
	// Property changes keep assets current; they must be published.
	if !Handled("custom_property_values") {
		t.Error("custom_property_values deliveries are ignored")
	}
	if Handled("star") {
		t.Error("an unrelated event is handled")
	}
}
