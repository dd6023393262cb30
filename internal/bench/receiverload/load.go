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
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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

// result of one measurement.
type result struct {
	n        int
	errs     int
	elapsed  time.Duration
	lat      []time.Duration
	firstErr string
}

func (r result) rate() float64 { return float64(r.n) / r.elapsed.Seconds() }

func (r result) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	s := slices.Clone(r.lat)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

var seq atomic.Int64

func nextID(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), seq.Add(1))
}

type sender func(ctx context.Context) error

func httpSender(client *http.Client, url string, body []byte) sender {
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

func publishSender(js jetstream.JetStream, body []byte) sender {
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

// closedLoop runs conc workers sending back to back for d.
func closedLoop(ctx context.Context, send sender, conc int, d time.Duration) result {
	var (
		mu  sync.Mutex
		res result
		wg  sync.WaitGroup
	)
	start := time.Now()
	end := start.Add(d)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			errs, firstErr := 0, ""
			for time.Now().Before(end) {
				t := time.Now()
				if err := send(ctx); err != nil {
					errs++
					if firstErr == "" {
						firstErr = err.Error()
					}
					continue
				}
				lat = append(lat, time.Since(t))
			}
			mu.Lock()
			res.lat = append(res.lat, lat...)
			res.errs += errs
			if res.firstErr == "" {
				res.firstErr = firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.n = len(res.lat)
	return res
}

// openLoop sends at a fixed rate for d; latency counts from each request's
// scheduled time, so a stall shows in the tail (no coordinated omission).
func openLoop(ctx context.Context, send sender, rate int, d time.Duration, tick func(elapsed time.Duration)) result {
	var (
		mu  sync.Mutex
		res result
		wg  sync.WaitGroup
	)
	interval := time.Second / time.Duration(rate)
	total := int(d / interval)
	start := time.Now()
	nextTick := time.Duration(0)
	for i := 0; i < total; i++ {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		if el := time.Since(start); tick != nil && el >= nextTick {
			tick(el)
			nextTick += 5 * time.Second
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := send(ctx)
			l := time.Since(due)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.errs++
				if res.firstErr == "" {
					res.firstErr = err.Error()
				}
				return
			}
			res.lat = append(res.lat, l)
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.n = len(res.lat)
	return res
}
