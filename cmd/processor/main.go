// Command processor is the ghas-relay processor: it consumes GHAS_EVENTS,
// turns alerts into finding documents with the transformation maps in KV
// ghas_maps, keeps every finding's state in KV ghas_findings, publishes each
// change on GHAS_FINDINGS and forwards findings to an optional HTTP sink.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ghas-relay/ghas-relay/internal/config"
)

func main() {
	os.Exit(config.ExitCode(run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr)))
}

// printError writes err on one line of w, prefixed with the program name:
// every failure after start names its cause on stderr before the non-zero
// exit. Joined or wrapped errors that span lines are folded into one.
func printError(w io.Writer, program string, err error) {
	fmt.Fprintln(w, program+":", strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " "))
}
