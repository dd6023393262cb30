package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// NATSAuth is how a binary proves who it is to NATS and protects the
// connection: at most one of a credentials file (JWT), an nkey seed file
// or a user name and password; TLS with an optional client certificate.
type NATSAuth struct {
	CredsFile   string
	NKeyFile    string
	User        string
	Password    string
	TLSCAFile   string
	TLSCertFile string
	TLSKeyFile  string
}

// registerNATS defines the authentication and TLS settings on s. The
// password is a secret: from the environment or a file, never a flag.
func (a *NATSAuth) registerNATS(s *Set) {
	s.String(&a.CredsFile, "NATS_CREDS", "", "optional NATS credentials file (JWT and nkey seed)")
	s.String(&a.NKeyFile, "NATS_NKEY_FILE", "", "optional file holding the NATS user's nkey seed")
	s.String(&a.User, "NATS_USER", "", "optional NATS user name; needs NATS_PASSWORD or NATS_PASSWORD_FILE")
	s.Secret(&a.Password, "NATS_PASSWORD", "NATS_PASSWORD_FILE", "the NATS user's password")
	s.String(&a.TLSCAFile, "NATS_TLS_CA_FILE", "", "PEM file of the CAs that sign the NATS server certificate (TLS)")
	s.String(&a.TLSCertFile, "NATS_TLS_CERT_FILE", "", "PEM client certificate for NATS (TLS); needs NATS_TLS_KEY_FILE")
	s.String(&a.TLSKeyFile, "NATS_TLS_KEY_FILE", "", "PEM private key of NATS_TLS_CERT_FILE")
}

// validate rejects combinations that cannot work and files that cannot
// be read or parsed, naming the setting. No message holds a secret.
func (a NATSAuth) validate() error {
	methods := []string{}
	if a.CredsFile != "" {
		methods = append(methods, "NATS_CREDS")
	}
	if a.NKeyFile != "" {
		methods = append(methods, "NATS_NKEY_FILE")
	}
	if a.User != "" {
		methods = append(methods, "NATS_USER")
	}
	if len(methods) > 1 {
		return &Error{methods[1], "cannot be combined with " + methods[0] + ": choose one way to authenticate"}
	}
	switch {
	case a.User != "" && a.Password == "":
		return &Error{"NATS_PASSWORD", "required with NATS_USER (or NATS_PASSWORD_FILE)"}
	case a.User == "" && a.Password != "":
		return &Error{"NATS_USER", "required with NATS_PASSWORD"}
	case a.TLSCertFile != "" && a.TLSKeyFile == "":
		return &Error{"NATS_TLS_KEY_FILE", "required with NATS_TLS_CERT_FILE"}
	case a.TLSCertFile == "" && a.TLSKeyFile != "":
		return &Error{"NATS_TLS_CERT_FILE", "required with NATS_TLS_KEY_FILE"}
	}
	if a.CredsFile != "" {
		if err := readable("NATS_CREDS", a.CredsFile); err != nil {
			return err
		}
	}
	if a.NKeyFile != "" {
		if err := readable("NATS_NKEY_FILE", a.NKeyFile); err != nil {
			return err
		}
		// Parses the nkey file; the error never holds the private key.
		if _, err := nats.NkeyOptionFromSeed(a.NKeyFile); err != nil {
			return &Error{"NATS_NKEY_FILE", fmt.Sprintf("%s holds no valid nkey seed", a.NKeyFile)}
		}
	}
	if a.TLSCAFile != "" {
		b, err := os.ReadFile(a.TLSCAFile)
		if err != nil {
			return &Error{"NATS_TLS_CA_FILE", fmt.Sprintf("read %s: %v", a.TLSCAFile, errors.Unwrap(err))}
		}
		if !x509.NewCertPool().AppendCertsFromPEM(b) {
			return &Error{"NATS_TLS_CA_FILE", fmt.Sprintf("%s holds no PEM certificate", a.TLSCAFile)}
		}
	}
	if a.TLSCertFile != "" {
		if err := readable("NATS_TLS_CERT_FILE", a.TLSCertFile); err != nil {
			return err
		}
		if err := readable("NATS_TLS_KEY_FILE", a.TLSKeyFile); err != nil {
			return err
		}
		if _, err := tls.LoadX509KeyPair(a.TLSCertFile, a.TLSKeyFile); err != nil {
			return &Error{"NATS_TLS_CERT_FILE", fmt.Sprintf("%s with key %s: not a certificate and its private key", a.TLSCertFile, a.TLSKeyFile)}
		}
	}
	return nil
}

func readable(setting, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return &Error{setting, fmt.Sprintf("read %s: %v", file, errors.Unwrap(err))}
	}
	f.Close()
	return nil
}

// NATS returns how the binary named component ("receiver", "processor",
// "reconciler") connects: client name "ghas-relay-<component>" and reply
// subjects under "_INBOX.<component>." — the shipped NATS permissions let
// each binary subscribe to its own replies only, so none can read another's.
func (c Common) NATS(component string) stream.ConnConfig {
	return stream.ConnConfig{
		URL:         c.NATSURL,
		Name:        "ghas-relay-" + component,
		InboxPrefix: "_INBOX." + strings.ReplaceAll(component, ".", "_"),
		CredsFile:   c.CredsFile,
		NKeyFile:    c.NKeyFile,
		User:        c.User,
		Password:    c.Password,
		TLSCAFile:   c.TLSCAFile,
		TLSCertFile: c.TLSCertFile,
		TLSKeyFile:  c.TLSKeyFile,
	}
}

// Layout returns the stream settings the binary ensures at start.
func (c Common) Layout() stream.Layout {
	return stream.Layout{
		Replicas:         int(c.StreamReplicas),
		EventsMaxBytes:   c.EventsMaxBytes,
		FindingsMaxBytes: c.FindingsMaxBytes,
		DLQMaxBytes:      c.DLQMaxBytes,
		StartTimeout:     c.NATSStartTimeout,
	}
}

// StreamLimits are the byte limits of the streams; 0 is unlimited (the
// server's store limit still applies).
type StreamLimits struct {
	EventsMaxBytes   int64
	FindingsMaxBytes int64
	DLQMaxBytes      int64
}

func (l *StreamLimits) registerLimits(s *Set) {
	s.Int(&l.EventsMaxBytes, "EVENTS_MAX_BYTES", 0, "byte limit of stream GHAS_EVENTS; when full the oldest events go (0: no limit but the server's store)")
	s.Int(&l.FindingsMaxBytes, "FINDINGS_MAX_BYTES", 0, "byte limit of stream GHAS_FINDINGS; when full the oldest messages go (0: no limit but the server's store)")
	s.Int(&l.DLQMaxBytes, "DLQ_MAX_BYTES", 0, "byte limit of stream GHAS_DLQ; when full the oldest dead letters go (0: no limit but the server's store)")
}

func (l StreamLimits) validate() error {
	for _, v := range []struct {
		env string
		n   int64
	}{{"EVENTS_MAX_BYTES", l.EventsMaxBytes}, {"FINDINGS_MAX_BYTES", l.FindingsMaxBytes}, {"DLQ_MAX_BYTES", l.DLQMaxBytes}} {
		if v.n < 0 {
			return &Error{v.env, fmt.Sprintf("%d is negative", v.n)}
		}
	}
	return nil
}
