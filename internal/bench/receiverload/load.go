package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/bench/pace"
	"github.com/ghas-relay/ghas-relay/internal/stream"
	"github.com/ghas-relay/ghas-relay/internal/webhook/webhooktest"
)

// payload is a real code scanning alert padded to size bytes.
func payload(size int) ([]byte, error) {
	dir, err := webhooktest.Dir()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "code_scanning_alert", "created.payload.json"))
	if err != nil {
		return nil, err
	}
	var c bytes.Buffer
	if err := json.Compact(&c, b); err != nil {
		return nil, err
	}
	b = c.Bytes()
	head := append(bytes.Clone(b[:len(b)-1]), []byte(`,"bench_pad":"`)...)
	pad := size - len(head) - len(`"}`)
	if pad < 0 {
		return nil, fmt.Errorf("size %d is smaller than the sample", size)
	}
	return append(append(head, bytes.Repeat([]byte("x"), pad)...), '"', '}'), nil
}

var seq atomic.Int64

func nextID(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), seq.Add(1))
}

func httpSender(client *http.Client, url string, body []byte) pace.Op {
	sig := webhooktest.Sign(secret, body)
	return func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "code_scanning_alert")
		req.Header.Set("X-GitHub-Delivery", nextID("r"))
		req.Header.Set("X-GitHub-Hook-ID", "4242")
		req.Header.Set("X-Hub-Signature-256", sig)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
}

func publishSender(js jetstream.JetStream, body []byte) pace.Op {
	return func(ctx context.Context) error {
		id := nextID("b")
		m := &nats.Msg{Subject: stream.WebhookSubject("code_scanning_alert"), Data: body, Header: nats.Header{}}
		m.Header.Set(stream.HeaderMsgID, id)
		m.Header.Set(stream.HeaderEvent, "code_scanning_alert")
		m.Header.Set(stream.HeaderDelivery, id)
		m.Header.Set(stream.HeaderHookID, "4242")
		m.Header.Set(stream.HeaderReceivedAt, time.Now().UTC().Format(time.RFC3339Nano))
		m.Header.Set(stream.HeaderOrigin, stream.OriginWebhook)
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := js.PublishMsg(ctx, m, jetstream.WithExpectStream(stream.EventsStream))
		return err
	}
}
