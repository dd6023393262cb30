package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// natsUsers are the users of deploy/nats/users.conf: one per binary (the
// console's is console), the setup step's setup (processor -setup creates
// the layout with it) and the operators' ghas-admin, which the demo itself
// uses to show results.
var natsUsers = []string{"receiver", "processor", "reconciler", "console", "setup", "admin"}

// natsSetup is the demo's NATS server configuration: the shipped
// deploy/nats files with the demo's address and data folder, and a fresh
// random password per user.
type natsSetup struct {
	conf      string            // nats.conf to start nats-server with
	serverEnv []string          // GHAS_<USER>_PASSWORD for nats-server
	passwords map[string]string // user → password
	files     map[string]string // user → password file (0600)
}

// rewrites adapt the shipped nats.conf to the demo; each must match, so a
// change to the shipped file cannot silently leave the demo on defaults.
var (
	confPort     = regexp.MustCompile(`(?m)^port: \d+$`)
	confHTTPPort = regexp.MustCompile(`(?m)^http_port: \d+$`)
	confStore    = regexp.MustCompile(`(?m)^(\s*)store_dir: \S+$`)
)

// writeNATSConfig copies deploy/nats (run from the module root) to dir,
// listening on host:port only, storing JetStream data in storeDir.
func writeNATSConfig(dir, storeDir, host, port string) (natsSetup, error) {
	s := natsSetup{passwords: map[string]string{}, files: map[string]string{}}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return s, err
	}
	for _, f := range []string{"nats.conf", "users.conf", "permissions.conf"} {
		b, err := os.ReadFile(filepath.Join("deploy", "nats", f))
		if err != nil {
			return s, fmt.Errorf("shipped nats configuration: %w", err)
		}
		text := string(b)
		if f == "nats.conf" {
			for _, r := range []struct {
				re   *regexp.Regexp
				with string
			}{
				{confPort, fmt.Sprintf("host: %s\nport: %s", host, port)},
				{confHTTPPort, "# monitoring off in the demo"},
				{confStore, fmt.Sprintf("${1}store_dir: %q", storeDir)},
			} {
				if !r.re.MatchString(text) {
					return s, fmt.Errorf("deploy/nats/nats.conf: no line matches %s", r.re)
				}
				text = r.re.ReplaceAllString(text, r.with)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte(text), 0o600); err != nil {
			return s, err
		}
	}
	s.conf = filepath.Join(dir, "nats.conf")
	for _, u := range natsUsers {
		b := make([]byte, 18)
		if _, err := rand.Read(b); err != nil {
			return s, err
		}
		pw := hex.EncodeToString(b)
		file := filepath.Join(dir, u+".password")
		if err := os.WriteFile(file, []byte(pw+"\n"), 0o600); err != nil {
			return s, err
		}
		s.passwords[u], s.files[u] = pw, file
		s.serverEnv = append(s.serverEnv, "GHAS_"+strings.ToUpper(u)+"_PASSWORD="+pw)
	}
	return s, nil
}

// env is the NATS authentication of the binary user.
func (s natsSetup) env(user string) []string {
	name := "ghas-" + user
	if user == "setup" || user == "console" {
		name = user // these names are part of the contract
	}
	return []string{"NATS_USER=" + name, "NATS_PASSWORD_FILE=" + s.files[user]}
}
