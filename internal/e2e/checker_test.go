package e2e

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// violations collects what the random-fault test found wrong.
type violations struct {
	mu   sync.Mutex
	list []string
}

func (v *violations) add(format string, args ...any) {
	v.mu.Lock()
	v.list = append(v.list, fmt.Sprintf(format, args...))
	v.mu.Unlock()
}

func (v *violations) all() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.list...)
}

// findingMsg is one finding message of GHAS_FINDINGS: the KV revision it
// was copied from, the revision it replaced, and its message id.
type findingMsg struct {
	key  string
	rev  uint64
	prev uint64
	id   string
}

// readAll passes every message of a stream (of the filter, if any) to fn,
// in order, and returns once the ordered consumer has none pending.
func readAll(ctx context.Context, js jetstream.JetStream, name, filter string, headersOnly bool, fn func(jetstream.Msg) error) error {
	cfg := jetstream.OrderedConsumerConfig{HeadersOnly: headersOnly}
	if filter != "" {
		cfg.FilterSubjects = []string{filter}
	}
	cons, err := js.OrderedConsumer(ctx, name, cfg)
	if err != nil {
		return err
	}
	for idle := 0; ; {
		batch, err := cons.FetchNoWait(1000)
		if err != nil {
			return err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			if err := fn(m); err != nil {
				return err
			}
		}
		info, err := cons.Info(ctx)
		if err == nil && info.NumPending == 0 && n == 0 {
			return nil
		}
		if n == 0 {
			if idle++; idle > 300 {
				return fmt.Errorf("%s: nothing more for 30 s (%v)", name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// readFindingMessages reads the headers of every finding message of
// GHAS_FINDINGS, by the KV revision each was copied from; dups are the
// revisions copied more than once.
func readFindingMessages(ctx context.Context, js jetstream.JetStream) (out map[uint64]findingMsg, dups []uint64, err error) {
	out = map[uint64]findingMsg{}
	err = readAll(ctx, js, stream.FindingsStream, stream.FindingsPrefix+">", true, func(m jetstream.Msg) error {
		h := m.Headers()
		src := strings.Fields(h.Get("Nats-Stream-Source"))
		if len(src) < 2 || src[0] != stream.FindingsKVStream {
			return fmt.Errorf("finding message %s without its KV source: %q", m.Subject(), h.Get("Nats-Stream-Source"))
		}
		rev, err := strconv.ParseUint(src[1], 10, 64)
		if err != nil {
			return fmt.Errorf("source header %q: %w", h.Get("Nats-Stream-Source"), err)
		}
		prev, _ := strconv.ParseUint(h.Get(stream.HeaderPreviousRevision), 10, 64)
		if _, dup := out[rev]; dup {
			dups = append(dups, rev)
		}
		out[rev] = findingMsg{key: h.Get(stream.HeaderFindingKey), rev: rev, prev: prev, id: h.Get(stream.HeaderMsgID)}
		return nil
	})
	return out, dups, err
}

// countDeliveries counts the messages of GHAS_EVENTS per delivery id.
func countDeliveries(ctx context.Context, js jetstream.JetStream) (map[string]int, error) {
	out := map[string]int{}
	err := readAll(ctx, js, stream.EventsStream, "", true, func(m jetstream.Msg) error {
		out[m.Headers().Get(stream.HeaderDelivery)]++
		return nil
	})
	return out, err
}

// endState is what the checker compares.
type endState struct {
	gh       *ghtest.Server
	repos    []ghtest.Repository
	removed  map[string]bool // keys of alerts deleted from GitHub
	accepted map[string]int  // delivery ids answered 202
	poisons  map[string]bool // delivery ids of the poison events injected
	sink     *sinkRecorder
	// imports: per repository, every id an accepted import listed: true
	// when the latest lists it (ACTIVE), else false (FIXED if stored).
	imports map[int64]map[string]bool
}

// checkEndState compares the system's end state with the fake GitHub and
// what the test sent, and adds every difference to v:
//   - KV holds each GitHub alert with its status, each deleted one as
//     REMOVED (if it ever got there), and no other key;
//   - every KV revision of every finding has its message in GHAS_FINDINGS
//     (the chain of previous revisions from the current one is complete);
//   - the sink's last accepted delivery of every finding is its current
//     revision, and no finding went backwards at the sink;
//   - every webhook answered 202 is stored in GHAS_EVENTS exactly once;
//   - GHAS_DLQ holds each injected poison event once, and nothing else.
func checkEndState(t *testing.T, ctx context.Context, js jetstream.JetStream, s endState, v *violations) {
	t.Helper()
	kv, err := js.KeyValue(ctx, stream.FindingsBucket)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, r := range s.repos {
		for _, kind := range ghtest.Kinds() {
			for _, a := range s.gh.Alerts(r.ID, kind) {
				want[finding.Key(kindDataset[kind], r.ID, a.Number)] = a.FindingStatus()
			}
		}
	}
	keys, err := kv.Keys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		t.Fatal(err)
	}
	msgs, dups, err := readFindingMessages(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	for _, rev := range dups {
		v.add("KV revision %d (%s) has more than one message on %s", rev, msgs[rev].key, stream.FindingsStream)
	}
	inKV := map[string]bool{}
	seen := map[string]bool{} // imported keys
	for _, key := range keys {
		inKV[key] = true
		e, err := kv.Get(ctx, key)
		if err != nil {
			v.add("KV %s: %v", key, err)
			continue
		}
		doc, err := finding.Decode(e.Value())
		if err != nil || doc.Finding() == nil {
			v.add("KV %s: undecodable document: %v", key, err)
			continue
		}
		status := doc.Finding().FindingStatus
		if repo, tool, id, ok := importedKey(key); ok {
			seen[key] = true
			active, listed := s.imports[parseID(repo)][id]
			wantStatus := map[bool]string{true: finding.StatusActive, false: finding.StatusFixed}[active]
			switch {
			case tool != importTool || !listed:
				v.add("KV holds %s, which no accepted import listed", key)
			case status != wantStatus:
				v.add("KV %s is %s, the imports say %s", key, status, wantStatus)
			}
		}
		switch w, ok := want[key]; {
		case ok && status != w:
			v.add("KV %s is %s, GitHub says %s", key, status, w)
		case !ok && s.removed[key] && status != finding.StatusRemoved:
			v.add("KV %s is %s, the alert was deleted from GitHub (want %s)", key, status, finding.StatusRemoved)
		case !ok && !s.removed[key] && !seen[key]:
			v.add("KV holds %s, which GitHub never had", key)
		}
		// Its messages: the current revision's, and every one before it.
		m, ok := msgs[e.Revision()]
		if !ok || m.key != key {
			v.add("%s: revision %d has no message on %s", key, e.Revision(), stream.FindingsStream)
			continue
		}
		later := []uint64{e.Revision()} // the revisions after a missing one
		for p := m.prev; p != 0; {
			pm, ok := msgs[p]
			if !ok || pm.key != key {
				// How many revisions came after it tells whether the
				// bucket's history (8 a key) dropped it before the source
				// copied it.
				v.add("%s: revision %d (before %d) has no message on %s; %d later revisions have one: %v; still in the bucket: %v",
					key, p, e.Revision(), stream.FindingsStream, len(later), later, bucketRevisions(ctx, kv, key))
				break
			}
			later = append(later, p)
			p = pm.prev
		}
		// The sink's last word on it.
		last, ok := s.sink.last(key)
		switch {
		case !ok:
			v.add("%s never reached the sink (current revision %d, %s)", key, e.Revision(), m.id)
		case last.id != m.id:
			v.add("%s: the sink's last delivery is %s, the current revision is %s", key, last.id, m.id)
		}
	}
	for key, status := range want {
		if !inKV[key] {
			v.add("GitHub alert %s (%s) is not in KV", key, status)
		}
	}
	// An id only earlier imports listed may be missing: the processor
	// applies complete scans in scan-time order, and a scan processed after
	// a later one of its scope (its message redelivered after a processor
	// died holding it) changes nothing.
	for repo, ids := range s.imports {
		for id, latest := range ids {
			if key := fmt.Sprintf("%s.%d.%s.%s", finding.SAST, repo, importTool, id); latest && !inKV[key] {
				v.add("imported finding %s, listed by its repository's latest import, is not in KV", key)
			}
		}
	}
	_, _, _, backwards := s.sink.stats()
	for _, b := range backwards {
		v.add("%s", b)
	}

	stored, err := countDeliveries(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	for guid, n := range s.accepted {
		if n > 0 && stored[guid] != 1 {
			v.add("delivery %s answered 202 is stored %d times in %s", guid, stored[guid], stream.EventsStream)
		}
	}
	checkDLQ(t, ctx, js, s.poisons, v)
}

// checkDLQ wants each poison event in GHAS_DLQ once, and nothing else.
func checkDLQ(t *testing.T, ctx context.Context, js jetstream.JetStream, poisons map[string]bool, v *violations) {
	t.Helper()
	seen := map[string]int{}
	err := readAll(ctx, js, stream.DLQStream, "", false, func(m jetstream.Msg) error {
		h := m.Headers()
		d := h.Get(stream.HeaderDelivery)
		if !poisons[d] {
			v.add("GHAS_DLQ holds %s (delivery %q, %s): %s", m.Subject(), d, h.Get(stream.HeaderOriginalSubject), h.Get(stream.HeaderError))
			return nil
		}
		seen[d]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for id := range poisons {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if seen[id] != 1 {
			v.add("poison event %s is in GHAS_DLQ %d times, want once", id, seen[id])
		}
	}
}

func parseID(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// bucketRevisions is the revisions of key the bucket still keeps.
func bucketRevisions(ctx context.Context, kv jetstream.KeyValue, key string) []uint64 {
	hist, err := kv.History(ctx, key, jetstream.MetaOnly())
	if err != nil {
		return nil
	}
	var out []uint64
	for _, e := range hist {
		out = append(out, e.Revision())
	}
	return out
}
