package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/config"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// setup is `processor -setup`, the one-shot step that creates or updates
// the NATS layout (streams and buckets) to this version's: the only step
// that needs a user that may (setup in deploy/nats), run before the
// binaries start and on every upgrade. It connects as the binary
// "setup" (client name ghas-relay-setup, replies under _INBOX.setup.),
// waits for NATS up to NATS_START_TIMEOUT, prints one line per stream
// and bucket (created, updated with the settings that changed, or
// unchanged) and returns. The maps are not seeded here: the processor
// seeds the defaults it lacks at start, with its own right to write
// ghas_maps, so the setup identity writes no data.
func setup(ctx context.Context, logger *slog.Logger, c config.Common, stdout io.Writer) error {
	nc, err := stream.Connect(logger, c.NATS("setup"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	changes, err := stream.WaitApply(ctx, logger, js, c.Layout())
	for _, ch := range changes {
		fmt.Fprintln(stdout, ch)
	}
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	return nil
}
