package loggingtest

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

func TestBufferUnderConcurrentLogging(t *testing.T) {
	var b Buffer
	logger := slog.New(slog.NewTextHandler(&b, nil))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				logger.Info("line", "n", fmt.Sprint(i, "-", j))
				_ = b.String() // a reader while others write (go test -race)
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(b.String(), "msg=line"); n != 400 {
		t.Errorf("%d lines, want 400", n)
	}
}
