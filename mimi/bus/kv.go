package bus

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// IsConflict reports a failed compare-and-set on a KV bucket: Create of a
// key that exists, Update or Delete with a stale revision. jetstream's
// Create wraps ErrKeyExists only on its first attempt: on a key that was
// deleted, it retries with the delete marker's revision and returns the
// server's wrong-last-sequence error bare, which replicated streams report
// with a code (10164) that ErrKeyExists does not match. The codes are
// therefore checked too.
func IsConflict(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jsErrCodeWrongLastSequenceReplicated)
}

// jsErrCodeWrongLastSequenceReplicated is the wrong-last-sequence error of
// a replicated stream.
const jsErrCodeWrongLastSequenceReplicated = 10164

// ReadCache keeps what was read from a KV bucket in memory, so that keys
// read on every message (number bindings, capabilities) cost no round
// trip. A watch on the bucket drops a key as soon as anyone, on any
// instance, writes it; a read that raced with a write is not kept. Until
// Run has the watch going, and after it stops, reads go to the bucket.
// Absent keys are remembered too.
type ReadCache struct {
	kv  jetstream.KeyValue
	max int

	mu      sync.Mutex
	live    bool
	gen     uint64 // counts writes seen by the watch
	entries map[string]cached
}

type cached struct {
	entry jetstream.KeyValueEntry // nil: the key does not exist
}

// NewReadCache returns a cache of at most max keys over kv.
func NewReadCache(kv jetstream.KeyValue, max int) *ReadCache {
	return &ReadCache{kv: kv, max: max, entries: map[string]cached{}}
}

// Get reads key like jetstream.KeyValue.Get: ErrKeyNotFound when it does
// not exist.
func (c *ReadCache) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	c.mu.Lock()
	e, hit := c.entries[key]
	live, gen := c.live, c.gen
	c.mu.Unlock()
	if hit {
		if e.entry == nil {
			return nil, jetstream.ErrKeyNotFound
		}
		return e.entry, nil
	}
	entry, err := c.kv.Get(ctx, key)
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, err
	}
	if live {
		c.mu.Lock()
		if c.live && c.gen == gen {
			if len(c.entries) >= c.max {
				for k := range c.entries { // evict one at random
					delete(c.entries, k)
					break
				}
			}
			c.entries[key] = cached{entry: entry}
		}
		c.mu.Unlock()
	}
	return entry, err
}

// Run watches the bucket and keeps the cache true to it until ctx is done.
// While the watch is down (the server away), the cache is off and reads go
// to the bucket; the watch is started again with backoff.
func (c *ReadCache) Run(ctx context.Context) error {
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		if c.watch(ctx) {
			delay = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
	return nil
}

// watch runs one watch until it ends and reports whether it got going.
func (c *ReadCache) watch(ctx context.Context) bool {
	w, err := c.kv.WatchAll(ctx, jetstream.UpdatesOnly())
	if err != nil {
		return false
	}
	defer w.Stop()
	c.setLive(true)
	defer c.setLive(false)
	for {
		select {
		case <-ctx.Done():
			return true
		case e, ok := <-w.Updates():
			if !ok {
				return true
			}
			if e == nil {
				continue // end of initial values (none with UpdatesOnly)
			}
			c.mu.Lock()
			c.gen++
			delete(c.entries, e.Key())
			c.mu.Unlock()
		}
	}
}

func (c *ReadCache) setLive(live bool) {
	c.mu.Lock()
	c.live = live
	c.gen++
	clear(c.entries)
	c.mu.Unlock()
}

// Len is how many keys the cache holds.
func (c *ReadCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
