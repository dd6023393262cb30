package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ghas-relay/ghas-relay/internal/stream"
)

// probe is one measured run: the scheduled send time, 202 time and finding
// arrival times of each delivery, indexed by alert number - base.
type probe struct {
	base     int64
	due      []atomic.Int64 // unix ns
	sent     []atomic.Int64 // the request left the generator's goroutine
	accepted []atomic.Int64
	ordered  []atomic.Int64
	core     []atomic.Int64
	evStored []atomic.Int64 // the event's stream timestamp on GHAS_EVENTS
	fStored  []atomic.Int64 // the finding's stream timestamp on GHAS_FINDINGS
	dupes    atomic.Int64   // findings seen twice on the ordered consumer
	strays   atomic.Int64   // findings of no delivery of this run
	got      atomic.Int64   // distinct findings on the ordered consumer
	errs     atomic.Int64
	firstErr atomic.Value
}

func newProbe(base int64, n int) *probe {
	return &probe{base: base, due: make([]atomic.Int64, n), sent: make([]atomic.Int64, n), accepted: make([]atomic.Int64, n),
		ordered: make([]atomic.Int64, n), core: make([]atomic.Int64, n),
		evStored: make([]atomic.Int64, n), fStored: make([]atomic.Int64, n)}
}

// active is the probe findings are attributed to; nil between runs.
type active struct{ p atomic.Pointer[probe] }

// index finds the delivery of a finding key (<type>.<repo>.<number>) or a
// delivery GUID (e2e-<epoch>-<number>): both end in the alert number.
func (a *active) index(id string) (*probe, int, bool) {
	p := a.p.Load()
	if p == nil {
		return nil, 0, false
	}
	num, err := strconv.ParseInt(id[max(strings.LastIndexByte(id, '.'), strings.LastIndexByte(id, '-'))+1:], 10, 64)
	if err != nil || num < p.base || num >= p.base+int64(len(p.due)) {
		p.strays.Add(1)
		return p, 0, false
	}
	return p, int(num - p.base), true
}

func (a *active) onOrdered(m jetstream.Msg, now int64) {
	p, i, ok := a.index(m.Headers().Get(stream.HeaderFindingKey))
	if !ok {
		return
	}
	if p.ordered[i].CompareAndSwap(0, now) {
		p.got.Add(1)
		if md, err := m.Metadata(); err == nil {
			p.fStored[i].Store(md.Timestamp.UnixNano())
		}
	} else {
		p.dupes.Add(1)
	}
}

func (a *active) onEvent(m jetstream.Msg) {
	p := a.p.Load()
	if p == nil {
		return
	}
	d := m.Headers().Get(stream.HeaderDelivery)
	if !strings.HasPrefix(d, "e2e-") {
		return
	}
	if _, i, ok := a.index(d); ok {
		if md, err := m.Metadata(); err == nil {
			p.evStored[i].Store(md.Timestamp.UnixNano())
		}
	}
}

func (a *active) onCore(m *nats.Msg, now int64) {
	if p, i, ok := a.index(m.Header.Get(stream.HeaderFindingKey)); ok {
		p.core[i].CompareAndSwap(0, now)
	}
}

// subscribe attaches the ordered consumer on the findings, the core
// subscription, and a headers-only ordered consumer on GHAS_EVENTS that
// gives each event's store time.
func subscribe(ctx context.Context, e *env, a *active) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for _, f := range stops {
			f()
		}
	}
	cons, err := e.js.OrderedConsumer(ctx, stream.FindingsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{stream.FindingsPrefix + ">"},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("ordered consumer: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { a.onOrdered(m, time.Now().UnixNano()) })
	if err != nil {
		return nil, fmt.Errorf("consume: %w", err)
	}
	stops = append(stops, cc.Stop)
	evCons, err := e.js.OrderedConsumer(ctx, stream.EventsStream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverNewPolicy,
		HeadersOnly:   true,
	})
	if err != nil {
		stop()
		return nil, fmt.Errorf("ordered consumer: %w", err)
	}
	ec, err := evCons.Consume(a.onEvent)
	if err != nil {
		stop()
		return nil, fmt.Errorf("consume: %w", err)
	}
	stops = append(stops, ec.Stop)
	sub, err := e.nc.Subscribe(stream.FindingsPrefix+">", func(m *nats.Msg) {
		a.onCore(m, time.Now().UnixNano())
	})
	if err != nil {
		stop()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	stops = append(stops, func() { _ = sub.Unsubscribe() })
	return stop, nil
}
