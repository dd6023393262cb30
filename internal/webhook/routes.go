package webhook

import "net/http"

// Path is where GitHub posts deliveries.
const Path = "/webhook"

// Routes is the whole public HTTP surface of the receiver: POST /webhook.
// Every other path is 404; other methods on /webhook are 405.
func Routes(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(Path, h)
	return mux
}
