package docscheck

import (
	"strings"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/config"
)

// The fixture: a processor and docs that agree with it.
func fixture() Binary {
	return Binary{Name: "processor", Settings: []config.Setting{
		{Env: "NATS_URL", Flag: "nats-url", Default: "nats://127.0.0.1:4222"},
		{Env: "NATS_START_TIMEOUT", Flag: "nats-start-timeout", Default: "5m0s"},
		{Env: "ADMIN_ADDR", Flag: "admin-addr", Default: ":9091"},
		{Env: "LOG_LEVEL", Flag: "log-level", Default: "info"},
		{Env: "LOG_FORMAT", Flag: "log-format", Default: "json"},
		{Env: "ENRICH", Flag: "enrich"},
		{Env: "SINK_TOKEN", Secret: true},
		{Env: "SINK_TOKEN_FILE", Flag: "sink-token-file"},
		{Env: "PROCESSOR_WORKERS", Flag: "processor-workers", Default: "32"},
		{Env: "MAX_BODY_BYTES", Flag: "max-body-bytes", Default: "26214400"},
		{Flag: "dry-run", Default: "false"},
		{Env: "INCLUDE_REPOS", Flag: "include-repos"},
		{Env: "EXCLUDE_REPOS", Flag: "exclude-repos"},
	}}
}

const contractMD = "# Contract\n\n" +
	"### Settings every binary has\n\n" +
	"| env | flag | meaning | default | status |\n" +
	"|---|---|---|---|---|\n" +
	"| `NATS_URL` | `-nats-url` | URL | `nats://127.0.0.1:4222` | implemented |\n" +
	"| `NATS_START_TIMEOUT` | `-nats-start-timeout` | wait | `5m` | implemented |\n" +
	"| `ADMIN_ADDR` | `-admin-addr` | admin | receiver `:9090`, processor `:9091` | implemented |\n" +
	"| `LOG_LEVEL`, `LOG_FORMAT` | `-log-level`, `-log-format` | logs | `info`, `json` | implemented |\n" +
	"\n### Processor (`cmd/processor`)\n\n" +
	"| env | flag | meaning | default | status |\n" +
	"|---|---|---|---|---|\n" +
	"| `ENRICH` | `-enrich` | enrich | `auto` when App credentials are set, else `never` | implemented |\n" +
	"| `SINK_TOKEN` / `SINK_TOKEN_FILE` | `-sink-token-file` | token | none | implemented |\n" +
	"| `PROCESSOR_WORKERS` | `-processor-workers` | workers | `32` | implemented |\n" +
	"| `MAX_BODY_BYTES` | `-max-body-bytes` | bytes | `26214400` (25 MiB) | implemented |\n" +
	"| — | `-dry-run` | no writes | off | implemented |\n" +
	"\n### Scope, ownership and tags (processor and reconciler)\n\n" +
	"| env | flag | meaning | default | status |\n" +
	"|---|---|---|---|---|\n" +
	"| `INCLUDE_REPOS`, `EXCLUDE_REPOS` | `-include-repos`, `-exclude-repos` | globs | all / none | implemented |\n" +
	"\n### Receiver (`cmd/receiver`)\n\n" +
	"| env | flag | meaning | default | status |\n" +
	"|---|---|---|---|---|\n" +
	"| `LISTEN_ADDR` | `-listen-addr` | not the processor's | `:8080` | implemented |\n"

const readmeMD = "## Configuration\n\n" +
	"| env | used by | meaning | default |\n" +
	"|---|---|---|---|\n" +
	"| `NATS_URL` | all | URL | `nats://127.0.0.1:4222` |\n" +
	"| `NATS_START_TIMEOUT` | all | wait | `5m` |\n" +
	"| `ADMIN_ADDR` | all | admin | receiver `:9090`, processor `:9091` |\n" +
	"| `LOG_LEVEL`, `LOG_FORMAT` | all | logs | `info`, `json` |\n" +
	"| `ENRICH` | processor | enrich | `auto` with App credentials, else `never` |\n" +
	"| `SINK_TOKEN` / `SINK_TOKEN_FILE` | processor | token | — |\n" +
	"| `PROCESSOR_WORKERS` | processor | workers | `32` |\n" +
	"| `MAX_BODY_BYTES` | processor | bytes | `26214400` |\n" +
	"| `INCLUDE_REPOS`, `EXCLUDE_REPOS` | processor, reconciler | globs | all / none |\n" +
	"| `LISTEN_ADDR` | receiver | not the processor's | `:8080` |\n"

const opsMD = "Scale: `PROCESSOR_WORKERS` (default 32) is the events in\n" +
	"flight; `NATS_START_TIMEOUT` (default 5 min) bounds the start, and\n" +
	"`SINK_FORMAT` (default document) is no setting of this fixture.\n"

func TestFixtureAgrees(t *testing.T) {
	b := fixture()
	for name, p := range map[string][]string{
		"contract": Contract(contractMD, b), "readme": README(readmeMD, b), "operations": Operations(opsMD, b),
	} {
		if len(p) > 0 {
			t.Errorf("%s: %q", name, p)
		}
	}
}

