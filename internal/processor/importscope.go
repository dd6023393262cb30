package processor

import (
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
	"github.com/ghas-relay/ghas-relay/internal/imports"
	"github.com/ghas-relay/ghas-relay/internal/scope"
	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// Imports and the scope: an imported finding is a SAST finding of its
// repository, decided by the same filters as GitHub's (type, severity,
// repository name, archived, fork, custom properties). One out of scope is
// never stored; a stored one that leaves the scope is written once as
// REMOVED with removedReason out-of-scope; one that enters it again is
// ACTIVE at the next import that lists it.

// scopedImport decides an imported finding's next document; out reports
// that the scope decided it. nil when it is out of scope and not stored (or stored as REMOVED out
// of scope already), or when its repository's custom properties are not
// known and it is new; the REMOVED (out-of-scope) document when a stored
// finding left the scope; else the lifecycle's merge.
func scopedImport(filter *scope.Filter, facts scope.Repository, next, stored *finding.Document) (d *finding.Document, out bool) {
	v := filter.Finding(next, facts)
	outside := stored == nil || stored.Finding() == nil || isOutOfScope(stored)
	if v != scope.In && outside {
		return nil, true
	}
	d = stickyTriage(imports.Lifecycle(next, stored), stored) // decisionapply.go
	if v == scope.Out {
		if d != nil {
			d = removedOutOfScope(d)
		}
		return d, true
	}
	return d, false
}

// leftScope is a stored imported finding, which a complete scan no longer
// lists, written as REMOVED (out-of-scope) when its repository or its type
// left the scope; nil when the scope keeps it (or it is REMOVED already).
func leftScope(filter *scope.Filter, facts scope.Repository, stored *finding.Document, now time.Time) *finding.Document {
	if stored == nil || stored.Finding() == nil || stored.Finding().FindingStatus == finding.StatusRemoved {
		return nil
	}
	if filter.Finding(stored, facts) != scope.Out {
		return nil
	}
	d := removedOutOfScope(stored)
	d.Origin = stream.OriginImport
	d.ObservedAt = now.UTC().Format(time.RFC3339)
	return d
}
