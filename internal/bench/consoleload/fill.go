package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// world describes the findings the bench writes: n findings across repos
// repositories, their owners, rules and sources, deterministic for a seed.
type world struct {
	n, repos int
	rng      *rand.Rand
	// rev[i] is finding i's current KV revision, doc[i] its state.
	rev    []uint64
	status []string
	sev    []string
	score  []int
	now    time.Time
}

var (
	sources = []string{"GitHub Advanced Security - Code Security", "GitHub Advanced Security - Secret Protection", "Anthropic - Claude Security"}
	sevs    = []string{finding.SeverityCritical, finding.SeverityHigh, finding.SeverityMedium, finding.SeverityLow, finding.SeverityInfo}
	base    = map[string]int{finding.SeverityCritical: 90, finding.SeverityHigh: 70, finding.SeverityMedium: 45, finding.SeverityLow: 20, finding.SeverityInfo: 5}
)

// rules are 300 rules per type: names repeat as in real data (a rule's
// description, an advisory's summary, a secret type).
func ruleName(typ string, r int) (id, name string) {
	switch typ {
	case finding.SCA:
		return fmt.Sprintf("GHSA-%04d-bench", r), fmt.Sprintf("Prototype pollution in package-%d before 4.%d.0", r, r%20)
	case finding.Secret:
		return fmt.Sprintf("secret_type_%d", r), fmt.Sprintf("Provider %d API key", r)
	}
	return fmt.Sprintf("lang/rule-%d", r), fmt.Sprintf("Rule %d: untrusted data reaches a sensitive sink", r)
}

// owner of repository r: 200 teams, some repositories without an owner.
func owner(r int) string {
	if r%17 == 0 {
		return ""
	}
	return fmt.Sprintf("team-%03d", r%200)
}

// key of finding i: its repository and number; every tenth repository's
// findings come from an import tool as well.
func (w *world) key(i int) (key, typ string, repo int, source string) {
	repo = i % w.repos
	typ = []string{finding.SAST, finding.SCA, finding.Secret}[i%3]
	source = sources[0]
	switch {
	case typ == finding.Secret:
		source = sources[1]
	case repo%10 == 0 && i%2 == 0:
		source = sources[2]
		return fmt.Sprintf("%s.%d.claude.c%d", typ, 100000+repo, i), typ, repo, source
	}
	return finding.Key(typ, int64(100000+repo), int64(i)), typ, repo, source
}

// doc is finding i as the processor stores it, with status st, severity
// sv and score sc.
func (w *world) doc(i int, st, sv string, sc int) finding.Document {
	key, typ, repo, source := w.key(i)
	rid, name := ruleName(typ, i%300)
	first := w.now.Add(-time.Duration(i%(120*24)) * time.Hour)
	last := first.Add(time.Duration(i%48) * time.Hour)
	ts := func(t time.Time) *string { s := t.UTC().Format(time.RFC3339); return &s }
	f := finding.Finding{
		ExternalFindingID: strconv.Itoa(i), Name: name,
		Description:   "When untrusted input reaches this sink an attacker can change what the program does. This text stands for the rule's full description, which is most of a document's bytes: several sentences of explanation, examples of vulnerable code and the way to fix it.",
		FindingURL:    fmt.Sprintf("https://github.com/org-%d/repo-%d/security/code-scanning/%d", repo%50, repo, i),
		FindingStatus: st, SourceState: "open", Severity: sv, FirstFoundOn: ts(first), LastFoundOn: ts(last),
		DetectionMethod: "CodeQL", RuleID: rid,
		Location:    &finding.Location{Path: fmt.Sprintf("src/module%d/file%d.go", i%40, i%700), StartLine: 10 + i%500, EndLine: 12 + i%500, Ref: "refs/heads/main", CommitSHA: "0123456789abcdef0123456789abcdef01234567"},
		References:  []string{"https://cwe.mitre.org/data/definitions/79.html", "https://owasp.org/www-community/attacks/xss/"},
		FindingType: &finding.FindingType{Vulnerability: &finding.Vulnerability{CWEIDs: []string{"CWE-79"}, OWASPTop10IDs: []string{}}},
		Priority:    &finding.Priority{Score: sc, Factors: []finding.Factor{{Name: "severity", Value: sv, Points: base[sv]}, {Name: "exposure", Value: "public", Points: sc - base[sv]}}},
	}
	if st == finding.StatusFixed {
		f.LastFixedOn = ts(last)
	}
	d := finding.Document{SchemaVersion: 1, FindingKey: key, FindingTypeName: map[string]string{finding.SAST: finding.TypeSAST, finding.SCA: finding.TypeSCA, finding.Secret: finding.TypeSecret}[typ],
		VendorName: "GitHub", VendorProductName: "GitHub Code Security", Source: source, Origin: "reconcile", ObservedAt: w.now.Format(time.RFC3339),
		ExternalAssetID: fmt.Sprintf("https://github.com/org-%d/repo-%d", repo%50, repo), VendorAssetID: strconv.Itoa(100000 + repo),
		AssetDetail: finding.AssetDetail{Name: fmt.Sprintf("repo-%d", repo), FullName: fmt.Sprintf("org-%d/repo-%d", repo%50, repo), AssetClass: "Application", AssetSubClass: "Code Repository",
			RepositoryAssetClass: finding.RepositoryAssetClass{RepoURL: fmt.Sprintf("https://github.com/org-%d/repo-%d", repo%50, repo), Visibility: "private", Owner: fmt.Sprintf("org-%d", repo%50), DefaultBranch: "main"},
			Tags:                 []string{"topic:service", "environment:production"}},
		Findings: []finding.Finding{f}}
	if o := owner(repo); o != "" {
		d.AssetDetail.Ownership = &finding.Ownership{Owner: o, BusinessEntity: "Unit " + strconv.Itoa(repo%7)}
	}
	return d
}

