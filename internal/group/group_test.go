package group

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestFirstErrorStopsAll(t *testing.T) {
	boom := errors.New("boom")
	stopped := make(chan struct{})
	err := Run(context.Background(),
		func(ctx context.Context) error { <-ctx.Done(); close(stopped); return nil },
		func(context.Context) error { time.Sleep(10 * time.Millisecond); return boom },
	)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	select {
	case <-stopped:
	default:
		t.Fatal("Run returned before every component stopped")
	}
}

func TestCancelStopsAllCleanly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	err := Run(ctx,
		func(ctx context.Context) error { <-ctx.Done(); return nil },
		func(ctx context.Context) error { <-ctx.Done(); return nil },
	)
	if err != nil {
		t.Fatal(err)
	}
}
