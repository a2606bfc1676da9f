package smpp

import (
	"context"
	"errors"
	"fmt"
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

// context bounds the receiver's work on the request: mo_timeout from its
// arrival, its wait in the bind's queue included, so that the SMSC gets
// an answer before it gives up on it.
func (r responder) context() (context.Context, context.CancelFunc) {
	e := r.s.link.edge
	return context.WithDeadline(e.moCtx, r.at.Add(e.cfg.MOTimeout))
}

// moState takes the MO messages of one SMSC.
type moState struct {
	l *smscLink
}

func newMOState(l *smscLink) *moState { return &moState{l: l} }

// deliver handles a deliver_sm or data_sm from the SMSC that came at at:
// an MO message or a delivery receipt. It runs on a handler of the bind's
// inbox, never on the reader.
func (l *smscLink) deliver(s *session, h wire.Header, body []byte, at time.Time) {
	resp := responder{s: s, id: wire.ResponseID(h.ID), seq: h.Seq, at: at}
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
	case errors.Is(err, gateway.ErrOversize):
		return wire.StatusInvMsgLen
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
	if part.Concat == nil {
		in := gateway.Inbound{Channel: gateway.ChannelSMS, From: from, To: to, Parts: []gateway.Part{{Text: part.Text}}}
		err := st.receive(r, in)
		st.count(err)
		r.answer(moStatus(err))
		return
	}
	// A part of a concatenated message: stored on the bus by the gateway,
	// which reassembles it with its other parts whichever bind or gateway
	// instance they reach; answered once stored.
	c := part.Concat
	seg := gateway.Segment{From: from, To: to, Ref: c.Ref, Wide: c.Wide, Total: c.Total, Seq: c.Seq,
		Text: part.Text, HeadLow: part.HeadLow, TailHigh: part.TailHigh}
	ctx, cancel := r.context()
	err = l.edge.recv.ReceiveSegment(ctx, seg)
	cancel()
	if err != nil {
		l.log.Warn("MO part not taken", "number", from, "to", to, "part", c.Seq, "of", c.Total, "err", err)
	}
	st.count(err)
	r.answer(moStatus(err))
}

func (st *moState) receive(r responder, in gateway.Inbound) error {
	ctx, cancel := r.context()
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
