// Command ghas-import uploads a findings file (SARIF, Codex Security CSV
// or any tool's CSV) to the receiver's POST /imports and waits for the
// import's outcome, printing its progress.
package main

import (
	"context"
	"os"

	"github.com/ghas-relay/ghas-relay/internal/config"
)

func main() {
	os.Exit(config.ExitCode(run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr)))
}
