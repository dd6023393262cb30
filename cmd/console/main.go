// Command console is the ghas-relay console: it answers the questions
// people run ghas-relay for — which exposures matter most, what changed
// since yesterday, which assets only one source sees, who owns what and
// how fast it gets fixed — in a JSON API and pages people read, from an
// in-memory index of KV ghas_findings kept current from the bucket, and
// the history of GHAS_FINDINGS. It only reads NATS.
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
