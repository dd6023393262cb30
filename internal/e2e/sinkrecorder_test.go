package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// Modes of the recording sink.
const (
	sinkUp   = iota
	sink5xx  // 500 and 503 in turn
	sinkDown // the connection is closed without an answer
)

// sinkDelivery is one POST the sink accepted (answered 200).
type sinkDelivery struct {
	id   string // Idempotency-Key: the finding message's id, <key>:<previous revision>-<hash>
	prev uint64 // the previous revision the id names
}

// sinkRecorder is the HTTP sink of the random-fault test: it records
// every delivery it accepts per finding key, notes a key that goes
// backwards (a revision older than one it accepted before), and can be
// told to fail.
type sinkRecorder struct {
	mu         sync.Mutex
	mode       int
	flip       int
	accepted   map[string][]sinkDelivery
	highest    map[string]sinkDelivery // per key, the accepted delivery of the highest revision
	refused    int
	duplicates int
	backwards  []string
}

func newSinkRecorder() *sinkRecorder {
	return &sinkRecorder{accepted: map[string][]sinkDelivery{}, highest: map[string]sinkDelivery{}}
}

func (s *sinkRecorder) setMode(m int) {
	s.mu.Lock()
	s.mode = m
	s.mu.Unlock()
}

// prevOf reads the previous revision from a finding message id.
func prevOf(id string) (uint64, bool) {
	i := strings.LastIndexByte(id, ':')
	if i < 0 {
		return 0, false
	}
	rev, _, ok := strings.Cut(id[i+1:], "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(rev, 10, 64)
	return n, err == nil
}

func (s *sinkRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	key, id := r.Header.Get(stream.HeaderFindingKey), r.Header.Get("Idempotency-Key")
	s.mu.Lock()
	mode := s.mode
	if mode != sinkUp {
		s.refused++
	}
	s.flip++
	flip := s.flip
	s.mu.Unlock()
	switch mode {
	case sink5xx:
		w.WriteHeader([]int{http.StatusInternalServerError, http.StatusServiceUnavailable}[flip%2])
		return
	case sinkDown:
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	prev, ok := prevOf(id)
	if key == "" || !ok {
		// Not a finding revision: the test fails on it at the end.
		s.mu.Lock()
		s.backwards = append(s.backwards, fmt.Sprintf("delivery without a finding key or revision id: key %q, id %q", key, id))
		s.mu.Unlock()
		w.WriteHeader(http.StatusOK)
		return
	}
	s.mu.Lock()
	list := s.accepted[key]
	for _, d := range list {
		if d.id == id {
			s.duplicates++
			break
		}
	}
	if h, ok := s.highest[key]; ok && prev < h.prev {
		s.backwards = append(s.backwards, fmt.Sprintf("%s went backwards at the sink: %s after %s", key, id, h.id))
	} else {
		s.highest[key] = sinkDelivery{id: id, prev: prev}
	}
	s.accepted[key] = append(list, sinkDelivery{id: id, prev: prev})
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// last is the last delivery the sink accepted for key.
func (s *sinkRecorder) last(key string) (sinkDelivery, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.accepted[key]
	if len(list) == 0 {
		return sinkDelivery{}, false
	}
	return list[len(list)-1], true
}

// stats is the sink's counters for the test's log.
func (s *sinkRecorder) stats() (accepted, refused, duplicates int, backwards []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.accepted {
		accepted += len(l)
	}
	return accepted, s.refused, s.duplicates, append([]string(nil), s.backwards...)
}
