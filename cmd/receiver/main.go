// Command receiver is the ghas-relay webhook receiver: it verifies GitHub
// webhook deliveries and publishes each accepted one to JetStream stream
// GHAS_EVENTS, answering GitHub only after JetStream acknowledged it.
package main

import (
	"context"
	"os"

	"github.com/ghas-relay/ghas-relay/internal/config"
)

func main() {
	os.Exit(config.ExitCode(run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr)))
}
