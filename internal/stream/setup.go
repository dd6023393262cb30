package stream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Actions of a Change.
const (
	ActionCreated   = "created"
	ActionUpdated   = "updated"
	ActionUnchanged = "unchanged"
	// ActionDiffers: the stream or bucket exists with another configuration
	// and was left as it is (CreateOnly, or the update was refused).
	ActionDiffers = "differs"
	// ActionMissing: the stream or bucket does not exist and was not
	// created (the create was refused).
	ActionMissing = "missing"
)

// Change is what Apply did to one stream or bucket of the layout.
type Change struct {
	Kind   string // "stream" or "bucket"
	Name   string
	Action string // one of the Action constants
	// Fields are the settings that differed (ActionUpdated, ActionDiffers).
	Fields []string
	// Lacks is what an existing stream lacks to carry this version's
	// messages (a subject, a source); a subset of what Fields name.
	Lacks []string
}

// String is the change as one line, e.g. "updated stream GHAS_EVENTS
// (max bytes)".
func (c Change) String() string {
	s := c.Action + " " + c.Kind + " " + c.Name
	if len(c.Fields) > 0 {
		s += " (" + strings.Join(c.Fields, ", ") + ")"
	}
	return s
}

// Ensure creates or updates every stream and bucket of the layout (with
// CreateOnly: creates what is missing and leaves what exists as it is). It
// is idempotent. It is Apply without the report; the binaries call
// WaitEnsure.
func Ensure(ctx context.Context, js jetstream.JetStream, l Layout) error {
	_, err := Apply(ctx, js, l)
	return err
}

// Apply creates every stream and bucket of the layout that is missing and
// updates every one whose configuration differs from the layout's (never,
// with CreateOnly), and reports what it did to each, in layout order. An
// update is asked for only when something differs, so a user that may not
// update the layout can apply an unchanged one. A request the server
// refuses the connection's user fails at once with ErrRefused. It is the
// setup step (processor -setup).
func Apply(ctx context.Context, js jetstream.JetStream, l Layout) ([]Change, error) {
	return apply(ctx, js, l, applyOpts{create: true, update: !l.CreateOnly})
}

// applyOpts are the requests apply may make: create what is missing,
// update what differs. What it may not is reported as ActionMissing or
// ActionDiffers.
type applyOpts struct {
	create, update bool
}

func apply(ctx context.Context, js jetstream.JetStream, l Layout, o applyOpts) ([]Change, error) {
	var changes []Change
	nc := js.Conn()
	// Buckets first: GHAS_FINDINGS sources the stream of ghas_findings.
	for _, cfg := range l.BucketConfigs() {
		name := "KV_" + cfg.Bucket
		c, err := applyOne(ctx, nc, js, o, "bucket", cfg.Bucket, name,
			func(have jetstream.StreamConfig) ([]string, []string) { return bucketDiff(have, cfg), nil },
			func(ctx context.Context) error {
				_, err := js.CreateKeyValue(ctx, cfg)
				if errors.Is(err, jetstream.ErrBucketExists) {
					return jetstream.ErrStreamNameAlreadyInUse
				}
				return err
			},
			func(ctx context.Context) error { _, err := js.UpdateKeyValue(ctx, cfg); return err })
		if err != nil {
			return changes, fmt.Errorf("ensure bucket %s: %w", cfg.Bucket, err)
		}
		changes = append(changes, c)
	}
	for _, cfg := range l.StreamConfigs() {
		c, err := applyOne(ctx, nc, js, o, "stream", cfg.Name, cfg.Name,
			func(have jetstream.StreamConfig) ([]string, []string) {
				return streamDiff(have, cfg), lacking(have, cfg)
			},
			func(ctx context.Context) error { _, err := js.CreateStream(ctx, cfg); return err },
			func(ctx context.Context) error { _, err := js.UpdateStream(ctx, cfg); return err })
		if err != nil {
			return changes, fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
		}
		changes = append(changes, c)
	}
	return changes, nil
}

