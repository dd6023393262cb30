// Command httpfloor is the floor the receiver's CPU cost is judged against
// in receiverload: a bare net/http server (default settings) whose handler
// reads the body into a pooled buffer, publishes it to GHAS_EVENTS with the
// same headers and options as the receiver, and answers 202. It checks
// nothing (no signature, no JSON, no limits, no metrics), so receiverload
// can split the receiver's cost per delivery into the direct publish, what
// net/http itself costs around it, and the receiver's own work.
//
// On ADMIN_ADDR, POST /paced publishes at a fixed rate from this process
// (paced.go): the direct publisher receiverload compares the receiver with
// at a fixed rate.
//
// It is a benchmark stand-in, never deployed: it listens on LISTEN_ADDR,
// answers GET /readyz on ADMIN_ADDR once connected to
// NATS_URL, and expects the stream to exist.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/stream"
)

func main() {
	if err := run(os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "httpfloor:", err)
		os.Exit(1)
	}
}

func run(getenv func(string) string) error {
	nc, err := nats.Connect(getenv("NATS_URL"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	errc := make(chan error, 2)
	go func() {
		admin := http.NewServeMux()
		admin.Handle("/paced", pacedPublisher(js))
		admin.HandleFunc("/readyz", func(http.ResponseWriter, *http.Request) {})
		errc <- http.ListenAndServe(getenv("ADMIN_ADDR"), admin)
	}()
	go func() { errc <- http.ListenAndServe(getenv("LISTEN_ADDR"), newHandler(js)) }()
	return <-errc
}

func newHandler(js jetstream.JetStream) http.Handler {
	pool := sync.Pool{New: func() any { return new([64 << 10]byte) }}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := pool.Get().(*[64 << 10]byte)
		defer pool.Put(buf)
		if r.ContentLength < 0 || r.ContentLength > int64(len(buf)) {
			http.Error(w, "length", http.StatusRequestEntityTooLarge)
			return
		}
		n, err := io.ReadFull(r.Body, buf[:r.ContentLength])
		if err != nil {
			http.Error(w, "body", http.StatusBadRequest)
			return
		}
		if err := publish(r.Context(), js, buf[:n], r.Header.Get("X-GitHub-Delivery"), r.Header.Get("X-GitHub-Event"), r.Header.Get("X-GitHub-Hook-ID")); err != nil {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"status":"accepted"}`+"\n")
	})
}

// publish stores a delivery in GHAS_EVENTS with the receiver's headers and
// options, as the floor and the paced publisher do.
func publish(ctx context.Context, js jetstream.JetStream, body []byte, id, event, hook string) error {
	hdr := nats.Header{
		stream.HeaderMsgID:      {id},
		stream.HeaderEvent:      {event},
		stream.HeaderDelivery:   {id},
		stream.HeaderReceivedAt: {time.Now().UTC().Format(time.RFC3339Nano)},
		stream.HeaderOrigin:     {stream.OriginWebhook},
		stream.HeaderHookID:     {hook},
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := js.PublishMsg(ctx, &nats.Msg{Subject: stream.WebhookSubject(event), Data: body, Header: hdr}, jetstream.WithExpectStream(stream.EventsStream))
	return err
}
