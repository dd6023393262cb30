package index

import (
	"encoding/json"
	"time"

	"github.com/ghas-relay/ghas-relay/internal/finding"
)

// Time is a time the index holds: Unix seconds, 0 when unknown. It is
// written as RFC 3339 (UTC), or null.
type Time uint32

// IsZero reports an unknown time.
func (t Time) IsZero() bool { return t == 0 }

// AppendRFC3339 appends t in RFC 3339 (UTC).
func (t Time) AppendRFC3339(b []byte) []byte {
	return time.Unix(int64(t), 0).UTC().AppendFormat(b, time.RFC3339)
}

// MarshalJSON writes t as an RFC 3339 string, or null.
func (t Time) MarshalJSON() ([]byte, error) {
	if t == 0 {
		return []byte("null"), nil
	}
	b := append(make([]byte, 0, 22), '"')
	return append(t.AppendRFC3339(b), '"'), nil
}

// UnmarshalJSON reads an RFC 3339 string or null.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*t = 0
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*t = Time(parseTime([]byte(s)))
	return nil
}

// Time is t as a time.Time (the zero time when unknown).
func (t Time) Time() time.Time {
	if t == 0 {
		return time.Time{}
	}
	return time.Unix(int64(t), 0).UTC()
}

// item is entry id as the list shows it; its priority is stored in prio
// (nil: allocated).
func (ix *Index) item(id int32, prio []finding.Priority) Item {
	e := &ix.entries[id]
	it := Item{
		FindingKey: e.key, Type: Types[e.typ], Name: ix.strs[e.name], Repository: ix.repos[e.repo].fullName,
		Owner: ix.strs[e.owner], Source: ix.strs[e.source], Status: Statuses[e.status], Severity: Severities[e.sev],
		RuleID: ix.strs[e.rule], FirstFoundOn: Time(e.first), LastFoundOn: Time(e.last), LastFixedOn: Time(e.fixedAt),
	}
	if e.score >= 0 {
		var p *finding.Priority
		if len(prio) > 0 {
			p = &prio[0]
		} else {
			p = new(finding.Priority)
		}
		p.Score, p.Factors = int(e.score), ix.factors[e.factors]
		if p.Factors == nil {
			p.Factors = []finding.Factor{}
		}
		it.Priority = p
	}
	return it
}

// Get returns the finding key's list item; false when the index holds no
// document for it.
func (ix *Index) Get(key string) (Item, bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	id, ok := ix.byKey[key]
	if !ok || !ix.entries[id].live {
		return Item{}, false
	}
	return ix.item(id, nil), true
}
