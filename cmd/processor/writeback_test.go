package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/config"
	"github.com/ghas-relay/ghas-relay/internal/config/configtest"
)

// TestWriteBackSettings: WRITE_BACK is off by default with a one-second
// pace; on, it needs the App's credentials (exit 2 naming the setting);
// a word that is not a boolean, or a negative pace, is refused.
func TestWriteBackSettings(t *testing.T) {
	parse := func(env map[string]string) (processorConfig, error) {
		return parseConfig([]string{"processor"}, configtest.Getenv(env), io.Discard)
	}
	c, err := parse(map[string]string{})
	if err != nil || c.WriteBack || c.WriteInterval != time.Second {
		t.Fatalf("defaults: %v %v %v", err, c.WriteBack, c.WriteInterval)
	}
	c, err = parse(map[string]string{"WRITE_BACK": "true", "WRITE_BACK_INTERVAL": "0", "GITHUB_APP_ID": "1", "GITHUB_APP_PRIVATE_KEY": testKeyPEM(t)})
	if err != nil || !c.WriteBack || c.WriteInterval != 0 || c.App.AppID != 1 {
		t.Fatalf("on: %v %+v", err, c)
	}
	for name, tc := range map[string]struct {
		env     map[string]string
		setting string
	}{
		"without credentials": {map[string]string{"WRITE_BACK": "true"}, "GITHUB_APP_ID"},
		"not a boolean":       {map[string]string{"WRITE_BACK": "yes please"}, "WRITE_BACK"},
		"negative pace":       {map[string]string{"WRITE_BACK_INTERVAL": "-1s"}, "WRITE_BACK_INTERVAL"},
	} {
		_, err := parse(tc.env)
		var ce *config.Error
		if !errors.As(err, &ce) || ce.Setting != tc.setting || config.ExitCode(err) != 2 {
			t.Errorf("%s: %v, want exit 2 naming %s", name, err, tc.setting)
		}
	}
}

// testKeyPEM is a fresh RSA key in PEM.
func testKeyPEM(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
}
