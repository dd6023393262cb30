package natsconf_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// testPKI is a throwaway CA with a server certificate for 127.0.0.1 and a
// client certificate, written as PEM files.
type testPKI struct {
	caFile, certFile, keyFile string // the client's settings
	server                    *tls.Config
}

func newPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ghas-relay test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) tls.Certificate {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	srvCert := issue(2, "nats", x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	cliCert := issue(3, "ghas-relay", x509.ExtKeyUsageClientAuth, nil)

	p := testPKI{caFile: filepath.Join(dir, "ca.crt"), certFile: filepath.Join(dir, "client.crt"), keyFile: filepath.Join(dir, "client.key")}
	writePEM(t, p.caFile, "CERTIFICATE", caDER)
	writePEM(t, p.certFile, "CERTIFICATE", cliCert.Certificate[0])
	keyDER, err := x509.MarshalPKCS8PrivateKey(cliCert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, p.keyFile, "PRIVATE KEY", keyDER)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	p.server = &tls.Config{
		Certificates: []tls.Certificate{srvCert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}
	return p
}

func writePEM(t *testing.T, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// clientEnv are the binaries' TLS settings for p.
func (p testPKI) clientEnv() map[string]string {
	return map[string]string{"NATS_TLS_CA_FILE": p.caFile, "NATS_TLS_CERT_FILE": p.certFile, "NATS_TLS_KEY_FILE": p.keyFile}
}

// TestTLS: over TLS with client certificates (the server requires one),
// each role connects with NATS_TLS_* and its nkey, the setup creates the
// layout and the binaries find it, each keeping its permissions; a client without a certificate or
// without the CA is not let in.
func TestTLS(t *testing.T) {
	pki := newPKI(t)
	ns := startServer(t, withNKey, pki.server, pki.clientEnv())
	ctx := ctxT(t)
	setup := ns.connect(t, "setup")
	if !setup.nc.TLSRequired() {
		t.Fatal("connection without TLS")
	}
	if _, err := stream.Apply(ctx, setup.js, stream.Layout{Replicas: 1}); err != nil {
		t.Fatalf("setup creates the layout over TLS: %v", err)
	}
	recv := ns.connect(t, "receiver")
	if err := stream.WaitEnsure(ctx, discard(), recv.js, stream.Layout{Replicas: 1, CreateOnly: true, StartTimeout: 10 * time.Second}); err != nil {
		t.Fatalf("receiver finds the layout over TLS: %v", err)
	}
	if _, err := recv.js.Publish(ctx, stream.WebhookSubject("ping"), []byte(`{}`)); err != nil {
		t.Fatalf("receiver publishes over TLS: %v", err)
	}
	recv.denied(t, "publish a reconcile event", "ghas.reconcile.", publish(recv, stream.ReconcileSubject("ping")))
	proc := ns.connect(t, "processor")
	if err := stream.WaitEnsure(ctx, discard(), proc.js, stream.Layout{Replicas: 1, StartTimeout: 10 * time.Second}); err != nil {
		t.Fatalf("processor finds the layout over TLS: %v", err)
	}
	proc.noViolations(t)
	setup.noViolations(t)

	// No client certificate, or not trusting the CA: no connection.
	for name, env := range map[string]map[string]string{
		"no client certificate": {"NATS_TLS_CA_FILE": pki.caFile},
		"unknown CA":            {"NATS_TLS_CERT_FILE": pki.certFile, "NATS_TLS_KEY_FILE": pki.keyFile},
	} {
		cfg := stream.ConnConfig{URL: ns.url, Name: "x", NKeyFile: ns.env["receiver"]["NATS_NKEY_FILE"],
			TLSCAFile: env["NATS_TLS_CA_FILE"], TLSCertFile: env["NATS_TLS_CERT_FILE"], TLSKeyFile: env["NATS_TLS_KEY_FILE"]}
		nc, err := stream.Connect(discard(), cfg)
		if err != nil {
			continue
		}
		time.Sleep(500 * time.Millisecond)
		if nc.IsConnected() {
			t.Errorf("%s: connected", name)
		}
		nc.Close()
	}
}