// writer publishes finding revisions to KV as the processor does: the
// previous revision expected, the headers GHAS_FINDINGS copies.
type writer struct {
	js      jetstream.JetStream
	w       *world
	pending []jetstream.PubAckFuture
	index   []int
	inBatch map[int]bool
}

func (wr *writer) put(ctx context.Context, i int, st, sv string, sc int) error {
	w := wr.w
	if wr.inBatch == nil {
		wr.inBatch = map[int]bool{}
	}
	if wr.inBatch[i] {
		// Its revision is not known until the ack: wait for the batch.
		if err := wr.flush(ctx); err != nil {
			return err
		}
	}
	wr.inBatch[i] = true
	d := w.doc(i, st, sv, sc)
	data, hash, err := d.Encode()
	if err != nil {
		return err
	}
	prev := w.rev[i]
	msg := &nats.Msg{Subject: stream.FindingsKVPrefix + d.FindingKey, Header: nats.Header{}, Data: data}
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(prev, 10))
	msg.Header.Set(stream.HeaderMsgID, d.FindingKey+":"+strconv.FormatUint(prev, 10)+"-"+hash)
	msg.Header.Set(stream.HeaderFindingKey, d.FindingKey)
	msg.Header.Set(stream.HeaderContentHash, hash)
	msg.Header.Set(stream.HeaderPreviousRevision, strconv.FormatUint(prev, 10))
	if prev != 0 {
		msg.Header.Set(stream.HeaderPreviousStatus, w.status[i])
	}
	f, err := wr.js.PublishMsgAsync(msg)
	if err != nil {
		return err
	}
	w.status[i], w.sev[i], w.score[i] = st, sv, sc
	wr.pending = append(wr.pending, f)
	wr.index = append(wr.index, i)
	if len(wr.pending) >= 4096 {
		return wr.flush(ctx)
	}
	return nil
}

// flush waits for every pending ack and records the revisions.
func (wr *writer) flush(ctx context.Context) error {
	for j, f := range wr.pending {
		select {
		case ack := <-f.Ok():
			wr.w.rev[wr.index[j]] = ack.Sequence
		case err := <-f.Err():
			return fmt.Errorf("publish %s: %w", f.Msg().Subject, err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	wr.pending, wr.index = wr.pending[:0], wr.index[:0]
	clear(wr.inBatch)
	return nil
}

// fill writes the n findings: a quarter fixed or dismissed, the rest open.
func fill(ctx context.Context, js jetstream.JetStream, w *world) error {
	wr := &writer{js: js, w: w}
	for i := range w.n {
		st := finding.StatusActive
		switch i % 8 {
		case 1:
			st = finding.StatusFixed
		case 5:
			st = finding.StatusDismissed
		}
		sv := sevs[w.rng.IntN(len(sevs))]
		sc := base[sv] + w.rng.IntN(11)
		if st != finding.StatusActive {
			sc = 0
		}
		if err := wr.put(ctx, i, st, sv, min(sc, 100)); err != nil {
			return err
		}
	}
	return wr.flush(ctx)
}

// change writes c revisions of random findings: fixes, reopenings,
// dismissals, severity and priority changes.
func change(ctx context.Context, js jetstream.JetStream, w *world, c int) error {
	wr := &writer{js: js, w: w}
	for range c {
		i := w.rng.IntN(w.n)
		st, sv, sc := w.status[i], w.sev[i], w.score[i]
		switch w.rng.IntN(5) {
		case 0:
			if st == finding.StatusActive {
				st, sc = finding.StatusFixed, 0
			} else {
				st, sc = finding.StatusActive, base[sv]
			}
		case 1:
			st, sc = finding.StatusDismissed, 0
		case 2:
			sv = sevs[w.rng.IntN(len(sevs))]
			if st == finding.StatusActive {
				sc = base[sv]
			}
		default:
			if st == finding.StatusActive {
				sc = min(100, max(0, sc+w.rng.IntN(21)-10))
			} else {
				st, sc = finding.StatusActive, base[sv]
			}
		}
		if err := wr.put(ctx, i, st, sv, sc); err != nil {
			return err
		}
	}
	return wr.flush(ctx)
}
