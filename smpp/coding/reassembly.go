package coding

import (
	"container/list"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrBadPart reports a part whose concatenation numbers are impossible
// (total 0, part 0, part above the total).
var ErrBadPart = errors.New("coding: bad concatenated part")

// Key identifies one concatenated message. Add fills Ref, Total and Wide
// from the part; the caller sets Source and Destination (the addresses as
// the SMSC gave them).
type Key struct {
	Source, Destination string
	Ref                 uint16
	Total               uint8
	Wide                bool
}

// Message is a reassembled inbound message.
type Message struct {
	Key Key
	// Text is the parts' texts joined in part order. For an incomplete
	// message it holds only the parts that arrived.
	Text string
	// Parts are the parts that arrived, in part order.
	Parts []Part
	// Incomplete: some parts never arrived (see Missing); the message was
	// released by timeout, memory pressure, or a conflicting part.
	Incomplete bool
	// Missing lists the part numbers that never arrived.
	Missing []uint8
	// First and Last are when the first and the latest part arrived.
	First, Last time.Time
}

// ReassemblyStats are counters for metrics.
type ReassemblyStats struct {
	Partial    int    // partial messages held
	Bytes      int    // memory they are accounted for
	Completed  uint64 // messages released complete
	Expired    uint64 // released incomplete after the timeout
	Evicted    uint64 // released incomplete to keep within the bounds
	Duplicates uint64 // parts ignored as already received
}

// Accounting: an estimate of what a part and a group hold on the heap, so
// that MaxBytes bounds memory rather than text length alone.
const (
	partOverhead  = 64
	groupOverhead = 256
)

type group struct {
	key         Key
	parts       []Part // by Seq-1; present[i] says whether it arrived
	present     []bool
	have        int
	bytes       int
	first, last time.Time
	elem        *list.Element
}

// recent remembers a message released complete, so that a part the SMSC
// delivers again after completion is recognised as a duplicate instead of
// starting a new partial message.
type recent struct {
	key   Key
	sums  []uint64 // fingerprint of each part's content, by Seq-1
	until time.Time
	elem  *list.Element
}

// Reassembler joins the parts of concatenated inbound messages (8-bit or
// 16-bit UDH, or SAR). Parts may arrive in any order and more than once.
// Memory is bounded by ReassemblyConfig: when a bound would be exceeded,
// the partial messages idle longest are released incomplete, never
// dropped. It starts no goroutines: the caller passes the time to Add and
// calls Expire (after each Add, or on a ticker) to collect what timed out
// or was released under pressure. It is safe for concurrent use.
type Reassembler struct {
	cfg ReassemblyConfig

	mu      sync.Mutex
	groups  map[Key]*group
	order   *list.List // of *group, least recently added to first
	bytes   int
	outbox  []*Message // released incomplete, waiting for Expire
	recents map[Key]*recent
	recentQ *list.List // of *recent, oldest first
	stats   ReassemblyStats
}

// NewReassembler returns a Reassembler with cfg's bounds (zero fields take
// the defaults).
func NewReassembler(cfg ReassemblyConfig) (*Reassembler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Reassembler{
		cfg:     cfg.withDefaults(),
		groups:  make(map[Key]*group),
		order:   list.New(),
		recents: make(map[Key]*recent),
		recentQ: list.New(),
	}, nil
}

// Add takes one part and returns the message when it is complete.
//
// A part without concatenation is a whole message and comes straight back.
// A part already received (same key, number and content) is ignored, also
// shortly after its message completed. A part whose number was already
// received with different content means the reference was reused: the
// earlier partial message is released incomplete (through Expire) and the
// part starts a new one. A part too large for the memory bound on its own
// comes back at once as an incomplete message. Impossible numbers are an
// error wrapping ErrBadPart.
func (r *Reassembler) Add(key Key, p Part, now time.Time) (*Message, error) {
	c := p.Concat
	if c == nil {
		return &Message{Key: key, Text: joinText([]Part{p}, nil), Parts: []Part{p}, First: now, Last: now}, nil
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadPart, err)
	}
	key.Ref, key.Total, key.Wide = c.Ref, c.Total, c.Wide
	idx := int(c.Seq) - 1
	sum := fingerprint(p)

	r.mu.Lock()
	defer r.mu.Unlock()

	if rc := r.recents[key]; rc != nil {
		if now.Before(rc.until) && rc.sums[idx] == sum {
			r.stats.Duplicates++
			return nil, nil
		}
		r.forget(rc)
	}

	g := r.groups[key]
	if g != nil && g.present[idx] {
		if fingerprint(g.parts[idx]) == sum {
			r.stats.Duplicates++
			return nil, nil
		}
		r.release(g, &r.stats.Evicted)
		g = nil
	}
	cost := partOverhead + len(p.Text)
	if g == nil {
		cost += groupOverhead + len(key.Source) + len(key.Destination)
		for len(r.groups) >= r.cfg.MaxMessages {
			r.release(r.order.Front().Value.(*group), &r.stats.Evicted)
		}
		g = &group{
			key:     key,
			parts:   make([]Part, c.Total),
			present: make([]bool, c.Total),
			first:   now,
		}
		g.elem = r.order.PushBack(g)
		r.groups[key] = g
	} else {
		r.order.MoveToBack(g.elem)
	}
	// Make room, oldest first, without releasing the group being added to.
	for r.bytes+cost > r.cfg.MaxBytes && r.order.Front() != g.elem {
		r.release(r.order.Front().Value.(*group), &r.stats.Evicted)
	}
	g.parts[idx], g.present[idx] = p, true
	g.have++
	g.bytes += cost
	g.last = now
	r.bytes += cost

	if g.have == int(c.Total) {
		r.remove(g)
		r.remember(g, now)
		r.stats.Completed++
		return g.message(false), nil
	}
	if r.bytes > r.cfg.MaxBytes {
		// Even alone this message does not fit: hand over what arrived.
		r.remove(g)
		r.stats.Evicted++
		return g.message(true), nil
	}
	return nil, nil
}

