package transform

import (
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/priority"
)

// PriorityKey is the key of the priority table in KV ghas_maps.
const PriorityKey = "priority"

// DefaultPriorityJSON is the embedded default priority table.
func DefaultPriorityJSON() []byte {
	b, _ := defaultMaps.ReadFile("maps/priority.json") // embedded: cannot fail
	return b
}

// Priority returns the priority table in use.
func (m *Maps) Priority() *priority.Table { return m.priority }

// WithPriority returns a copy of m with the priority table replaced.
func (m *Maps) WithPriority(t *priority.Table) *Maps {
	c := *m
	if t != nil {
		c.priority = t
	}
	return &c
}

// applyPriority loads the priority table from a ghas_maps entry: a deleted
// key returns to the default, a table that does not validate leaves the
// last good one in use. It reports whether the table in use changed.
func (w *Watcher) applyPriority(e jetstream.KeyValueEntry, log *slog.Logger) bool {
	if e.Operation() != jetstream.KeyValuePut {
		t, _ := priority.Parse(DefaultPriorityJSON())
		w.cur.Store(w.cur.Load().WithPriority(t))
		log.Warn("map deleted; using the embedded default")
		return true
	}
	t, err := priority.Parse(e.Value())
	if err != nil {
		w.reject(PriorityKey, err, log)
		return false
	}
	w.cur.Store(w.cur.Load().WithPriority(t))
	log.Info("map loaded")
	return true
}
