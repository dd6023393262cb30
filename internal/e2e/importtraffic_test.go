package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/ghclient/ghtest"
)

// importTool is the tool of the random-fault test's imports; its findings
// have keys sast.<repository id>.chaos.<id>.
const importTool = "chaos"

// importToken is the receiver's IMPORT_TOKENS in the random-fault test.
const importToken = "random-faults-import-token"

// importTraffic posts complete scans of one tool (CSV) for random
// repositories, one at a time. Each is posted again until it is answered
// 202 (accepted, or duplicate when an earlier attempt was stored), so the
// latest import of every repository is known: its ids must end ACTIVE, and
// ids only earlier imports listed FIXED.
type importTraffic struct {
	rng    *rand.Rand
	repos  []ghtest.Repository
	url    string
	client *http.Client

	mu       sync.Mutex
	accepted map[int64][]map[string]bool // repository → the id sets of its accepted imports, in order
	posts    map[int]int                 // HTTP status (0: no answer) → count
}

func newImportTraffic(seed int64, repos []ghtest.Repository, receiver string) *importTraffic {
	return &importTraffic{
		rng: rand.New(rand.NewPCG(uint64(seed), 0x1a407)), repos: repos, url: receiver + "/imports",
		client: &http.Client{Timeout: 10 * time.Second}, accepted: map[int64][]map[string]bool{}, posts: map[int]int{},
	}
}

// run posts an import every 1–3 s until chaos ends; the import in progress
// then is posted until it is accepted or ctx ends.
func (it *importTraffic) run(chaos, ctx context.Context) {
	for chaos.Err() == nil {
		select {
		case <-chaos.Done():
			return
		case <-time.After(time.Duration(1000+it.rng.IntN(2000)) * time.Millisecond):
		}
		r := it.repos[it.rng.IntN(len(it.repos))]
		ids := map[string]bool{}
		for i := range 12 {
			if it.rng.IntN(100) < 55 {
				ids[fmt.Sprintf("chaos-%d", i)] = true
			}
		}
		it.post(ctx, r, ids)
	}
}

// post sends one complete scan until it is answered 202.
func (it *importTraffic) post(ctx context.Context, r ghtest.Repository, ids map[string]bool) {
	var body bytes.Buffer
	body.WriteString("id,title,path,line,severity\n")
	var sorted []string
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Strings(sorted)
	for i, id := range sorted {
		fmt.Fprintf(&body, "%s,Chaos finding %s,src/chaos/%s.go,%d,high\n", id, id, id, 10+i)
	}
	q := url.Values{"repository": {r.FullName}, "format": {"csv"}, "tool": {importTool}}
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, it.url+"?"+q.Encode(), bytes.NewReader(body.Bytes()))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+importToken)
		req.Header.Set("Content-Type", "text/csv")
		status := 0
		if resp, err := it.client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			status = resp.StatusCode
		}
		it.mu.Lock()
		it.posts[status]++
		if status == http.StatusAccepted {
			it.accepted[r.ID] = append(it.accepted[r.ID], ids)
		}
		it.mu.Unlock()
		if status == http.StatusAccepted || (status/100 == 4 && status != http.StatusTooManyRequests) {
			return // a 4xx is the test's own mistake: it shows in the summary
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// expected is the status every imported id of every repository must end
// with: ACTIVE when the repository's latest import lists it, else FIXED.
func (it *importTraffic) expected() map[int64]map[string]bool {
	it.mu.Lock()
	defer it.mu.Unlock()
	out := map[int64]map[string]bool{}
	for repo, imports := range it.accepted {
		m := map[string]bool{}
		for _, ids := range imports {
			for id := range ids {
				m[id] = false
			}
		}
		for id := range imports[len(imports)-1] {
			m[id] = true
		}
		out[repo] = m
	}
	return out
}

func (it *importTraffic) summary() string {
	it.mu.Lock()
	defer it.mu.Unlock()
	n := 0
	for _, l := range it.accepted {
		n += len(l)
	}
	return fmt.Sprintf("%d imports accepted; posts %v", n, it.posts)
}

// importedKey splits an imported finding's key sast.<repo>.<tool>.<id>.
func importedKey(key string) (repo, tool, id string, ok bool) {
	parts := strings.Split(key, ".")
	if len(parts) != 4 {
		return "", "", "", false
	}
	return parts[1], parts[2], parts[3], true
}
