// Command processor is the ghas-relay processor: it consumes GHAS_EVENTS,
// turns alerts into finding documents with the transformation maps in KV
// ghas_maps, keeps every finding's state in KV ghas_findings, publishes each
// change on GHAS_FINDINGS and forwards findings to an optional HTTP sink.
package main

import (
	"context"
	"os"

	"github.com/ghas-relay/ghas-relay/internal/config"
)

func main() {
	os.Exit(config.ExitCode(run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr)))
}
