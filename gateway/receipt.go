package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/content"
	"github.com/mimigw/mimigw/mimi/uri"
)

// Receipt takes an IMDN or SMS delivery receipt about a message the
// gateway sent and reports the outcome to the message's MIMI sender. A
// receipt that comes before the gateway recorded the message it names is
// kept until it does.
func (g *Gateway) Receipt(ctx context.Context, r Receipt) error {
	var key string
	switch r.Channel {
	case ChannelRCS:
		key = rcsRefKey(r.Ref)
	case ChannelSMS:
		key = smsRefKey(r.Source, r.Ref)
	default:
		return fmt.Errorf("gateway: receipt on channel %q: %w", r.Channel, ErrRejected)
	}
	if r.Ref == "" {
		return fmt.Errorf("gateway: receipt without a reference: %w", ErrRejected)
	}
	for {
		var ref refRecord
		_, err := g.rec.get(ctx, key, &ref)
		if errors.Is(err, errNoRecord) {
			exists, err := g.rec.create(ctx, key, refRecord{Early: []Receipt{r}})
			if err != nil {
				return err
			}
			if exists {
				continue // the message was recorded meanwhile
			}
			g.m.receipts.WithLabelValues(string(r.Channel), "held").Inc()
			return nil
		}
		if err != nil {
			return err
		}
		if ref.ID == "" {
			held, err := update(ctx, g.rec, key, func(v *refRecord) (bool, error) {
				if v.ID != "" {
					return false, nil
				}
				v.Early = append(v.Early, r)
				return true, nil
			})
			if err != nil {
				return err
			}
			if held.ID == "" {
				g.m.receipts.WithLabelValues(string(r.Channel), "held").Inc()
				return nil
			}
			ref = held
		}
		g.m.receipts.WithLabelValues(string(r.Channel), "applied").Inc()
		return g.applyReceipt(ctx, ref.copyOf(), ref.Segment, r, evReceipt)
	}
}

// rank orders states so a late or repeated receipt never takes a message
// back.
func rank(s outState) int {
	switch s {
	case outDelivered:
		return 1
	case outRead:
		return 2
	case outExpired, outFailed:
		return 3
	}
	return 0
}

// applyReceipt moves the copy k of a message on by one receipt and, when
// the whole of it changes state, reports it. The report is published before the
// new state is written (and again if the write has to be retried): its ID
// is fixed by message and status, so the bus keeps one. kind names the
// receipt in the record's events (evReceipt, or evTooLate for a
// revocation that came after delivery).
func (g *Gateway) applyReceipt(ctx context.Context, k copyKey, segment int, r Receipt, kind string) error {
	mid, err := content.ParseMessageID(k.id)
	if err != nil {
		return fmt.Errorf("gateway: receipt names %q: %w", k.id, ErrRejected)
	}
	// reached is set when this receipt is the one that makes the message
	// delivered (or read without delivered before), for the delivery time.
	var reached bool
	rec, err := update(ctx, g.rec, outKey(k), func(o *outRecord) (bool, error) {
		reached = false
		var next outState
		changed := false
		switch {
		case r.Channel == ChannelSMS && o.Channel == ChannelSMS:
			if segment < 0 || segment >= len(o.SegState) || o.SegState[segment] == r.Status {
				return false, nil
			}
			o.SegState[segment] = r.Status
			o.event(g.now(), kind, r.Channel, segment, r.Status.String())
			next, changed = smsState(o.SegState, o.State), true
		case r.Channel == ChannelRCS && o.Channel == ChannelRCS:
			if o.State == outRevoked {
				return false, nil // revoked: the SMS that follows reports
			}
			next = rcsState(r.Status)
		default:
			return false, nil // about the RCS attempt of a message now gone by SMS
		}
		if rank(next) <= rank(o.State) {
			return changed, nil
		}
		if !changed {
			o.event(g.now(), kind, r.Channel, segment, r.Status.String())
		}
		reached = kind == evReceipt && rank(o.State) < rank(outDelivered) && (next == outDelivered || next == outRead)
		o.State = next
		st := stateStatus(next)
		if err := g.report(ctx, o.Recipient, o.Sender, o.Room, o.Channel, mid, st); err != nil {
			return false, err
		}
		o.event(g.now(), evReport, "", 0, st.String())
		return true, nil
	})
	if errors.Is(err, errNoRecord) {
		g.m.receipts.WithLabelValues(string(r.Channel), "unknown").Inc()
		return nil
	}
	if err == nil && reached {
		g.observeDelivery(rec)
	}
	return err
}

// observeDelivery records how long o took from being accepted on the bus
// (Mimi-Accepted; for older records, when the gateway took it) to
// delivered.
func (g *Gateway) observeDelivery(o outRecord) {
	start := o.MIMIAccepted
	if start.IsZero() {
		start = o.Accepted
	}
	if start.IsZero() {
		return
	}
	// The MIMI side's clock may run ahead of the gateway's.
	d := max(g.now().Sub(start), 0)
	g.m.delivery.WithLabelValues(string(o.Channel)).Observe(d.Seconds())
}

