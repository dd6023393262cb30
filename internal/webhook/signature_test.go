package webhook

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/ghas-relay/ghas-relay/internal/webhook/webhooktest"
)

// GitHub's published test vector:
// https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
const (
	vectorSecret    = "It's a Secret to Everybody"
	vectorBody      = "Hello, World!"
	vectorSignature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
)

func TestVerifySignature(t *testing.T) {
	body := []byte(vectorBody)
	tests := []struct {
		name    string
		secrets [][]byte
		header  string
		body    []byte
		want    error
	}{
		{"github vector", ParseSecrets(vectorSecret), vectorSignature, body, nil},
		{"vector, uppercase hex", ParseSecrets(vectorSecret), "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17", body, nil},
		{"rotated: second secret", ParseSecrets("old-secret, " + vectorSecret), vectorSignature, body, nil},
		{"rotated: first secret", ParseSecrets(vectorSecret + ",new-secret"), vectorSignature, body, nil},
		{"wrong secret", ParseSecrets("nope"), vectorSignature, body, errBadSignature},
		{"tampered body", ParseSecrets(vectorSecret), vectorSignature, []byte("Hello, World?"), errBadSignature},
		{"missing", ParseSecrets(vectorSecret), "", body, errNoSignature},
		{"sha1 prefix", ParseSecrets(vectorSecret), "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59", body, errBadSignature},
		{"no prefix", ParseSecrets(vectorSecret), vectorSignature[len("sha256="):], body, errBadSignature},
		{"short", ParseSecrets(vectorSecret), vectorSignature[:40], body, errBadSignature},
		{"not hex", ParseSecrets(vectorSecret), "sha256=" + string(bytes.Repeat([]byte("z"), 64)), body, errBadSignature},
		{"no secrets", nil, vectorSignature, body, errBadSignature},
		{"empty secret is never a key", [][]byte{{}}, webhooktest.Sign("", body), body, errBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := VerifySignature(tt.secrets, tt.header, tt.body); !errors.Is(err, tt.want) {
				t.Fatalf("VerifySignature = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestSignMatchesVector(t *testing.T) {
	if got := webhooktest.Sign(vectorSecret, []byte(vectorBody)); got != vectorSignature {
		t.Fatalf("Sign = %s, want %s", got, vectorSignature)
	}
}

func TestParseSecrets(t *testing.T) {
	got := ParseSecrets(" a ,, b,c\n,")
	want := []string{"a", "b", "c"}
	if len(got) != len(want) {
		t.Fatalf("ParseSecrets = %q, want %q", got, want)
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Fatalf("ParseSecrets[%d] = %q, want %q", i, got[i], want[i])
		}
	}
	if ParseSecrets(" , ") != nil {
		t.Fatal("only separators must give no secrets")
	}
}

// FuzzVerifySignature: a correct signature verifies, and any change to the
// body makes it fail; arbitrary headers never panic.
func FuzzVerifySignature(f *testing.F) {
	f.Add([]byte(vectorBody), vectorSecret, 0, byte(1), vectorSignature)
	for _, b := range webhooktest.Seeds(f) {
		f.Add(b, "s3cret", len(b)/2, byte(0x20), "sha256=00")
	}
	f.Fuzz(func(t *testing.T, body []byte, secret string, pos int, flip byte, header string) {
		secrets := [][]byte{[]byte("other"), []byte(secret)}
		_ = VerifySignature(secrets, header, body) // must not panic
		if secret == "" {
			return
		}
		sig := webhooktest.Sign(secret, body)
		if err := VerifySignature(secrets, sig, body); err != nil {
			t.Fatalf("own signature does not verify: %v", err)
		}
		mod := append([]byte(nil), body...)
		switch {
		case len(mod) == 0 || flip == 0:
			mod = append(mod, flip)
		default:
			i := pos % len(mod)
			if i < 0 {
				i = -i
			}
			mod[i] ^= flip
		}
		if err := VerifySignature(secrets, sig, mod); err == nil {
			t.Fatalf("modified body verifies")
		}
		// A verifier reused across requests (its HMAC states reset, not
		// rebuilt) gives the same answers in any order.
		v := newVerifier(secrets)
		for range 2 {
			if err := v.verify(sig, mod); err == nil {
				t.Fatalf("reused verifier: modified body verifies")
			}
			if err := v.verify(sig, body); err != nil {
				t.Fatalf("reused verifier: own signature does not verify: %v", err)
			}
		}
	})
}

// One verifier shared by concurrent requests: each answer is right.
func TestVerifierConcurrentReuse(t *testing.T) {
	v := newVerifier(ParseSecrets("old," + vectorSecret))
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 500 {
				body := []byte(fmt.Sprintf("%s %d %d", vectorBody, g, i))
				sig := webhooktest.Sign(vectorSecret, body)
				if err := v.verify(sig, body); err != nil {
					errs <- fmt.Errorf("goroutine %d, body %d: %w", g, i, err)
					return
				}
				if err := v.verify(webhooktest.Sign("wrong", body), body); err == nil {
					errs <- fmt.Errorf("goroutine %d, body %d: a wrong signature verifies", g, i)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := v.verify(vectorSignature, []byte(vectorBody)); err != nil {
		t.Fatalf("GitHub's vector after reuse: %v", err)
	}
}
