package stream

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ghas-relay/ghas-relay/internal/logging"
)

// ConnConfig is how a binary connects to NATS: at most one of CredsFile,
// NKeyFile or User and Password; TLS when a URL is tls:// or a TLS file
// is set.
type ConnConfig struct {
	URL  string // comma-separated server URLs
	Name string // client name, shown by the server
	// InboxPrefix is the prefix of the connection's reply subjects
	// (default "_INBOX"); NATS permissions can then let each binary read
	// its own replies only.
	InboxPrefix string
	CredsFile   string // JWT credentials file
	NKeyFile    string // nkey seed file
	User        string
	Password    string
	TLSCAFile   string // CAs of the server certificate (default: the system's)
	TLSCertFile string // client certificate, with TLSKeyFile
	TLSKeyFile  string
}

// TLS reports whether the connection uses TLS.
func (c ConnConfig) TLS() bool {
	if c.TLSCAFile != "" || c.TLSCertFile != "" || c.TLSKeyFile != "" {
		return true
	}
	for _, u := range strings.Split(c.URL, ",") {
		if strings.HasPrefix(strings.ToLower(strings.TrimSpace(u)), "tls://") {
			return true
		}
	}
	return false
}

// options returns the authentication and TLS options of c. Certificate
// files are read again at every (re)connect, so renewed files are used
// without a restart.
func (c ConnConfig) options() []nats.Option {
	var opts []nats.Option
	if c.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(c.InboxPrefix))
	}
	switch {
	case c.CredsFile != "":
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	case c.NKeyFile != "":
		// The nkey file is read at each connect attempt; a bad file fails
		// nats.Connect with an error that never holds the private key.
		opts = append(opts, nkeyFromFile(c.NKeyFile))
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.TLS() {
		opts = append(opts, nats.Secure())
		if c.TLSCAFile != "" {
			opts = append(opts, nats.RootCAs(c.TLSCAFile))
		}
		if c.TLSCertFile != "" {
			opts = append(opts, nats.ClientCert(c.TLSCertFile, c.TLSKeyFile))
		}
	}
	return opts
}

// nkeyFromFile is nats.NkeyOptionFromSeed as an option, so a seed that
// cannot be read is reported by Connect.
func nkeyFromFile(file string) nats.Option {
	return func(o *nats.Options) error {
		opt, err := nats.NkeyOptionFromSeed(file)
		if err != nil {
			return fmt.Errorf("nkey seed %s: %w", file, err)
		}
		return opt(o)
	}
}

// Connect dials NATS. The connection retries forever on failure, including
// the first attempt, so a binary started before its server becomes ready
// when the server comes up; readiness (/readyz) tells the difference. A
// server that rejects the credentials twice closes the connection for good
// (WaitEnsure then fails): wrong credentials do not heal by retrying.
func Connect(logger *slog.Logger, cfg ConnConfig) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.ReconnectBufSize(-1), // never buffer publishes while down: fail fast, answer 503
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			logger.Warn("nats disconnected", slog.Any(logging.KeyError, err))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			logger.Info("nats reconnected", slog.String(logging.KeyServer, nc.ConnectedUrlRedacted()))
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			if err := nc.LastError(); err != nil {
				logger.Error("nats connection closed", slog.Any(logging.KeyError, err))
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			logger.Warn("nats async error", slog.String(logging.KeySubject, subj), slog.Any(logging.KeyError, err))
		}),
	}
	opts = append(opts, cfg.options()...)
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", RedactURLs(cfg.URL), err)
	}
	return nc, nil
}

// RedactURLs returns the comma-separated NATS URLs with any password or
// token in them replaced, for logs and error messages.
func RedactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			// Unparsable: keep no part of it that could be a secret.
			if strings.Contains(p, "@") {
				parts[i] = "<redacted>"
			}
			continue
		}
		if u.User != nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), "redacted")
			} else {
				u.User = url.User("redacted") // a token
			}
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}
