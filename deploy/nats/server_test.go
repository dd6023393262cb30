// Package natsconf_test proves the NATS configuration shipped in this
// folder: a server started from nats.conf (or with nkeys.conf instead of
// users.conf) lets the setup step create the layout and each ghas-relay
// binary do its whole job with its own user, and denies everything the
// permissions deny. It has no production code.
package natsconf_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/ghas-relay/ghas-relay/internal/config"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// roles are the users of users.conf / nkeys.conf: a binary's component
// name (the setup step's is "setup") and the environment variable prefix
// of its password or nkey.
var roles = []string{"receiver", "processor", "reconciler", "console", "setup", "admin"}

// auth is how the test's clients authenticate.
type auth int

const (
	withPassword auth = iota
	withNKey
)

// natsServer is a server started from the shipped configuration, with the
// environment each role's binary needs to connect to it.
type natsServer struct {
	srv *server.Server
	url string
	// env[role] are a binary's NATS_* settings (files in a temp folder).
	env map[string]map[string]string
}

// startServer starts a server from the shipped nats.conf. With withNKey,
// the configuration is copied and users.conf replaced by nkeys.conf, as
// nats.conf tells an operator to. With tlsCfg, clients must speak TLS and
// (tlsCfg.ClientAuth) present a certificate; clientTLS are their settings.
func startServer(t *testing.T, mode auth, tlsCfg *tls.Config, clientTLS map[string]string) *natsServer {
	t.Helper()
	secrets := t.TempDir()
	env := map[string]map[string]string{}
	conf := "nats.conf"
	for _, r := range roles {
		up := "GHAS_" + strings.ToUpper(r)
		env[r] = map[string]string{}
		switch mode {
		case withPassword:
			pw := randomHex(t)
			t.Setenv(up+"_PASSWORD", pw)
			file := filepath.Join(secrets, r+".password")
			writeFile(t, file, pw+"\n")
			env[r]["NATS_USER"] = userName(r)
			env[r]["NATS_PASSWORD_FILE"] = file
		case withNKey:
			kp, err := nkeys.CreateUser()
			if err != nil {
				t.Fatal(err)
			}
			pub, _ := kp.PublicKey()
			seed, _ := kp.Seed()
			t.Setenv(up+"_NKEY", pub)
			file := filepath.Join(secrets, r+".nk")
			writeFile(t, file, string(seed)+"\n")
			env[r]["NATS_NKEY_FILE"] = file
		}
		for k, v := range clientTLS {
			env[r][k] = v
		}
	}
	if mode == withNKey {
		dir := t.TempDir()
		for _, f := range []string{"nats.conf", "permissions.conf", "nkeys.conf"} {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			s := strings.Replace(string(b), "\ninclude \"users.conf\"", "\ninclude \"nkeys.conf\"", 1)
			if f == "nats.conf" && s == string(b) {
				t.Fatal(`nats.conf has no line include "users.conf" to replace`)
			}
			writeFile(t, filepath.Join(dir, f), s)
		}
		conf = filepath.Join(dir, "nats.conf")
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("shipped configuration: %v", err)
	}
	opts.Host, opts.Port, opts.HTTPPort = "127.0.0.1", -1, 0
	opts.StoreDir = t.TempDir()
	opts.NoLog, opts.NoSigs = true, true
	scheme := "nats://"
	if tlsCfg != nil {
		opts.TLSConfig, opts.TLS = tlsCfg, true
		opts.TLSVerify = tlsCfg.ClientAuth == tls.RequireAndVerifyClientCert
		opts.TLSTimeout = 5
		scheme = "tls://"
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	ns := &natsServer{srv: srv, url: scheme + srv.Addr().String(), env: env}
	for _, e := range ns.env {
		e["NATS_URL"] = ns.url
	}
	return ns
}

func randomHex(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func writeFile(t *testing.T, name, s string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// client is one role's connection, made the way the binaries make theirs
// (config.Common from the environment, then stream.Connect), recording the
// permission violations the server reports.
type client struct {
	role string
	nc   *nats.Conn
	js   jetstream.JetStream

	mu         sync.Mutex
	violations []string
	notify     chan struct{}
}

func (ns *natsServer) connect(t *testing.T, role string) *client {
	t.Helper()
	env := ns.env[role]
	var c config.Common
	s := config.New(role, func(k string) string { return env[k] }, io.Discard)
	c.RegisterCommon(s, ":0")
	if err := s.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	nc, err := stream.Connect(discard(), c.NATS(role))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	cl := &client{role: role, nc: nc, notify: make(chan struct{}, 1)}
	nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		cl.mu.Lock()
		cl.violations = append(cl.violations, err.Error())
		cl.mu.Unlock()
		select {
		case cl.notify <- struct{}{}:
		default:
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for !nc.IsConnected() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not connected: %v", role, nc.LastError())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if cl.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	return cl
}

// violated reports whether the server refused a publish to a subject
// starting with prefix.
func (c *client) violated(prefix string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range c.violations {
		if strings.Contains(v, `Publish to "`+prefix) {
			return true
		}
	}
	return false
}

// noViolations fails t if the server refused anything of c.
func (c *client) noViolations(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.violations) > 0 {
		t.Errorf("%s: refused by the server: %v", c.role, c.violations)
	}
}

// denied runs call (a real client operation) and requires that the server
// refuses the publish to a subject starting with prefix, and that call
// fails. A refused request gets no answer, so call is cut short once the
// refusal arrived.
func (c *client) denied(t *testing.T, what, prefix string, call func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- call(ctx) }()
	deadline := time.After(10 * time.Second)
	for !c.violated(prefix) {
		select {
		case <-c.notify:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Errorf("%s: %s: the server reported no refusal of %s", c.role, what, prefix)
			return
		}
	}
	cancel()
	if err := <-done; err == nil {
		t.Errorf("%s: %s succeeded", c.role, what)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// userName is the deploy/nats user of a role: ghas-<binary> for the
// binaries and operators, setup for the one-shot setup step, console for
// the console.
func userName(role string) string {
	if role == "setup" || role == "console" {
		return role
	}
	return "ghas-" + role
}
