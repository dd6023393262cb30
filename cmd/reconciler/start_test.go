package main

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"strings"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/proc/proctest"
	"github.com/ghas-relay/ghas-relay/internal/stream/streamtest"
)

// TestMainProcess is the child process of proctest.RunMain.
func TestMainProcess(t *testing.T) { proctest.MainProcess(t, "reconciler", main) }

// An admin port that is already taken: the process exits non-zero with
// one line on stderr that names the address.
func TestBusyPortExitsWithTheAddress(t *testing.T) {
	ns := streamtest.Run(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	key := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(appKey(t))}))
	code, stderr := proctest.RunMain(t, "NATS_URL="+ns.URL(), "ADMIN_ADDR="+addr, "GITHUB_APP_ID=1", "GITHUB_APP_PRIVATE_KEY="+key)
	if code == 0 {
		t.Fatalf("exit code 0 with ADMIN_ADDR busy; stderr:\n%s", stderr)
	}
	line := proctest.LastLine(stderr)
	if !strings.HasPrefix(line, "reconciler: ") || !strings.Contains(line, addr) || !strings.Contains(line, "address already in use") {
		t.Errorf("last stderr line %q does not name the busy address %s", line, addr)
	}
}
