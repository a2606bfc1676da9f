package smpp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/smpp/coding"
	"github.com/mimigw/mimigw/smpp/wire"
)

// responder answers one deliver_sm (or data_sm) on the bind it came on.
type responder struct {
	s   *session
	id  pdu.ID // the response command
	seq uint32
	at  time.Time // when the request came
}

func (r responder) answer(status pdu.Status) { r.s.respond(r.id, status, r.seq) }

// moEntry follows one concatenated MO message, from its first part until
// some time after it is on the bus.
type moEntry struct {
	in        gateway.Inbound // addresses, from the first part
	held      []responder     // parts whose answer waits for the whole message
	msg       *coding.Message // set once reassembled (complete or not)
	inFlight  bool            // being handed to the receiver now
	delivered bool            // the receiver took it: later copies of its parts are duplicates
	at        time.Time
}

// moState is an SMSC's reassembly of concatenated MO messages, shared by
// its binds (parts of one message may come on different binds).
type moState struct {
	l     *smscLink
	reasm *coding.Reassembler
	hold  bool // answer parts once the whole message is on the bus

	mu        sync.Mutex
	entries   map[coding.Key]*moEntry
	lastSweep time.Time

	wg sync.WaitGroup // hand-overs of messages released incomplete
}

func newMOState(l *smscLink) *moState {
	rc := l.edge.cfg.Reassembly
	r, err := coding.NewReassembler(coding.ReassemblyConfig{MaxMessages: rc.MaxMessages, MaxBytes: rc.MaxBytes, Timeout: rc.Timeout})
	if err != nil {
		// Validate has checked both values.
		panic(fmt.Sprintf("smpp: reassembly config passed Validate but: %v", err))
	}
	return &moState{l: l, reasm: r, hold: l.cfg.AckParts != "each", entries: map[coding.Key]*moEntry{}}
}

// deliver handles a deliver_sm or data_sm from the SMSC: an MO message or
// a delivery receipt. It runs on its own goroutine, never on the reader.
func (l *smscLink) deliver(s *session, h wire.Header, body []byte) {
	resp := responder{s: s, id: wire.ResponseID(h.ID), seq: h.Seq, at: time.Now()}
	var m wire.Message
	var err error
	if h.ID == wire.DataSM {
		m, err = wire.DecodeDataSM(body)
	} else {
		m, err = wire.DecodeMessage(body)
	}
	if err != nil {
		l.badPDU(s, "body", fmt.Errorf("%s seq %d: %w", commandNames[h.ID], h.Seq, err))
		if wire.NackOnDecode(err) {
			s.respond(wire.GenericNack, wire.StatusFor(err), h.Seq)
		} else {
			resp.answer(wire.StatusFor(err))
		}
		return
	}
	switch m.ESMClass & wire.ESMClassTypeMask {
	case wire.ESMClassReceipt, wire.ESMClassIntermedNot:
		l.receipt(s, resp, &m)
	default:
		l.mo.message(s, resp, &m)
	}
}

// moStatus is the answer for what the receiver said about a message.
func moStatus(err error) pdu.Status {
	switch {
	case err == nil:
		return wire.StatusOK
	case errors.Is(err, gateway.ErrRejected):
		return wire.StatusInvDstAdr
	}
	return wire.StatusTempAppError
}

// refuseMO answers an MO message that can never be taken.
func (st *moState) refuseMO(s *session, r responder, status pdu.Status, reason string, err error) {
	st.l.m.mo.WithLabelValues(st.l.cfg.Name, "bad").Inc()
	s.log.Warn("MO message refused", "reason", reason, "seq", r.seq, "status", fmt.Sprintf("%#x", uint32(status)), "err", err)
	r.answer(status)
}

