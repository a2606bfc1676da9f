package smpp

import (
	"bytes"
	"errors"
	"strings"
	"time"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/smpp/receipt"
	"github.com/mimigw/mimigw/smpp/wire"
)

// receipt hands a delivery receipt to the receiver. The TLVs
// (receipted_message_id, message_state) are exact where present; the text
// form fills in what they lack. A receipt that arrives before the
// submit_sm_resp naming its id is passed on all the same: the gateway
// keeps it until the id is known.
func (l *smscLink) receipt(s *session, r responder, m *wire.Message) {
	text := m.ShortMessage
	if p, ok := m.TLV(wire.TagMessagePayload); ok && len(text) == 0 {
		text = p
	}
	var (
		id      string
		final   bool
		outcome receipt.Outcome
		at      time.Time
	)
	rec, perr := receipt.Parse(text)
	if v, ok := m.TLV(wire.TagReceiptedMessageID); ok {
		id = string(bytes.TrimRight(v, "\x00"))
	} else if perr == nil {
		id = rec.ID
	}
	if v, ok := m.TLV(wire.TagMessageState); ok && len(v) == 1 {
		final, outcome = receipt.ClassifyState(v[0])
	} else if perr == nil {
		final, outcome = receipt.Classify(rec.Stat)
	} else {
		id = ""
	}
	if perr == nil && !rec.DoneDate.IsZero() {
		at = rec.DoneDate
	}
	if id == "" {
		l.m.receipts.WithLabelValues(l.cfg.Name, "bad").Inc()
		err := perr
		if err == nil {
			err = errors.New("no message id")
		}
		s.log.Warn("delivery receipt unreadable", "seq", r.seq, "err", err)
		r.answer(wire.StatusPermAppError)
		return
	}
	if !final {
		l.m.receipts.WithLabelValues(l.cfg.Name, "intermediate").Inc()
		s.log.Debug("intermediate receipt", "ref", id, "state", outcome.String())
		r.answer(wire.StatusOK)
		return
	}
	if at.IsZero() {
		at = time.Now()
	}
	rc := gateway.Receipt{
		Channel: gateway.ChannelSMS,
		Ref:     l.normalize(id, l.cfg.ReceiptIDForm, "receipt"),
		Source:  l.cfg.Name,
		Status:  receiptStatus(outcome),
		At:      at,
	}
	// The receipt's source is the recipient of the original message.
	if n, err := parseAddress(m.SourceTON, m.Source, l.edge.cfg.DefaultRegion); err == nil {
		rc.From = n
	}
	ctx, cancel := r.context()
	err := l.edge.recv.Receipt(ctx, rc)
	cancel()
	result, status := "ok", wire.StatusOK
	switch {
	case err == nil:
		s.log.Debug("receipt taken", "ref", rc.Ref, "status", rc.Status.String())
	case errors.Is(err, gateway.ErrRejected):
		result, status = "rejected", wire.StatusPermAppError
		s.log.Info("receipt refused by the gateway", "ref", rc.Ref, "err", err)
	default:
		result, status = "unavailable", wire.StatusTempAppError
		s.log.Warn("receipt not taken, the SMSC will deliver it again", "ref", rc.Ref, "err", err)
	}
	l.m.receipts.WithLabelValues(l.cfg.Name, result).Inc()
	r.answer(status)
}

func receiptStatus(o receipt.Outcome) gateway.Status {
	switch o {
	case receipt.Delivered:
		return gateway.StatusDelivered
	case receipt.Expired:
		return gateway.StatusExpired
	}
	return gateway.StatusFailed
}

// normalize writes a message id in the canonical form of package receipt,
// so that the submit_sm_resp's and the receipt's spelling of one id
// compare equal. An id that is not in its configured form is kept as it
// came (the message was accepted all the same) and logged: its receipt
// will not match, and the gateway's delivery timeout settles it.
func (l *smscLink) normalize(id string, form receipt.IDForm, where string) string {
	n, err := receipt.Normalize(id, form)
	if err != nil {
		l.m.badIDs.WithLabelValues(l.cfg.Name, where).Inc()
		l.log.Warn("message id not in its configured form", "ref", id, "where", where, "err", err)
		return strings.TrimSpace(id)
	}
	return n
}
