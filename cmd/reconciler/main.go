// Command reconciler is the ghas-relay reconciler: as a GitHub App it pulls
// every code scanning, Dependabot and secret scanning alert of its
// installations (full pull daily, delta pull hourly), publishes to
// ghas.reconcile.<event> only what KV ghas_findings lacks or holds
// differently — including REMOVED for alerts a complete pull no longer
// lists — and recovers webhook deliveries GitHub failed to deliver on
// ghas.redelivery.<event>. With -once it runs once and exits (CronJob).
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
