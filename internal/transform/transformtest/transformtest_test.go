package transformtest

import (
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/transform"
)

func TestStatic(t *testing.T) {
	m := transform.Defaults()
	if got := (Static{Maps: m}).Current(); got != m {
		t.Error("Static does not give its maps")
	}
	if d := Defaults().Current(); d == nil || len(d.Map("sast").Rows()) == 0 || len(d.Map("sast").Rows()) != len(m.Map("sast").Rows()) {
		t.Error("Defaults does not give the shipped maps")
	}
}
