package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// sinkLog is the local HTTP sink. It takes finding documents and OCSF
// events alike, and records each finding revision it got by its
// idempotency key (the revision's message id, <findingKey>:<previous
// revision>-<content hash>), the OCSF activities, and one OCSF event to
// show.
type sinkLog struct {
	mu         sync.Mutex
	keys       map[string]bool
	activities map[string]int
	sample     []byte // an OCSF Close event, else the first event
}

func (s *sinkLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var buf bytes.Buffer
	_, _ = io.Copy(&buf, io.LimitReader(r.Body, 1<<20))
	var ev struct {
		ClassUID     int    `json:"class_uid"`
		ActivityName string `json:"activity_name"`
	}
	_ = json.Unmarshal(buf.Bytes(), &ev)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil {
		s.keys, s.activities = map[string]bool{}, map[string]int{}
	}
	s.keys[r.Header.Get("Idempotency-Key")] = true
	if ev.ClassUID != 0 {
		s.activities[ev.ActivityName]++
		if s.sample == nil || (ev.ActivityName == "Close" && !bytes.Contains(s.sample, []byte(`"activity_name":"Close"`))) {
			s.sample = slices.Clone(buf.Bytes())
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *sinkLog) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}

// has reports whether the sink got the revision of d now stored.
func (s *sinkLog) has(d finding.Document) bool {
	prefix, suffix := d.FindingKey+":", "-"+d.ContentHash()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.keys {
		if strings.HasPrefix(k, prefix) && strings.HasSuffix(k, suffix) {
			return true
		}
	}
	return false
}

// print shows what the sink got in OCSF mode: the activities and one event.
func (s *sinkLog) print(w io.Writer, format string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if format != "ocsf" || s.sample == nil {
		return
	}
	var parts []string
	for a, n := range s.activities {
		parts = append(parts, fmt.Sprintf("%d × %s", n, a))
	}
	slices.Sort(parts)
	fmt.Fprintf(w, "\nThe local sink received OCSF 1.6.0 finding events (SINK_FORMAT=ocsf): %s. One of them:\n", strings.Join(parts, ", "))
	var out bytes.Buffer
	if json.Indent(&out, s.sample, "  ", "  ") == nil {
		fmt.Fprintf(w, "  %s\n", out.String())
	}
}

// printOwners shows each repository asset's owner, business entity and
// tags, from custom properties and topics.
func printOwners(w io.Writer, docs []finding.Document) {
	seen := map[string]bool{}
	var lines []string
	for _, d := range docs {
		a := d.AssetDetail
		if seen[a.FullName] || (a.Ownership == nil && len(a.Tags) == 0) {
			continue
		}
		seen[a.FullName] = true
		owner, entity := "—", "—"
		if a.Ownership != nil {
			if a.Ownership.Owner != "" {
				owner = a.Ownership.Owner
			}
			if a.Ownership.BusinessEntity != "" {
				entity = a.Ownership.BusinessEntity
			}
		}
		lines = append(lines, fmt.Sprintf("  %-22s owner %-16s business entity %-10s tags %s", a.FullName, owner, entity, strings.Join(a.Tags, " ")))
	}
	if len(lines) == 0 {
		return
	}
	slices.Sort(lines)
	fmt.Fprintln(w, "\nOwners and tags of the assets (custom properties and topics):")
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}
