package smpp

import (
	"bytes"
	"sync"
	"time"

	"github.com/mimigw/mimigw/smpp/wire"
)

// inbox holds the deliver_sm (and data_sm) of one bind from the moment the
// reader reads them until the gateway has taken them and they are
// answered. The reader only queues; up to mo_concurrency handlers per bind
// hand what is queued to the gateway. An SMSC sends no more than its
// window unanswered, so the queue holds that (deliver_window) plus a
// margin: a burst of receipts waits its turn instead of being refused.
//
// Order: MO messages from one sender are handed to the gateway one at a
// time, in the order they came, so that the sender's texts reach the bus
// in their order; receipts and the MO of other senders go on meanwhile.
// Receipts need no order (the gateway never moves a message back to an
// earlier state).
type inbox struct {
	s     *session
	max   int // handlers at once
	limit int // deliver_sm held: queued and in hand

	mu      sync.Mutex
	ready   []*inItem            // can be handed over now, oldest first
	behind  map[string][]*inItem // MO waiting for an earlier one of their sender
	busy    map[string]bool      // senders with an MO ready or in hand
	held    int
	workers int
	closed  bool
	wg      sync.WaitGroup
}

// inItem is one deliver_sm or data_sm as it came.
type inItem struct {
	h    wire.Header
	body []byte
	at   time.Time
	key  string // the MO's sender; "" for a receipt or what cannot be read here
}

func newInbox(s *session, handlers, window int) *inbox {
	return &inbox{
		s:      s,
		max:    max(handlers, 1),
		limit:  window + max(window/4, 16),
		behind: map[string][]*inItem{},
		busy:   map[string]bool{},
	}
}

// push queues a PDU; false if the SMSC has more unanswered than its
// window and the margin allow (or the bind is closing). It never blocks.
func (b *inbox) push(h wire.Header, body []byte, at time.Time) bool {
	it := &inItem{h: h, body: body, at: at, key: orderKey(body)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.held >= b.limit {
		return false
	}
	b.held++
	if it.key != "" {
		if b.busy[it.key] {
			b.behind[it.key] = append(b.behind[it.key], it)
			return true
		}
		b.busy[it.key] = true
	}
	b.ready = append(b.ready, it)
	b.spawnLocked()
	return true
}

// spawnLocked starts a handler if something is ready and fewer than max
// run.
func (b *inbox) spawnLocked() {
	if len(b.ready) == 0 || b.workers >= b.max || b.closed {
		return
	}
	b.workers++
	b.wg.Add(1)
	go b.work()
}

// work hands ready PDUs to the gateway until none is left.
func (b *inbox) work() {
	defer b.wg.Done()
	for {
		b.mu.Lock()
		if len(b.ready) == 0 || b.closed {
			b.workers--
			b.mu.Unlock()
			return
		}
		it := b.ready[0]
		b.ready[0] = nil
		b.ready = b.ready[1:]
		b.spawnLocked()
		b.mu.Unlock()

		b.s.link.deliver(b.s, it.h, it.body, it.at)

		b.mu.Lock()
		b.held--
		if it.key != "" {
			if next := b.behind[it.key]; len(next) > 0 {
				b.ready = append(b.ready, next[0])
				if len(next) == 1 {
					delete(b.behind, it.key)
				} else {
					next[0] = nil
					b.behind[it.key] = next[1:]
				}
			} else {
				delete(b.busy, it.key)
			}
		}
		b.mu.Unlock()
	}
}

// inHand reports how many PDUs are queued or being handled.
func (b *inbox) inHand() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held
}

// stop drops what is queued and not yet handed over; handlers in
// progress finish. The SMSC got no answer for what was dropped, so it
// delivers it again on the next bind. It never blocks on the handlers.
func (b *inbox) stop() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0
	}
	b.closed = true
	dropped := len(b.ready)
	for _, q := range b.behind {
		dropped += len(q)
	}
	b.held -= dropped
	b.ready, b.behind = nil, map[string][]*inItem{}
	return dropped
}

// wait waits for the handlers in progress.
func (b *inbox) wait() { b.wg.Wait() }

// orderKey returns the sender of an MO message (source TON, NPI and
// address), read straight from the body's leading fields, which
// deliver_sm and data_sm share; "" for a delivery receipt or a body too
// short to read, which the handler then refuses.
func orderKey(body []byte) string {
	rest := body
	cstr := func() ([]byte, bool) {
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			return nil, false
		}
		s := rest[:i]
		rest = rest[i+1:]
		return s, true
	}
	if _, ok := cstr(); !ok { // service_type
		return ""
	}
	if len(rest) < 2 {
		return ""
	}
	ton, npi := rest[0], rest[1]
	rest = rest[2:]
	src, ok := cstr()
	if !ok || len(rest) < 2 {
		return ""
	}
	rest = rest[2:] // dest_addr_ton, dest_addr_npi
	if _, ok := cstr(); !ok || len(rest) < 1 {
		return ""
	}
	switch rest[0] & wire.ESMClassTypeMask {
	case wire.ESMClassReceipt, wire.ESMClassIntermedNot:
		return ""
	}
	return string([]byte{ton, npi}) + string(src)
}
