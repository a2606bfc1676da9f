package bus

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Counters are integer counts that every instance adds to at once (the
// gateway's limits, docs/architecture.md, bus contract). They are
// JetStream counters: a publish carries only the amount to add
// (Nats-Incr) and the server adds it to the subject's total and answers
// with the new total, so instances never conflict and never retry. A
// count lives in the stream of its window's length, "<name>-<seconds>s",
// on the subject "mimigw.<stream>.<key>" (under mimigw.>, which the
// gateway's NATS user may publish to: deploy/nats), which keeps the last
// total of each key and drops it two windows after its last change
// (counter streams allow no per-message TTL).
type Counters struct {
	b    *Bus
	name string

	mu      sync.Mutex
	streams map[time.Duration]string // window -> subject prefix, once the stream stands
}

// Counters returns the counters named name (see ValidCountersName); their
// streams are created (idempotently, with the bus's replicas) on the first
// count of each window length.
func (b *Bus) Counters(name string) *Counters {
	return &Counters{b: b, name: name, streams: map[time.Duration]string{}}
}

// ValidCountersName reports whether counters may be named name: their
// streams, "<name>-<seconds>s" for windows up to a day, must be valid
// stream names.
func ValidCountersName(name string) bool { return name != "" && validName(name+"-86400s") }

// Stream is the name of the stream holding the counts of windows of
// length window.
func (c *Counters) Stream(window time.Duration) string {
	return c.name + "-" + strconv.FormatInt(int64(window/time.Second), 10) + "s"
}

// Add adds n (negative: takes away) to the count under key, in the stream
// of window's length, and returns the count after it. A key that holds
// nothing, or whose last change is more than two windows old, counts from
// 0.
func (c *Counters) Add(ctx context.Context, key string, n int64, window time.Duration) (int64, error) {
	if !dottedTokens(key, "-_=", 1024) {
		return 0, fmt.Errorf("bus: counter %.80q: not a key", key)
	}
	prefix, err := c.stream(ctx, window)
	if err != nil {
		return 0, err
	}
	m := &nats.Msg{Subject: prefix + key, Header: nats.Header{incrHeader: {strconv.FormatInt(n, 10)}}}
	ack, err := c.b.js.PublishMsg(ctx, m)
	if err != nil {
		return 0, fmt.Errorf("bus: counter %s: %w", key, err)
	}
	v, err := strconv.ParseInt(ack.Value, 10, 64)
	if err != nil {
		// Only a server without counters answers without a total.
		return 0, fmt.Errorf("bus: counter %s: the server answered the count %q: %w", key, ack.Value, err)
	}
	return v, nil
}

// counterPrefix begins the counters' subjects.
const counterPrefix = "mimigw."

// incrHeader carries a counter's increment.
const incrHeader = "Nats-Incr"

// stream creates the stream for window on first use and returns its
// subject prefix.
func (c *Counters) stream(ctx context.Context, window time.Duration) (string, error) {
	if window < time.Second {
		return "", fmt.Errorf("bus: counters %s: window %s is under a second", c.name, window)
	}
	if !ValidCountersName(c.name) {
		return "", fmt.Errorf("bus: counters %.80q: not a stream name", c.name)
	}
	c.mu.Lock()
	p, ok := c.streams[window]
	c.mu.Unlock()
	if ok {
		return p, nil
	}
	// Not under the lock: creating is idempotent, and a bus that does not
	// answer must not hold every other count behind this one's deadline.
	name := c.Stream(window)
	sc := jetstream.StreamConfig{
		Name:              name,
		Description:       "limits shared by the gateway instances: counts of " + window.String() + " windows",
		Subjects:          []string{counterPrefix + name + ".>"},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Replicas:          c.b.cfg.Replicas,
		AllowMsgCounter:   true,
		MaxMsgsPerSubject: 1,
		MaxAge:            2 * window,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		Discard:           jetstream.DiscardOld,
	}
	if err := c.b.retry(ctx, "stream "+name, func(ctx context.Context) error {
		_, err := c.b.js.CreateOrUpdateStream(ctx, sc)
		return err
	}); err != nil {
		return "", fmt.Errorf("bus: counters %s: %w", name, err)
	}
	p = counterPrefix + name + "."
	c.mu.Lock()
	c.streams[window] = p
	c.mu.Unlock()
	return p, nil
}
