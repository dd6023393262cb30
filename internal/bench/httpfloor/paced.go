package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/bench/pace"
)

// pacedPublisher answers POST /paced?rate=N&for=D[&op=none] on the admin address: it
// publishes the request body to GHAS_EVENTS at N per second for D from
// this process, as the receiver publishes a delivery, and answers with
// the counts. receiverload compares the receiver's CPU per delivery at a
// fixed rate with this process's CPU per publish at the same rate: each
// side is woken once per operation (the receiver by the network, this
// process by its timer) and publishes on a goroutine of its own, so
// neither gains from batching the other cannot do. With op=none it only
// paces: what the timer, the goroutine and the bookkeeping cost alone.
func pacedPublisher(js jetstream.JetStream) http.Handler {
	var seq atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		rate, err1 := strconv.Atoi(r.URL.Query().Get("rate"))
		d, err2 := time.ParseDuration(r.URL.Query().Get("for"))
		if err1 != nil || err2 != nil || rate <= 0 || d <= 0 {
			http.Error(w, "want rate=N (>0) and for=DURATION", http.StatusBadRequest)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		op := func(ctx context.Context) error {
			id := fmt.Sprintf("paced-%d-%d", time.Now().UnixNano(), seq.Add(1))
			return publish(ctx, js, body, id, "code_scanning_alert", "4242")
		}
		if r.URL.Query().Get("op") == "none" {
			op = func(context.Context) error { return nil }
		}
		res := pace.Open(r.Context(), op, rate, d, nil)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(res.Summary())
	})
}