// message decodes an MO message, reassembles it if it is a part, and hands
// it to the receiver.
func (st *moState) message(s *session, r responder, m *wire.Message) {
	l := st.l
	region := l.edge.cfg.DefaultRegion
	from, err := parseAddress(m.SourceTON, m.Source, region)
	if err != nil {
		st.refuseMO(s, r, wire.StatusInvSrcAdr, "source_addr", err)
		return
	}
	to, err := parseAddress(m.DestTON, m.Dest, region)
	if err != nil {
		st.refuseMO(s, r, wire.StatusInvDstAdr, "destination_addr", err)
		return
	}
	sm := m.ShortMessage
	if payload, ok := m.TLV(wire.TagMessagePayload); ok {
		if len(sm) > 0 {
			st.refuseMO(s, r, wire.StatusPermAppError, "message_payload", errors.New("both short_message and message_payload are set"))
			return
		}
		sm = payload
	}
	udhi := m.ESMClass&wire.ESMClassUDHI != 0
	var part coding.Part
	ref, hasRef := m.TLV(wire.TagSarMsgRefNum)
	total, hasTotal := m.TLV(wire.TagSarTotalSegments)
	seq, hasSeq := m.TLV(wire.TagSarSegmentSeqnum)
	if hasRef || hasTotal || hasSeq {
		var sar coding.ConcatInfo
		sar, err = coding.ParseSAR(ref, total, seq)
		if err == nil {
			part, err = coding.DecodeSAR(m.DataCoding, udhi, sm, sar, l.cfg.Coding)
		}
	} else {
		part, err = coding.Decode(m.DataCoding, udhi, sm, l.cfg.Coding)
	}
	if err != nil {
		reason := "text"
		if errors.Is(err, coding.ErrBadUDH) || errors.Is(err, coding.ErrBadSAR) {
			reason = "concatenation"
		}
		st.refuseMO(s, r, wire.StatusPermAppError, reason, err)
		return
	}
	in := gateway.Inbound{Channel: gateway.ChannelSMS, From: from, To: to}
	if part.Concat == nil {
		in.Parts = []gateway.Part{{Text: part.Text}}
		err := st.receive(in)
		st.count(err)
		r.answer(moStatus(err))
		return
	}
	st.part(s, r, in, m, part)
}

// part adds one part of a concatenated message; the part that completes it
// (or the expiry of the rest) hands the message over and answers the parts
// held for it.
func (st *moState) part(s *session, r responder, in gateway.Inbound, m *wire.Message, p coding.Part) {
	key := coding.Key{Source: m.Source, Destination: m.Dest, Ref: p.Concat.Ref, Total: p.Concat.Total, Wide: p.Concat.Wide}
	now := time.Now()
	st.mu.Lock()
	e := st.entries[key]
	if e != nil && e.msg != nil {
		switch {
		case !samePart(e.msg, p) && e.inFlight:
			// A new message under the reference of one being handed over
			// right now: the SMSC delivers it again in a moment.
			st.mu.Unlock()
			r.answer(wire.StatusTempAppError)
			return
		case !samePart(e.msg, p):
			// The sender reused the reference for a new message.
			delete(st.entries, key)
			e = nil
		case e.delivered:
			st.mu.Unlock()
			st.l.m.reassembly.WithLabelValues(st.l.cfg.Name, "duplicate_part").Inc()
			s.log.Debug("part of a delivered message again", "number", in.From, "part", p.Concat.Seq)
			r.answer(wire.StatusOK)
			return
		case e.inFlight:
			e.held = append(e.held, r)
			st.mu.Unlock()
			return
		default:
			// Handing it over failed before; the SMSC delivers again.
			e.inFlight = true
			e.held = append(e.held, r)
			msg := e.msg
			st.mu.Unlock()
			st.handOver(key, in, msg)
			return
		}
	}
	msg, err := st.reasm.Add(key, p, now)
	if err != nil {
		st.mu.Unlock()
		st.l.m.reassembly.WithLabelValues(st.l.cfg.Name, "bad_part").Inc()
		st.refuseMO(s, r, wire.StatusPermAppError, "concatenation", err)
		return
	}
	if e == nil {
		e = &moEntry{in: in}
		st.entries[key] = e
	}
	e.at = now
	if msg == nil {
		if st.hold {
			e.held = append(e.held, r)
		}
		st.mu.Unlock()
		if st.hold {
			st.l.m.mo.WithLabelValues(st.l.cfg.Name, "held").Inc()
		} else {
			st.l.m.mo.WithLabelValues(st.l.cfg.Name, "part_answered").Inc()
			r.answer(wire.StatusOK)
		}
		st.collect(now)
		return
	}
	// The completing part waits in both modes: its answer says whether the
	// message is on the bus.
	e.held = append(e.held, r)
	e.msg, e.inFlight = msg, true
	st.mu.Unlock()
	st.handOver(key, in, msg)
	st.collect(now)
}