// Expire returns the partial messages whose latest part is older than the
// timeout, and those released since the last call to keep within the
// bounds, all marked Incomplete with the parts that arrived.
func (r *Reassembler) Expire(now time.Time) []*Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	for e := r.order.Front(); e != nil; e = r.order.Front() {
		g := e.Value.(*group)
		if now.Sub(g.last) < r.cfg.Timeout {
			break
		}
		r.release(g, &r.stats.Expired)
	}
	for e := r.recentQ.Front(); e != nil; e = r.recentQ.Front() {
		rc := e.Value.(*recent)
		if now.Before(rc.until) {
			break
		}
		r.forget(rc)
	}
	out := r.outbox
	r.outbox = nil
	return out
}

// Stats returns the current counters.
func (r *Reassembler) Stats() ReassemblyStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.Partial, s.Bytes = len(r.groups), r.bytes
	return s
}

func (r *Reassembler) remove(g *group) {
	r.order.Remove(g.elem)
	delete(r.groups, g.key)
	r.bytes -= g.bytes
}

func (r *Reassembler) release(g *group, counter *uint64) {
	r.remove(g)
	*counter++
	r.outbox = append(r.outbox, g.message(true))
}

func (r *Reassembler) remember(g *group, now time.Time) {
	for r.recentQ.Len() >= r.cfg.MaxMessages {
		r.forget(r.recentQ.Front().Value.(*recent))
	}
	rc := &recent{key: g.key, sums: make([]uint64, len(g.parts)), until: now.Add(r.cfg.Timeout)}
	for i, p := range g.parts {
		rc.sums[i] = fingerprint(p)
	}
	rc.elem = r.recentQ.PushBack(rc)
	r.recents[g.key] = rc
}

func (r *Reassembler) forget(rc *recent) {
	r.recentQ.Remove(rc.elem)
	delete(r.recents, rc.key)
}

func (g *group) message(incomplete bool) *Message {
	m := &Message{Key: g.key, Incomplete: incomplete, First: g.first, Last: g.last}
	m.Parts = make([]Part, 0, g.have)
	for i, ok := range g.present {
		if ok {
			m.Parts = append(m.Parts, g.parts[i])
		} else {
			m.Missing = append(m.Missing, uint8(i+1))
		}
	}
	m.Text = joinText(m.Parts, g.present)
	return m
}

// joinText joins the parts' texts, pairing a high surrogate a sender left
// at the end of one part with the low surrogate at the start of the next.
// A half with no partner (its neighbour is missing, or the sender's UTF-16
// was broken) becomes U+FFFD, visibly. present, when not nil, tells which
// part numbers arrived, so that halves across a gap are not paired.
func joinText(parts []Part, present []bool) string {
	n := 0
	for _, p := range parts {
		n += len(p.Text) + 3
	}
	var b strings.Builder
	b.Grow(n)
	// seqs of consecutive parts: parts are in order, so part i and i+1 are
	// neighbours unless present shows a gap between them.
	seq := make([]int, len(parts))
	if present != nil {
		k := 0
		for i, ok := range present {
			if ok {
				seq[k] = i
				k++
			}
		}
	} else {
		for i := range seq {
			seq[i] = i
		}
	}
	for i, p := range parts {
		if p.HeadLow != 0 {
			prevHigh := i > 0 && seq[i-1] == seq[i]-1 && parts[i-1].TailHigh != 0
			if prevHigh {
				b.WriteRune(utf16.DecodeRune(rune(parts[i-1].TailHigh), rune(p.HeadLow)))
			} else {
				b.WriteRune(utf8.RuneError)
			}
		}
		b.WriteString(p.Text)
		if p.TailHigh != 0 {
			nextLow := i+1 < len(parts) && seq[i+1] == seq[i]+1 && parts[i+1].HeadLow != 0
			if !nextLow {
				b.WriteRune(utf8.RuneError)
			}
		}
	}
	return b.String()
}

// fingerprint is FNV-1a over a part's content, to tell a repeated part from
// a different one with the same number.
func fingerprint(p Part) uint64 {
	h := uint64(14695981039346656037)
	mix := func(c byte) {
		h ^= uint64(c)
		h *= 1099511628211
	}
	for i := 0; i < len(p.Text); i++ {
		mix(p.Text[i])
	}
	for _, u := range [2]uint16{p.HeadLow, p.TailHigh} {
		mix(byte(u >> 8))
		mix(byte(u))
	}
	mix(byte(p.Alphabet))
	return h
}
