// Command receiver is the ghas-relay webhook receiver: it verifies GitHub
// webhook deliveries and publishes each accepted one to JetStream stream
// GHAS_EVENTS, answering GitHub only after JetStream acknowledged it.
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
