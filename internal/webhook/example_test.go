package webhook_test

import (
	"fmt"
	"net/http"

	"github.com/ghas-relay/ghas-relay/internal/webhook"
	"github.com/ghas-relay/ghas-relay/internal/webhook/webhooktest"
)

// GitHub's published test vector: the secret "It's a Secret to Everybody"
// signs the body "Hello, World!" as below. A signature made with any of the
// configured secrets verifies (rotation); a wrong one does not, and the
// error says nothing about which secret or why.
func ExampleVerifySignature() {
	body := []byte("Hello, World!")
	header := "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

	rotating := webhook.ParseSecrets("new-secret, It's a Secret to Everybody")
	fmt.Println(webhook.VerifySignature(rotating, header, body) == nil)

	wrong := webhook.ParseSecrets("not the secret")
	fmt.Println(webhook.VerifySignature(wrong, header, body))
	// Output:
	// true
	// 401 unauthorized
}

// Parse checks a delivery's headers, its signature over the raw body and
// that the body is a JSON object; the payload stays the bytes GitHub sent.
func ExampleParse() {
	body := []byte(`{"action":"created","alert":{"number":42}}`)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(webhook.HeaderGitHubEvent, "code_scanning_alert")
	h.Set(webhook.HeaderGitHubDelivery, "72d3162e-cc78-11e3-81ab-4c9367dc0958")
	h.Set(webhook.HeaderSignature256, webhooktest.Sign("s3cret", body))

	d, err := webhook.Parse(h, body, webhook.ParseSecrets("s3cret"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(d.Event, d.ID, webhook.Handled(d.Event))
	fmt.Println(string(d.Payload))

	h.Set(webhook.HeaderSignature256, webhooktest.Sign("old-secret", body))
	_, err = webhook.Parse(h, body, webhook.ParseSecrets("s3cret"))
	fmt.Println(err)
	// Output:
	// code_scanning_alert 72d3162e-cc78-11e3-81ab-4c9367dc0958 true
	// {"action":"created","alert":{"number":42}}
	// 401 unauthorized
}
