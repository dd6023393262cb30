// Command demo runs the whole ghas-relay pipeline on this machine with only
// Go installed: a JetStream server (the go.mod tool nats-server) with its
// data in .local/demo, the receiver, the processor with a local sink that
// prints, a fake GitHub, every sample delivery of testdata/webhooks sent
// signed, one reconcile, and a table of the resulting findings. It stops
// every process it started before it exits.
//
// Run from the module root: go run ./cmd/demo
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}
