package main

import (
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// latencies are the outcome of one latency run.
type latencies struct {
	n, errors     int
	p50, p99, max time.Duration
}

// measure runs o.clients closed-loop clients for o.dur, each requesting
// next() again as soon as an answer is read in full.
func measure(o options, next func() string) latencies {
	var mu sync.Mutex
	var all []time.Duration
	errors := 0
	end := time.Now().Add(o.dur)
	var wg sync.WaitGroup
	for range o.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			var mine []time.Duration
			bad := 0
			for time.Now().Before(end) {
				mu.Lock()
				u := next()
				mu.Unlock()
				start := time.Now()
				resp, err := client.Get(u)
				if err != nil {
					bad++
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					bad++
					continue
				}
				mine = append(mine, time.Since(start))
			}
			mu.Lock()
			all = append(all, mine...)
			errors += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(all)
	l := latencies{n: len(all), errors: errors}
	if len(all) > 0 {
		l.p50 = all[len(all)/2]
		l.p99 = all[min(len(all)-1, len(all)*99/100)]
		l.max = all[len(all)-1]
	}
	return l
}