// samePart reports whether p is a copy of the part with its number in msg.
func samePart(msg *coding.Message, p coding.Part) bool {
	for _, q := range msg.Parts {
		if q.Concat != nil && q.Concat.Seq == p.Concat.Seq {
			return q.Text == p.Text && q.HeadLow == p.HeadLow && q.TailHigh == p.TailHigh
		}
	}
	// Missing from an incomplete message: a late part, not a copy.
	return false
}

// handOver gives a reassembled message to the receiver and answers every
// part held for it.
func (st *moState) handOver(key coding.Key, in gateway.Inbound, msg *coding.Message) {
	in.Parts = []gateway.Part{{Text: msg.Text}}
	in.Incomplete = msg.Incomplete
	result := "complete"
	if msg.Incomplete {
		result = "incomplete"
	}
	err := st.receive(in)
	st.count(err)
	if err == nil {
		st.l.m.reassembly.WithLabelValues(st.l.cfg.Name, result).Inc()
	}
	st.mu.Lock()
	var held []responder
	if e := st.entries[key]; e != nil && e.msg == msg {
		held, e.held = e.held, nil
		e.inFlight = false
		e.delivered = err == nil
		e.at = time.Now()
	}
	st.mu.Unlock()
	status := moStatus(err)
	for _, r := range held {
		r.answer(status)
	}
}

func (st *moState) receive(in gateway.Inbound) error {
	ctx, cancel := context.WithTimeout(st.l.edge.moCtx, st.l.edge.cfg.MOTimeout)
	defer cancel()
	err := st.l.edge.recv.Receive(ctx, in)
	if err != nil {
		st.l.log.Warn("MO message not taken", "number", in.From, "to", in.To, "incomplete", in.Incomplete, "err", err)
	} else {
		st.l.log.Debug("MO message taken", "number", in.From, "to", in.To, "incomplete", in.Incomplete)
	}
	return err
}

func (st *moState) count(err error) {
	result := "ok"
	switch {
	case err == nil:
	case errors.Is(err, gateway.ErrRejected):
		result = "rejected"
	default:
		result = "unavailable"
	}
	st.l.m.mo.WithLabelValues(st.l.cfg.Name, result).Inc()
}

// collect hands over what the reassembler released incomplete (timeout or
// memory bound) and forgets delivered messages once their parts can no
// longer come again.
func (st *moState) collect(now time.Time) {
	for _, msg := range st.reasm.Expire(now) {
		st.mu.Lock()
		e := st.entries[msg.Key]
		if e == nil || e.msg != nil {
			// Not ours to hand over (a stale release).
			st.mu.Unlock()
			continue
		}
		e.msg, e.inFlight, e.at = msg, true, now
		in := e.in
		st.mu.Unlock()
		st.l.log.Info("concatenated MO message incomplete, delivering what arrived",
			"number", in.From, "parts", len(msg.Parts), "missing", len(msg.Missing))
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			st.handOver(msg.Key, in, msg)
		}()
	}
	keep := st.l.edge.cfg.Reassembly.Timeout
	hold := st.l.cfg.HoldParts
	var early []responder
	st.mu.Lock()
	if now.Sub(st.lastSweep) < min(time.Second, hold/2) {
		st.mu.Unlock()
		return
	}
	st.lastSweep = now
	for k, e := range st.entries {
		if e.msg != nil && !e.inFlight && now.Sub(e.at) > keep {
			delete(st.entries, k)
			continue
		}
		if e.msg == nil && len(e.held) > 0 && now.Sub(e.held[0].at) > hold {
			kept := e.held[:0]
			for _, r := range e.held {
				if now.Sub(r.at) > hold {
					early = append(early, r)
				} else {
					kept = append(kept, r)
				}
			}
			e.held = kept
		}
	}
	st.mu.Unlock()
	if len(early) > 0 {
		st.l.m.mo.WithLabelValues(st.l.cfg.Name, "answered_before_complete").Add(float64(len(early)))
		st.l.log.Info("MO parts answered before their message is complete", "parts", len(early), "held_for", hold)
	}
	for _, r := range early {
		r.answer(wire.StatusOK)
	}
}

// expireLoop releases partial messages that waited too long.
func (st *moState) expireLoop(ctx context.Context) {
	every := min(st.l.edge.cfg.Reassembly.Timeout/10, st.l.cfg.HoldParts/2)
	every = max(min(every, 10*time.Second), 10*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st.collect(time.Now())
	}
}
