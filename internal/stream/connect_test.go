package stream_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/stream"
)

func TestRedactURLs(t *testing.T) {
	got := stream.RedactURLs("nats://ghas-receiver:hunter2@nats:4222, tls://s3cr3ttoken@nats2:4222,nats://plain:4222")
	for _, secret := range []string{"hunter2", "s3cr3ttoken"} {
		if strings.Contains(got, secret) {
			t.Errorf("RedactURLs kept %q: %s", secret, got)
		}
	}
	if !strings.Contains(got, "ghas-receiver") || !strings.Contains(got, "nats://plain:4222") {
		t.Errorf("RedactURLs lost what is not secret: %s", got)
	}
}

// FuzzRedactURLs: whatever the URLs, each one that carries a password or
// a token comes out with it replaced, and the others unchanged.
func FuzzRedactURLs(f *testing.F) {
	for _, s := range []string{"nats://u:p@h:4222", "tls://tok@h", "nats://h:4222,nats://a:b@c", "u:p@h", "nats://a@b@c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		in, out := strings.Split(s, ","), strings.Split(stream.RedactURLs(s), ",")
		if len(in) != len(out) {
			t.Fatalf("RedactURLs(%q): %d URLs became %d", s, len(in), len(out))
		}
		for i, part := range in {
			u, err := url.Parse(strings.TrimSpace(part))
			switch {
			case err != nil:
				if strings.Contains(part, "@") && out[i] != "<redacted>" {
					t.Fatalf("RedactURLs(%q): unparsable %q kept as %q", s, part, out[i])
				}
			case u.User == nil:
				if out[i] != part {
					t.Fatalf("RedactURLs(%q): %q changed to %q", s, part, out[i])
				}
			default:
				r, err := url.Parse(out[i])
				if err != nil || r.User == nil {
					t.Fatalf("RedactURLs(%q): %q became %q", s, part, out[i])
				}
				if _, has := u.User.Password(); has {
					if pw, _ := r.User.Password(); pw != "redacted" || r.User.Username() != u.User.Username() {
						t.Fatalf("RedactURLs(%q): %q became %q", s, part, out[i])
					}
				} else if r.User.Username() != "redacted" {
					t.Fatalf("RedactURLs(%q): token in %q kept: %q", s, part, out[i])
				}
			}
		}
	})
}
