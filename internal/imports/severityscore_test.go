package imports

import "testing"

// TestSecuritySeverityScore: SARIF's security-severity is kept as a number
// of the 0..10 scale (a priority input), and left out otherwise.
func TestSecuritySeverityScore(t *testing.T) {
	for in, want := range map[string]float64{"8.8": 8.8, " 10 ": 10, "0": 0} {
		if got := securitySeverityScore(in); got == nil || *got != want {
			t.Errorf("%q: %v, want %v", in, got, want)
		}
	}
	for _, in := range []string{"", "high", "42", "-1", "NaN"} {
		if got := securitySeverityScore(in); got != nil {
			t.Errorf("%q: %v, want none", in, *got)
		}
	}
}
