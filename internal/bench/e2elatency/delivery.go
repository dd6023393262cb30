package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/webhook/webhooktest"
)

// template is the sample created code scanning alert split around its
// alert number and updated_at, so a delivery is built by concatenation.
type template struct{ head, mid, tail []byte }

const (
	numMark     = 987654321987654
	updatedMark = "UPDATED-AT-MARK"
)

func loadTemplate() (template, error) {
	dir, err := webhooktest.Dir()
	if err != nil {
		return template{}, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "code_scanning_alert", "created.payload.json"))
	if err != nil {
		return template{}, err
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		return template{}, err
	}
	alert, ok := doc["alert"].(map[string]any)
	if !ok {
		return template{}, errors.New("sample has no alert object")
	}
	repo, ok := doc["repository"].(map[string]any)
	if !ok {
		return template{}, errors.New("sample has no repository object")
	}
	alert["number"] = numMark
	alert["updated_at"] = updatedMark
	repo["id"] = repoID
	out, err := json.Marshal(doc)
	if err != nil {
		return template{}, err
	}
	n := []byte(strconv.Itoa(numMark))
	u := []byte(`"` + updatedMark + `"`)
	if bytes.Count(out, n) != 1 || bytes.Count(out, u) != 1 {
		return template{}, errors.New("markers not unique in the sample")
	}
	var t template
	i, j := bytes.Index(out, n), bytes.Index(out, u)
	if i > j {
		return template{}, errors.New("expected alert.number before alert.updated_at")
	}
	t.head, t.mid, t.tail = out[:i], out[i+len(n):j], out[j+len(u):]
	return t, nil
}

// body is the delivery of alert number num updated at t.
func (t template) body(num int64, at time.Time) []byte {
	b := make([]byte, 0, len(t.head)+len(t.mid)+len(t.tail)+48)
	b = append(b, t.head...)
	b = strconv.AppendInt(b, num, 10)
	b = append(b, t.mid...)
	b = append(b, '"')
	b = at.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	return append(b, t.tail...)
}

// sender posts signed deliveries of the template to the receiver.
type sender struct {
	client *http.Client
	url    string
	tmpl   template
	epoch  time.Time
}

// send posts the delivery of alert number num and returns the 202 time;
// sent is called just before the request goes out.
func (s *sender) send(ctx context.Context, num int64, sent func()) (time.Time, error) {
	body := s.tmpl.body(num, s.epoch.Add(time.Duration(num)*time.Millisecond))
	delivery := fmt.Sprintf("e2e-%d-%d", s.epoch.UnixNano(), num)
	req := webhooktest.NewRequest(s.url, "code_scanning_alert", delivery, body, secret)
	req = req.WithContext(ctx)
	sent()
	resp, err := s.client.Do(req)
	if err != nil {
		return time.Time{}, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	at := time.Now()
	if resp.StatusCode != http.StatusAccepted {
		return at, fmt.Errorf("status %d", resp.StatusCode)
	}
	return at, nil
}

// openLoop sends n deliveries at rate per second, alert numbers p.base...
func openLoop(ctx context.Context, s *sender, p *probe, rate int) time.Duration {
	interval := time.Second / time.Duration(rate)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range p.due {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		p.due[i].Store(due.UnixNano())
		wg.Add(1)
		go func() {
			defer wg.Done()
			at, err := s.send(ctx, p.base+int64(i), func() { p.sent[i].Store(time.Now().UnixNano()) })
			if err != nil {
				if p.errs.Add(1) == 1 {
					p.firstErr.Store(err.Error())
				}
				return
			}
			p.accepted[i].Store(at.UnixNano())
		}()
	}
	wg.Wait()
	return time.Since(start)
}
