package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Counters is a KV bucket of integer counters that every instance updates
// by compare-and-set, so that instances count together (the gateway's
// limits, docs/architecture.md, bus contract). Each write carries its own
// TTL, so a counter lives as long as the window it counts and no longer;
// the bucket itself has no TTL.
type Counters struct {
	bucket string
	js     jetstream.JetStream
	stream jetstream.Stream
	prefix string // "$KV.<bucket>."
}

// OpenCounters creates or updates the counters bucket (idempotently, with
// the bus's replicas) and returns it.
func (b *Bus) OpenCounters(ctx context.Context, bucket string) (*Counters, error) {
	cfg := jetstream.KeyValueConfig{
		Bucket:      bucket,
		Description: "limits shared by the gateway instances",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    b.cfg.Replicas,
		// Per-write TTLs need the stream to allow them, which the
		// client only asks for together with limit markers.
		LimitMarkerTTL: time.Second,
	}
	if _, err := b.KeyValue(ctx, cfg); err != nil {
		return nil, fmt.Errorf("bus: bucket %s: %w", bucket, err)
	}
	st, err := b.js.Stream(ctx, "KV_"+bucket)
	if err != nil {
		return nil, fmt.Errorf("bus: bucket %s: %w", bucket, err)
	}
	return &Counters{bucket: bucket, js: b.js, stream: st, prefix: "$KV." + bucket + "."}, nil
}

// Bucket is the bucket's name.
func (c *Counters) Bucket() string { return c.bucket }

// Get reads a counter: its value and the revision to pass to Set. A key
// that does not exist, was deleted or expired reads as 0, with the
// revision of its delete marker if one is left (0 otherwise).
func (c *Counters) Get(ctx context.Context, key string) (value int64, rev uint64, err error) {
	m, err := c.stream.GetLastMsgForSubject(ctx, c.prefix+key)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return 0, 0, nil
	case err != nil:
		return 0, 0, fmt.Errorf("bus: counter %s: %w", key, err)
	}
	if m.Header.Get(kvOperationHeader) != "" || m.Header.Get(jetstream.MarkerReasonHeader) != "" || len(m.Data) == 0 {
		return 0, m.Sequence, nil
	}
	v, err := strconv.ParseInt(string(m.Data), 10, 64)
	if err != nil {
		// Not written by Set: counted from zero again rather than
		// blocking the key for ever.
		return 0, m.Sequence, nil
	}
	return v, m.Sequence, nil
}

// kvOperationHeader marks a KV delete or purge.
const kvOperationHeader = "KV-Operation"

// Set writes value under key if the key's revision is still rev (0: the
// key holds nothing), and returns the new revision. The write expires
// after ttl (at least a second). A stale rev fails with an error for
// which IsConflict is true.
func (c *Counters) Set(ctx context.Context, key string, value int64, rev uint64, ttl time.Duration) (uint64, error) {
	ttl = max(ttl, time.Second)
	m := &nats.Msg{Subject: c.prefix + key, Data: strconv.AppendInt(make([]byte, 0, 20), value, 10)}
	ack, err := c.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(rev), jetstream.WithMsgTTL(ttl))
	if err != nil {
		if IsConflict(err) {
			return 0, fmt.Errorf("bus: counter %s: %w", key, jetstream.ErrKeyRevisionMismatch)
		}
		return 0, fmt.Errorf("bus: counter %s: %w", key, err)
	}
	return ack.Sequence, nil
}
