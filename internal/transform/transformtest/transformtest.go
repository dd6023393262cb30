// Package transformtest holds stand-ins for the live parts of the
// transform package in tests and benchmarks.
package transformtest

import "github.com/ghas-relay/ghas-relay/internal/transform"

// Static is a map source that always gives the same maps: the stand-in
// for the KV watcher (transform.Store) where the maps do not change.
type Static struct{ Maps *transform.Maps }

// Current returns the maps.
func (s Static) Current() *transform.Maps { return s.Maps }

// Defaults is a Static of the shipped maps.
func Defaults() Static { return Static{Maps: transform.Defaults()} }
