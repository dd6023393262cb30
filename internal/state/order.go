package state

import (
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// EventTime is the time a document speaks for: its finding's lastFoundOn,
// which the transformation sets from GitHub's own timestamps (updated_at,
// fixed_at, dismissed_at …) or, where the payload has none, from the time
// GitHub sent the event. Zero when absent or unparsable.
func EventTime(d *finding.Document) time.Time {
	f := d.Finding()
	if f == nil || f.LastFoundOn == nil {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, *f.LastFoundOn)
	if err != nil {
		return time.Time{}
	}
	return t
}

// Newer is the one rule that orders two versions of a finding: it reports
// whether incoming should replace stored. Later event time wins; at the
// same time what the REST API says wins over a webhook (it is the complete
// view: a webhook lacks a rule's security severity, say); then a closing
// status beats an opening one (GitHub stamps a close with its time, a
// reopen carries none); then the content hash decides, so that any arrival
// order of the same events ends in the same state.
//
// A snapshot from a complete pull is not ordered by this rule against
// state stored before the snapshot was taken: see Authoritative.
func Newer(incoming, stored *finding.Document) bool {
	if stored == nil || stored.FindingKey == "" {
		return true
	}
	ti, ts := EventTime(incoming), EventTime(stored)
	if !ti.Equal(ts) {
		return ti.After(ts)
	}
	if oi, os := incoming.Origin == stream.OriginReconcile, stored.Origin == stream.OriginReconcile; oi != os {
		return oi
	}
	ri, rs := statusRank(incoming), statusRank(stored)
	if ri != rs {
		return ri > rs
	}
	return incoming.ContentHash() >= stored.ContentHash()
}

// Authoritative reports whether a version read from GitHub replaces the
// stored one whatever their timestamps say: the stored revision was
// written no later than snapshotRev, the last revision of the findings
// bucket before GitHub's data was read. Such a stored version cannot
// describe a change GitHub's answer does not already include, so the
// answer is the truth, even where the stored document is dated ahead of it
// (by a fallback clock, or by hand) or was built by an older map. A stored
// revision after snapshotRev may be a change made during the pull, and is
// ordered by Newer. snapshotRev 0 means "not a snapshot".
func Authoritative(storedRev, snapshotRev uint64) bool {
	return snapshotRev > 0 && storedRev <= snapshotRev
}

// statusRank breaks ties between events with the same time: a closing
// status beats an opening one.
func statusRank(d *finding.Document) int {
	f := d.Finding()
	if f == nil {
		return 0
	}
	switch f.FindingStatus {
	case finding.StatusActive:
		return 1
	case finding.StatusDismissed:
		return 2
	case finding.StatusFixed:
		return 3
	case finding.StatusRemoved:
		return 4
	}
	return 0
}