// TestChecksBite breaks copies of the fixture one way at a time; each
// check must name the setting it breaks.
func TestChecksBite(t *testing.T) {
	row := func(env string) string {
		for _, l := range strings.Split(contractMD, "\n") {
			if strings.HasPrefix(l, "| `"+env+"`") {
				return l + "\n"
			}
		}
		t.Fatalf("no row of %s", env)
		return ""
	}
	workers := row("PROCESSOR_WORKERS")
	for _, c := range []struct {
		name, old, new string
		check          func(string, Binary) []string
		md             string
		names          string
	}{
		{"contract: a row removed", workers, "", Contract, contractMD, "PROCESSOR_WORKERS"},
		{"contract: a false row", workers, workers + "| `WORKERS` | `-workers` | x | `1` | implemented |\n", Contract, contractMD, "WORKERS"},
		{"contract: a false flag", "`-processor-workers` |", "`-processor-workers`, `-workers` |", Contract, contractMD, "-workers"},
		{"contract: a default differs", "| `32` |", "| `8` |", Contract, contractMD, "PROCESSOR_WORKERS"},
		{"contract: a duration differs", "| `5m` |", "| `10m` |", Contract, contractMD, "NATS_START_TIMEOUT"},
		{"contract: an annotated default differs", "`26214400` (25 MiB)", "`25000000` (25 MiB)", Contract, contractMD, "MAX_BODY_BYTES"},
		{"contract: a flag missing from its row", "`-log-level`, `-log-format`", "`-log-level`", Contract, contractMD, "LOG_FORMAT"},
		{"contract: defaults that do not pair", "`info`, `json` |", "`info`, `json`, `debug` |", Contract, contractMD, "LOG_LEVEL"},
		{"contract: no default for this binary", "receiver `:9090`, processor `:9091`", "receiver `:9090`", Contract, contractMD, "ADMIN_ADDR"},
		{"contract: this binary's default differs", "processor `:9091`", "processor `:9099`", Contract, contractMD, "ADMIN_ADDR"},
		{"contract: prose that is no exception", "`auto` when App credentials are set, else `never`", "`auto`", Contract, contractMD, "ENRICH"},
		{"contract: exception words for another setting", "| all / none |", "| all / all |", Contract, contractMD, "EXCLUDE_REPOS"},
		{"contract: a secret without its file", "`SINK_TOKEN` / `SINK_TOKEN_FILE` | `-sink-token-file`", "`SINK_TOKEN` | —", Contract, contractMD, "SINK_TOKEN"},
		{"contract: a secret as a flag", "| `-sink-token-file` |", "| `-sink-token`, `-sink-token-file` |", Contract, contractMD, "-sink-token"},
		{"contract: a flag-only switch removed", "| — | `-dry-run` | no writes | off | implemented |\n", "", Contract, contractMD, "-dry-run"},
		{"contract: a switch's default differs", "| off |", "| on |", Contract, contractMD, "-dry-run"},
		{"contract: documented twice", "| `INCLUDE_REPOS`", workers + "| `INCLUDE_REPOS`", Contract, contractMD, "PROCESSOR_WORKERS"},
		{"contract: a table no binary claims", "\n### Receiver", "\n### Console\n\n| env | flag | meaning | default | status |\n|---|---|---|---|---|\n| `CONSOLE_ADDR` | `-console-addr` | x | none | planned |\n\n### Receiver", Contract, contractMD, "Console"},
		{"readme: a row removed", "| `PROCESSOR_WORKERS` | processor | workers | `32` |\n", "", README, readmeMD, "PROCESSOR_WORKERS"},
		{"readme: a false row", "| `LISTEN_ADDR` | receiver", "| `WORKERS` | processor | x | `1` |\n| `LISTEN_ADDR` | receiver", README, readmeMD, "WORKERS"},
		{"readme: a default differs", "| `32` |", "| `8` |", README, readmeMD, "PROCESSOR_WORKERS"},
		{"readme: a used by that is no binary", "| `PROCESSOR_WORKERS` | processor |", "| `PROCESSOR_WORKERS` | processor, dashboard |", README, readmeMD, "PROCESSOR_WORKERS"},
		{"readme: a setting given to another binary", "| `PROCESSOR_WORKERS` | processor |", "| `PROCESSOR_WORKERS` | reconciler |", README, readmeMD, "PROCESSOR_WORKERS"},
		{"operations: a default differs", "(default 32)", "(default 8)", Operations, opsMD, "PROCESSOR_WORKERS"},
		{"operations: a duration in words differs", "(default 5 min)", "(default 6 min)", Operations, opsMD, "NATS_START_TIMEOUT"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(c.md, c.old) {
				t.Fatalf("fixture has no %q", c.old)
			}
			broken := strings.Replace(c.md, c.old, c.new, 1)
			expect(t, c.name, c.check(broken, fixture()), c.names)
		})
	}
}

// TestBitesOnFixture runs Bites itself on the fixture: every setting's
// row removed and default changed is noticed, in both tables and prose.
func TestBitesOnFixture(t *testing.T) {
	Bites(t, Docs{Contract: contractMD, README: readmeMD, Operations: opsMD}, fixture())
}

func TestDefaults(t *testing.T) {
	for _, c := range []struct {
		env, doc, code string
		same           bool
	}{
		{"X", "`5m`", "5m0s", true},
		{"X", "5 min", "5m0s", true},
		{"X", "2 s", "2s", true},
		{"X", "`0` (no limit)", "0", true},
		{"X", "none", "", true},
		{"X", "—", "", true},
		{"X", "`none`", "", false}, // a value "none", not the word
		{"X", "off", "false", true},
		{"X", "`32`", "8", false},
		{"X", "all", "", false}, // words only where prose says so
		{"INCLUDE_REPOS", "all", "", true},
		{"INCLUDE_REPOS", "all", "*", false},
	} {
		if got := sameDefault(c.env, normal(c.doc), c.code); got != c.same {
			t.Errorf("%s: %q documents %q: %v, want %v", c.env, c.doc, c.code, got, c.same)
		}
	}
	if got := splitTop("`1h` / `10m`"); len(got) != 2 || got[1] != "`10m`" {
		t.Errorf("split: %q", got)
	}
	if got := splitTop("`https://api.github.com/` (a/b, c)"); len(got) != 1 {
		t.Errorf("split inside quotes and parentheses: %q", got)
	}
}
