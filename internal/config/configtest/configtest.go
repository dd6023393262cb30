// Package configtest gives the environment a test hands to a command's run
// (its getenv argument) or to internal/config.
package configtest

// Getenv looks settings up in m: a missing one is "", as unset.
func Getenv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}
