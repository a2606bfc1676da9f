package answers

import (
	"hash/maphash"
	"sync"
	"time"
)

// Key names one server transaction. Two independent 64-bit hashes make a
// collision, which would answer a new request with another's answer,
// practically impossible even at hundreds of thousands of live entries.
type Key struct{ a, b uint64 }

var seedA, seedB = maphash.MakeSeed(), maphash.MakeSeed()

// KeyOf names the transaction a request belongs to (RFC 3261 17.2.3): the
// branch of its top Via, the Via's sent-by, and the method. Callers pass
// the Call-ID, CSeq and From tag as branch when the branch lacks the RFC
// 3261 magic cookie.
func KeyOf(branch, sentBy, method string) Key {
	var h maphash.Hash
	h.SetSeed(seedA)
	write(&h, branch, sentBy, method)
	a := h.Sum64()
	h.SetSeed(seedB)
	write(&h, branch, sentBy, method)
	return Key{a: a, b: h.Sum64()}
}

func write(h *maphash.Hash, parts ...string) {
	for _, p := range parts {
		h.WriteString(p)
		h.WriteByte(0)
	}
}

// Tag derives a stable To tag from the key, so every copy of an answer
// carries the same tag without storing it.
func (k Key) Tag() uint64 { return k.a ^ k.b>>1 }

// Answer is what the edge answered a request with.
type Answer struct {
	Status     uint16
	RetryAfter uint16 // seconds; 0 for none
	Reason     string // "" means the standard phrase for Status
}

// State is what the cache knows about a transaction.
type State uint8

const (
	Unseen   State = iota // first copy: the caller handles it and calls Finish
	Pending               // a copy is being handled: drop this one
	Answered              // answer with the stored Answer
)

// entry holds no pointers so that the garbage collector need not scan the
// maps, which hold up to the cap of entries under load.
type entry struct {
	expires int64 // unix nanoseconds
	status  uint16
	retry   uint16
	reason  uint32 // index+1 into generation.reasons; 0: standard phrase
}

type generation struct {
	entries map[Key]entry
	reasons []string
	started int64
}

func newGeneration(now int64, hint int) *generation {
	return &generation{entries: make(map[Key]entry, hint), started: now}
}

// Cache remembers answers for TTL, holding at most Max entries. It keeps two
// generations: new entries go to the current one, lookups see both, and the
// older one is dropped whole when the current one has lived TTL or holds
// half of Max. So memory is bounded by Max whatever the rate, and under a
// rate above Max/(2*TTL) the oldest answers are forgotten early (counted in
// Stats.Evicted) rather than memory growing.
type Cache struct {
	ttl int64
	max int

	mu      sync.Mutex
	cur     *generation
	prev    *generation
	evicted uint64
	now     func() time.Time
}

// New returns a cache keeping answers for ttl, at most max entries.
func New(ttl time.Duration, max int) *Cache {
	if max < 2 {
		max = 2
	}
	c := &Cache{ttl: int64(ttl), max: max, now: time.Now}
	n := c.now().UnixNano()
	c.cur = newGeneration(n, 0)
	c.prev = newGeneration(n, 0)
	return c
}

// Begin looks the transaction up. For Unseen it records the transaction as
// pending; the caller must then call Finish (or Forget).
func (c *Cache) Begin(k Key) (State, Answer) {
	now := c.now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rotate(now)
	for _, g := range [2]*generation{c.cur, c.prev} {
		e, ok := g.entries[k]
		if !ok || e.expires <= now {
			continue
		}
		if e.status == 0 {
			return Pending, Answer{}
		}
		return Answered, g.answer(e)
	}
	c.cur.entries[k] = entry{expires: now + c.ttl}
	return Unseen, Answer{}
}

// Finish stores the answer the transaction got, for TTL from now.
func (c *Cache) Finish(k Key, a Answer) {
	now := c.now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rotate(now)
	delete(c.prev.entries, k)
	e := entry{expires: now + c.ttl, status: a.Status, retry: a.RetryAfter}
	if a.Reason != "" {
		c.cur.reasons = append(c.cur.reasons, a.Reason)
		e.reason = uint32(len(c.cur.reasons))
	}
	c.cur.entries[k] = e
}

// Forget drops a pending transaction that will get no answer worth
// repeating (one shed under overload), so a retransmission is handled anew.
func (c *Cache) Forget(k Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.cur.entries, k)
	delete(c.prev.entries, k)
}

// Stats is a snapshot for metrics.
type Stats struct {
	Entries int
	Evicted uint64 // entries dropped before their TTL because of the cap
}

// Stats reports the number of live entries (expired ones not yet dropped
// included) and early evictions so far.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Entries: len(c.cur.entries) + len(c.prev.entries), Evicted: c.evicted}
}

func (g *generation) answer(e entry) Answer {
	a := Answer{Status: e.status, RetryAfter: e.retry}
	if e.reason > 0 && int(e.reason) <= len(g.reasons) {
		a.Reason = g.reasons[e.reason-1]
	}
	return a
}

// rotate drops the previous generation once nothing in it can still be
// live (the current one is TTL old) or when the current one is full.
func (c *Cache) rotate(now int64) {
	full := len(c.cur.entries) >= c.max/2
	if now-c.cur.started < c.ttl && !full {
		return
	}
	if full {
		for _, e := range c.prev.entries {
			if e.expires > now {
				c.evicted++
			}
		}
	}
	c.prev = c.cur
	c.cur = newGeneration(now, len(c.prev.entries)/2)
}