// smsState is what a message of several segments has come to: failed or
// expired as soon as one segment is, delivered when all are.
func smsState(segs []Status, cur outState) outState {
	all := true
	for _, s := range segs {
		switch s {
		case StatusFailed:
			return outFailed
		case StatusExpired:
			return outExpired
		case StatusDelivered, StatusRead:
		default:
			all = false
		}
	}
	if all {
		return outDelivered
	}
	return cur
}

func rcsState(s Status) outState {
	switch s {
	case StatusDelivered:
		return outDelivered
	case StatusRead:
		return outRead
	case StatusExpired:
		return outExpired
	}
	return outFailed
}

func stateStatus(s outState) content.Status {
	switch s {
	case outDelivered:
		return content.Delivered
	case outRead:
		return content.Read
	case outExpired:
		return content.Expired
	}
	return content.Error
}

// RevocationResult takes the network's answer to a revocation: revoked,
// the message goes by SMS; too late, it was delivered.
func (g *Gateway) RevocationResult(ctx context.Context, r RevocationResult) error {
	var ref refRecord
	_, err := g.rec.get(ctx, rcsRefKey(r.Ref), &ref)
	if errors.Is(err, errNoRecord) || (err == nil && ref.ID == "") {
		g.m.revocations.WithLabelValues("unknown").Inc()
		g.log.Info("revocation result for an unknown message", "ref", r.Ref, "number", r.From)
		return nil
	}
	if err != nil {
		return err
	}
	k := ref.copyOf()
	if !r.Revoked {
		g.m.revocations.WithLabelValues("too_late").Inc()
		return g.applyReceipt(ctx, k, 0, Receipt{Channel: ChannelRCS, From: r.From, Ref: r.Ref, Status: StatusDelivered}, evTooLate)
	}
	o, err := update(ctx, g.rec, outKey(k), func(o *outRecord) (bool, error) {
		if o.State != outSent && o.State != outRevoking {
			return false, nil
		}
		o.State = outRevoked
		o.event(g.now(), evRevoked, ChannelRCS, 0, "")
		return true, nil
	})
	if err != nil {
		return err
	}
	if o.State != outRevoked {
		return nil // delivered or otherwise settled meanwhile
	}
	g.m.revocations.WithLabelValues("revoked").Inc()
	// Scheduling again after a retry is harmless: timers are unique by key.
	if err := g.bus.Schedule(ctx, "fallback."+k.String(), g.now(), nil); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// handleTimer runs a delivery timer: a revocation due, or an SMS to send
// after one. The timers of a message sent to a phone are keyed by its
// copy (<kind>.<id>.<digits>, or <kind>.<id> when set before copies were
// kept apart).
func (g *Gateway) handleTimer(ctx context.Context, t bus.Timer) error {
	kind, rest, _ := strings.Cut(t.Key, ".")
	if kind == "segments" {
		return g.segmentsDue(ctx, rest)
	}
	k, err := parseCopyKey(rest)
	if err != nil {
		g.log.Warn("timer with a bad key dropped", "key", t.Key, "err", err)
		return nil
	}
	switch kind {
	case "revoke":
		return g.revokeDue(ctx, k)
	case "fallback":
		return g.fallback(ctx, k)
	case "revoking":
		return g.revocationOverdue(ctx, k)
	}
	g.log.Warn("unknown timer dropped", "key", t.Key)
	return nil
}

// revokeDue revokes an RCS message that was not delivered in time, where
// the recipient supports revocation.
func (g *Gateway) revokeDue(ctx context.Context, k copyKey) error {
	var o outRecord
	if _, err := g.rec.get(ctx, outKey(k), &o); errors.Is(err, errNoRecord) {
		return nil
	} else if err != nil {
		return err
	}
	if o.State != outSent || o.Channel != ChannelRCS {
		return nil
	}
	if !o.Revocable || g.rcs == nil {
		g.m.revocations.WithLabelValues("unsupported").Inc()
		return g.unrevocable(ctx, k, "the phone does not support revocation")
	}
	from, err := uri.ParseNumber(o.From, "")
	if err != nil {
		g.m.revocations.WithLabelValues("unsupported").Inc()
		return g.unrevocable(ctx, k, "sent from an address that cannot revoke")
	}
	err = g.rcs.Revoke(ctx, Revocation{From: from, To: o.Recipient, Ref: o.Ref, ConversationID: o.ConversationID, ContributionID: o.ContributionID})
	if err != nil {
		if g.countAttempt(ctx, k) {
			return err
		}
		g.m.revocations.WithLabelValues("gave_up").Inc()
		g.log.Warn("revocation failed for good", "msg_id", k.id, "number", k.to, "err", err)
		return g.unrevocable(ctx, k, "the revocation request failed")
	}
	g.m.revocations.WithLabelValues("requested").Inc()
	if _, err = update(ctx, g.rec, outKey(k), func(o *outRecord) (bool, error) {
		if o.State != outSent {
			return false, nil
		}
		o.State, o.Attempts = outRevoking, 0
		o.event(g.now(), evRevoke, ChannelRCS, 0, "")
		return true, nil
	}); err != nil {
		return err
	}
	// A result that never comes must not leave the message hanging.
	if err := g.bus.Schedule(ctx, "revoking."+k.String(), g.now().Add(g.cfg.RevocationTimeout), nil); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// revocationOverdue: no revocation result came within revocation_timeout.
func (g *Gateway) revocationOverdue(ctx context.Context, k copyKey) error {
	var o outRecord
	if _, err := g.rec.get(ctx, outKey(k), &o); errors.Is(err, errNoRecord) {
		return nil
	} else if err != nil {
		return err
	}
	if o.State != outRevoking {
		return nil // the result came
	}
	g.m.revocations.WithLabelValues("no_result").Inc()
	return g.unrevocable(ctx, k, "no revocation result within revocation_timeout")
}

// unrevocable settles an RCS message past the delivery timeout that was
// not revoked (why says why) as gateway.unrevocable says: by SMS as well,
// reported expired, or left waiting for its IMDN.
func (g *Gateway) unrevocable(ctx context.Context, k copyKey, why string) error {
	switch g.cfg.Unrevocable {
	case UnrevocableWait:
		g.log.Info("not delivered in time and not revoked; waiting for the IMDN", "msg_id", k.id, "number", k.to, "why", why)
		return nil
	case UnrevocableExpire:
		o, err := update(ctx, g.rec, outKey(k), func(o *outRecord) (bool, error) {
			if o.State != outSent && o.State != outRevoking {
				return false, nil
			}
			o.State = outExpired
			o.event(g.now(), evReport, "", 0, content.Expired.String()+": "+why)
			return true, nil
		})
		if err != nil || o.State != outExpired {
			return err // settled meanwhile, or try again
		}
		mid, _ := content.ParseMessageID(k.id)
		g.m.revocations.WithLabelValues("expired").Inc()
		return g.report(ctx, o.Recipient, o.Sender, o.Room, ChannelRCS, mid, content.Expired)
	}
	o, err := update(ctx, g.rec, outKey(k), func(o *outRecord) (bool, error) {
		if o.State != outSent && o.State != outRevoking {
			return false, nil
		}
		o.State = outRevoked
		o.event(g.now(), evRevoked, ChannelRCS, 0, "not revoked ("+why+"): SMS as well")
		return true, nil
	})
	if err != nil || o.State != outRevoked {
		return err
	}
	g.m.revocations.WithLabelValues("sms_anyway").Inc()
	return g.fallback(ctx, k)
}

// fallback sends by SMS a message whose RCS delivery was revoked.
func (g *Gateway) fallback(ctx context.Context, k copyKey) error {
	var o outRecord
	if _, err := g.rec.get(ctx, outKey(k), &o); errors.Is(err, errNoRecord) {
		return nil
	} else if err != nil {
		return err
	}
	if o.State != outRevoked {
		return nil
	}
	mid, _ := content.ParseMessageID(k.id)
	if o.Channel == ChannelRCS && !o.Sent.IsZero() {
		// sendSMS puts the SMS's time in Sent: keep the RCS one.
		o.event(o.Sent, evRCSSent, ChannelRCS, 0, "")
	}
	m, err := content.Decode(o.Content)
	var view forPhone
	if err == nil {
		view, err = renderForPhone(m, g.excerpt(ctx, o.Recipient))
	}
	if err == nil {
		err = g.sendSMS(ctx, k, o.From, view.Text, &o)
	}
	var f *failure
	switch {
	case err == nil:
		g.m.fallbacks.WithLabelValues("revoked").Inc()
		return nil
	case !errors.As(err, &f) && g.countAttempt(ctx, k):
		return err
	}
	g.log.Warn("SMS after revocation failed", "msg_id", k.id, "number", k.to, "err", err)
	if rerr := g.report(ctx, o.Recipient, o.Sender, o.Room, ChannelSMS, mid, content.Error); rerr != nil {
		return rerr
	}
	_, err = update(ctx, g.rec, outKey(k), func(o *outRecord) (bool, error) {
		o.State = outFailed
		o.event(g.now(), evReport, "", 0, content.Error.String())
		return true, nil
	})
	return err
}

// countAttempt counts a failed try at a timer's work and reports whether
// another is allowed.
func (g *Gateway) countAttempt(ctx context.Context, k copyKey) bool {
	o, err := update(ctx, g.rec, outKey(k), func(o *outRecord) (bool, error) {
		o.Attempts++
		return true, nil
	})
	return err != nil || o.Attempts < g.cfg.FallbackAttempts
}