// applyOne brings the stream name (of a stream, or of a bucket) to the
// layout: diff compares what exists, create and update ask the server
// (create answers jetstream.ErrStreamNameAlreadyInUse when it exists).
func applyOne(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, o applyOpts, kind, display, name string,
	diff func(have jetstream.StreamConfig) (fields, lacks []string), create, update func(ctx context.Context) error) (Change, error) {
	c := Change{Kind: kind, Name: display}
	have, err := streamConfig(ctx, js, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if !o.create {
			c.Action = ActionMissing
			return c, nil
		}
		err = guarded(ctx, nc, "$JS.API.STREAM.CREATE."+name, true, create)
		if err == nil {
			c.Action = ActionCreated
			return c, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return c, err
		}
		// Created meanwhile by another binary: compare with that one.
		have, err = streamConfig(ctx, js, name)
	}
	if err != nil {
		return c, err
	}
	c.Fields, c.Lacks = diff(have)
	switch {
	case len(c.Fields) == 0 && len(c.Lacks) == 0:
		c.Action = ActionUnchanged
	case !o.update:
		c.Action = ActionDiffers
	default:
		if err := guarded(ctx, nc, "$JS.API.STREAM.UPDATE."+name, false, update); err != nil {
			return c, err
		}
		c.Action, c.Lacks = ActionUpdated, nil
	}
	return c, nil
}

// streamConfig is the configuration of the stream name as the server holds
// it; jetstream.ErrStreamNotFound when there is none.
func streamConfig(ctx context.Context, js jetstream.JetStream, name string) (jetstream.StreamConfig, error) {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return jetstream.StreamConfig{}, err
	}
	return s.CachedInfo().Config, nil
}

// streamDiff names the settings of want that have differs in: the ones the
// layout sets, compared exactly (a subject that is no longer the layout's
// is a difference too).
func streamDiff(have, want jetstream.StreamConfig) []string {
	var d []string
	add := func(differs bool, field string) {
		if differs {
			d = append(d, field)
		}
	}
	add(!sameSet(have.Subjects, want.Subjects), "subjects")
	add(!sameSources(have.Sources, want.Sources), "sources")
	add(!sameRePublish(have.RePublish, want.RePublish), "republish")
	add(have.Description != want.Description, "description")
	add(have.Retention != want.Retention, "retention")
	add(have.Storage != want.Storage, "storage")
	add(have.Replicas != max(want.Replicas, 1), "replicas")
	add(have.MaxAge != want.MaxAge, "max age")
	add(want.Duplicates != 0 && have.Duplicates != want.Duplicates, "duplicate window")
	add(have.Discard != want.Discard, "discard")
	add(have.MaxBytes != want.MaxBytes, "max bytes")
	return d
}

// bucketDiff names the settings of want that the bucket's stream (have)
// differs in.
func bucketDiff(have jetstream.StreamConfig, want jetstream.KeyValueConfig) []string {
	var d []string
	add := func(differs bool, field string) {
		if differs {
			d = append(d, field)
		}
	}
	add(have.Description != want.Description, "description")
	add(have.MaxMsgsPerSubject != int64(max(want.History, 1)), "history")
	add(have.MaxAge != want.TTL, "ttl")
	add(have.Storage != want.Storage, "storage")
	add(have.Replicas != max(want.Replicas, 1), "replicas")
	return d
}

// lacking names what a stream needs to carry this version's messages and
// have lacks: a subject, a source (GHAS_FINDINGS copies the findings from
// KV ghas_findings), the republish. More than the layout asks for (a newer
// version's subjects) lacks nothing.
func lacking(have, want jetstream.StreamConfig) []string {
	var d []string
	for _, s := range want.Subjects {
		if !slices.Contains(have.Subjects, s) {
			d = append(d, "subject "+s)
		}
	}
	for _, w := range want.Sources {
		if !slices.ContainsFunc(have.Sources, func(h *jetstream.StreamSource) bool { return sameSource(h, w) }) {
			d = append(d, "source "+w.Name)
		}
	}
	if want.RePublish != nil && !sameRePublish(have.RePublish, want.RePublish) {
		d = append(d, "republish")
	}
	return d
}

func sameSet(a, b []string) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(s string) bool { return !slices.Contains(b, s) })
}

func sameSources(a, b []*jetstream.StreamSource) bool {
	if len(a) != len(b) {
		return false
	}
	for _, s := range b {
		if !slices.ContainsFunc(a, func(h *jetstream.StreamSource) bool { return sameSource(h, s) }) {
			return false
		}
	}
	return true
}

// sameSource compares what the layout sets of a source: the stream and
// its subject transforms (in any order).
func sameSource(a, b *jetstream.StreamSource) bool {
	if a == nil || b == nil || a.Name != b.Name || a.FilterSubject != b.FilterSubject || len(a.SubjectTransforms) != len(b.SubjectTransforms) {
		return false
	}
	for _, t := range b.SubjectTransforms {
		if !slices.Contains(a.SubjectTransforms, t) {
			return false
		}
	}
	return true
}

func sameRePublish(a, b *jetstream.RePublish) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
