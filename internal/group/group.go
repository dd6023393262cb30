// Package group owns the lifetime of a binary's components: it runs them
// together, stops them all when the first one fails or the context ends, and
// returns the first error only after every component has stopped
// (oklog/run's idea with contexts); and the serve-then-drain lifetime of an
// HTTP listener (ServeHTTP).
package group

import (
	"context"
	"sync"
)

// Func is one component: it runs until ctx ends or it fails.
type Func func(ctx context.Context) error

// Run runs every fn until ctx ends or one returns; then it cancels the rest,
// waits for all of them and returns the first non-nil error.
func Run(ctx context.Context, fns ...Func) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := fn(ctx)
			if err != nil {
				once.Do(func() { first = err })
			}
			cancel()
		}()
	}
	wg.Wait()
	return first
}
