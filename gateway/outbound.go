package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mimigw/mimigw/gateway/identity"
	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/content"
	"github.com/mimigw/mimigw/mimi/uri"
)

// outbound is one MIMI message for a phone user, as the gateway works on
// it.
type outbound struct {
	id        content.MessageID
	msg       *content.Message
	data      []byte
	sender    string // MIMI sender URI
	room      string
	recipient uri.Number
	channel   Channel   // asked for: auto, rcs or sms
	accepted  time.Time // Mimi-Accepted: when the bus took it
}

// failure is an outcome that ends a message: the sender gets an error
// report.
type failure struct {
	reason string
	err    error
}

func (f *failure) Error() string { return f.reason + ": " + f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

func fail(reason string, err error) error { return &failure{reason: reason, err: err} }

// handleToPhone delivers one message from mimi.to.tel.>. It acks only once
// the phone network took the message and its delivery state is written;
// what can never go, or has run out of attempts, becomes an error report.
func (g *Gateway) handleToPhone(ctx context.Context, d *bus.Delivery) {
	o, err := g.parse(d)
	if err == nil {
		err = g.deliver(ctx, o, d.Attempt)
	}
	var f *failure
	switch {
	case err == nil:
		if aerr := d.Ack(ctx); aerr != nil {
			g.log.Warn("ack failed; the message may be delivered again", "msg_id", o.id, "err", aerr)
		}
		return
	case !errors.As(err, &f) && !d.LastAttempt:
		g.log.Info("delivery to phone will be retried", "msg_id", d.Envelope.ID, "attempt", d.Attempt, "err", err)
		g.m.outbound.WithLabelValues(string(o.channelOr()), "retry").Inc()
		_ = d.Nak(0)
		return
	}
	if f == nil {
		f = &failure{reason: "gave up after retries", err: err}
	}
	g.log.Warn("message for phone failed", "msg_id", d.Envelope.ID, "number", d.Subject, "reason", f.reason, "err", f.err)
	g.m.outbound.WithLabelValues(string(o.channelOr()), "failed").Inc()
	if o != nil {
		if rerr := g.reportWhy(ctx, o.recipient, o.sender, o.room, o.channel, o.id, content.Error, f.reason); rerr != nil {
			// Without the report the sender would never know: try again.
			g.log.Warn("error report not published; retrying the message", "msg_id", o.id, "err", rerr)
			_ = d.Nak(0)
			return
		}
	}
	_ = d.Term(f.reason)
}

func (o *outbound) channelOr() Channel {
	if o == nil || o.channel == "" {
		return ChannelAuto
	}
	return o.channel
}

// parse checks a message from the bus against the contract. What fails
// here fails for good; when the message names its sender and ID well
// enough, o is returned too so the sender can be told.
func (g *Gateway) parse(d *bus.Delivery) (*outbound, error) {
	n, err := bus.NumberFromSubject(d.Subject)
	if err != nil {
		return nil, fail("bad subject", err)
	}
	env := d.Envelope
	id, idErr := content.ParseMessageID(env.ID)
	o := &outbound{id: id, sender: env.Sender, room: env.Room, recipient: n, data: d.Data, channel: Channel(env.Channel), accepted: env.Accepted}
	if idErr != nil || env.Sender == "" {
		return nil, fail("bad envelope", fmt.Errorf("message on %s without a usable ID or sender: %v", d.Subject, errors.Join(idErr, d.EnvelopeErr)))
	}
	if d.EnvelopeErr != nil {
		return o, fail("bad envelope", d.EnvelopeErr)
	}
	switch o.channel {
	case "":
		o.channel = g.cfg.Channel
	case ChannelAuto, ChannelRCS, ChannelSMS:
	default:
		return o, fail("bad envelope", fmt.Errorf("Mimi-Channel %q", env.Channel))
	}
	m, err := content.Decode(d.Data)
	if err != nil {
		return o, fail("bad content", err)
	}
	o.msg = m
	if m.Extensions.SenderURI != "" && m.Extensions.SenderURI != env.Sender {
		return o, fail("bad content", fmt.Errorf("content sender %q is not Mimi-Sender %q", m.Extensions.SenderURI, env.Sender))
	}
	if m.Extensions.RoomURI != "" {
		if env.Room != "" && env.Room != m.Extensions.RoomURI {
			return o, fail("bad content", fmt.Errorf("content room %q is not Mimi-Room %q", m.Extensions.RoomURI, env.Room))
		}
		o.room = m.Extensions.RoomURI
	}
	if want := content.ComputeID(m.Extensions.SenderURI, m.Extensions.RoomURI, d.Data, m.Salt); want != id {
		return o, fail("bad content", fmt.Errorf("Mimi-Id %s is not the content's message ID %s", id, want))
	}
	return o, nil
}

// deliver sends o by RCS or SMS and records what became of it. A
// *failure ends the message; any other error is retried.
func (g *Gateway) deliver(ctx context.Context, o *outbound, attempt int) error {
	k := copyKey{id: o.id.String(), to: o.recipient}
	if attempt > 1 {
		// An earlier attempt may have sent it and died before the ack.
		var done outRecord
		if _, err := g.rec.getOut(ctx, k, &done); err == nil {
			g.m.outbound.WithLabelValues(string(done.Channel), "duplicate").Inc()
			return nil
		} else if !errors.Is(err, errNoRecord) {
			return err
		}
		g.m.resent.Inc()
	}
	if o.room == "" {
		o.room = identity.DMRoom(g.ids.Domain(), o.sender, g.ids.UserURI(o.recipient))
	}
	if entries, ok, err := o.msg.StatusReport(); ok {
		if err != nil {
			return fail("bad content", err)
		}
		return g.notifyPhone(ctx, o, entries)
	}
	view, err := renderForPhone(o.msg, g.excerpt(ctx, o.recipient))
	if err != nil {
		return fail("cannot render", err)
	}
	if err := g.checkLimits(ctx, o); err != nil {
		return err
	}
	from, err := g.ids.Sender(ctx, o.sender, o.recipient)
	switch {
	case errors.Is(err, identity.ErrPoolExhausted):
		return fail("no number to send from", err)
	case err != nil:
		return err
	}
	if err := g.ids.SetRoom(ctx, o.sender, o.recipient, o.room); err != nil {
		return err
	}
	rec := outRecord{
		ID: o.id.String(), Sender: o.sender, Recipient: o.recipient, Room: o.room, From: from.Address(),
		State: outSent, Excerpt: makeExcerpt(view.Text), Accepted: g.now(), Asked: o.channel,
		MIMIAccepted: o.accepted,
	}
	useRCS, caps, note, err := g.chooseRCS(ctx, o, from)
	if err != nil {
		return err
	}
	rec.Caps = note
	if useRCS {
		err := g.sendRCS(ctx, k, o, from.Number, view, caps, &rec)
		switch {
		case err == nil:
			return nil
		case o.channel == ChannelRCS:
			if errors.Is(err, ErrNotRCS) || errors.Is(err, ErrOffline) || errors.Is(err, ErrRejected) {
				return fail("not reachable by RCS", err)
			}
			return err
		case g.sms == nil:
			return fail("no route: RCS failed and SMS is not configured", err)
		}
		g.log.Info("RCS failed, sending by SMS", "msg_id", o.id, "number", o.recipient, "err", err)
		g.m.fallbacks.WithLabelValues(fallbackReason(err)).Inc()
		rec.RCSError = fallbackReason(err) + ": " + err.Error()
	}
	if err := g.checkSegments(ctx, o, view.Text); err != nil {
		return err
	}
	return g.sendSMS(ctx, k, from.Address(), view.Text, &rec)
}

func fallbackReason(err error) string {
	switch {
	case errors.Is(err, ErrTooLarge):
		return "too_large"
	case errors.Is(err, ErrNotRCS):
		return "not_rcs"
	case errors.Is(err, ErrOffline):
		return "offline"
	case errors.Is(err, ErrRejected):
		return "rejected"
	}
	return "error"
}

// chooseRCS applies the routing rule: a forced channel, else RCS when the
// number is known to be RCS-capable (asking by OPTIONS when that is not
// known or stale), else SMS. The note says, for the delivery record, what
// the capability lookup found or why none was made.
func (g *Gateway) chooseRCS(ctx context.Context, o *outbound, from identity.Sender) (bool, Capabilities, *capNote, error) {
	none := func(why string) *capNote { return &capNote{Result: why} }
	switch {
	case o.channel == ChannelSMS:
		if g.sms == nil {
			return false, Capabilities{}, nil, fail("no route: SMS is not configured", ErrRejected)
		}
		return false, Capabilities{}, none("not asked: channel sms"), nil
	case from.Kind == identity.SenderAlphanumeric:
		// RCS needs a number to answer; an alphanumeric sender is SMS only.
		if g.sms == nil || o.channel == ChannelRCS {
			return false, Capabilities{}, nil, fail("no route: alphanumeric senders go by SMS only", ErrRejected)
		}
		return false, Capabilities{}, none("not asked: alphanumeric sender"), nil
	case g.rcs == nil:
		if o.channel == ChannelRCS || g.sms == nil {
			return false, Capabilities{}, nil, fail("no route: RCS is not configured", ErrRejected)
		}
		return false, Capabilities{}, none("not asked: RCS not configured"), nil
	case o.channel == ChannelRCS:
		caps, _, note := g.capabilities(ctx, o.recipient)
		return true, caps, note, nil
	}
	caps, known, note := g.capabilities(ctx, o.recipient)
	if known && caps.Chat {
		return true, caps, note, nil
	}
	if g.sms == nil {
		return false, caps, note, fail("no route: the number is not reachable by RCS and SMS is not configured", ErrNotRCS)
	}
	return false, caps, note, nil
}

// sendRCS sends by RCS and records it as the copy k; the IMDN delivered,
// or a revocation and an SMS after DeliveryTimeout, follow.
func (g *Gateway) sendRCS(ctx context.Context, k copyKey, o *outbound, from uri.Number, view forPhone, caps Capabilities, rec *outRecord) error {
	conv, err := g.conversationID(ctx, o.sender, o.recipient, o.room)
	if err != nil {
		return err
	}
	m := OutboundRCS{
		ID: o.id.String(), From: from, To: o.recipient,
		Ref:            imdnRef(k),
		ConversationID: conv,
		ContributionID: uuidFrom("contribution", o.id.String()),
		Parts:          view.Parts,
		Notify:         Notifications{Delivery: true, Display: g.cfg.ReadReceipts},
		Sent:           g.now(),
		LargeMessage:   caps.LargeMessage,
		ChatSession:    caps.ChatSession,
	}
	if err := g.rcs.SendRCS(ctx, m); err != nil {
		if errors.Is(err, ErrNotRCS) {
			g.forgetRCS(ctx, o.recipient)
		}
		return err
	}
	rec.Channel, rec.Sent = ChannelRCS, g.now()
	rec.Ref, rec.ConversationID, rec.ContributionID = m.Ref, m.ConversationID, m.ContributionID
	rec.Revocable = caps.Revoke
	// The delivery timer, and the content an SMS would need, wherever the
	// timeout can lead to something: a revocation, or the policy for
	// messages that cannot be revoked.
	if g.sms != nil && g.cfg.DeliveryTimeout > 0 && (rec.Revocable || g.cfg.Unrevocable != UnrevocableWait) {
		rec.Content = o.data
	}
	if err := g.record(ctx, k, rec, []refKey{{key: rcsRefKey(m.Ref)}}); err != nil {
		return err
	}
	if rec.Content != nil {
		at := rec.Accepted.Add(g.cfg.DeliveryTimeout)
		if err := g.bus.Schedule(ctx, "revoke."+k.String(), at, nil); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	g.m.outbound.WithLabelValues(string(ChannelRCS), "sent").Inc()
	return nil
}

// sendSMS sends text by SMS to the copy k's recipient and records its
// segments.
func (g *Gateway) sendSMS(ctx context.Context, k copyKey, from, text string, rec *outRecord) error {
	if g.sms == nil {
		return fail("no route: SMS is not configured", ErrRejected)
	}
	sent, err := g.sms.SendSMS(ctx, OutboundSMS{ID: k.id, From: from, To: rec.Recipient, Text: text, Receipt: true})
	if errors.Is(err, ErrRejected) {
		return fail("refused by the SMS side", err)
	}
	if err != nil {
		return err
	}
	rec.Channel = ChannelSMS
	rec.State = outSent
	rec.Sent = g.now()
	rec.Source = sent.Source
	rec.Segments = sent.Refs
	rec.SegState = make([]Status, len(sent.Refs))
	rec.Content = nil
	keys := make([]refKey, len(sent.Refs))
	for i, ref := range sent.Refs {
		keys[i] = refKey{key: smsRefKey(sent.Source, ref), segment: i}
	}
	if err := g.record(ctx, k, rec, keys); err != nil {
		return err
	}
	g.m.outbound.WithLabelValues(string(ChannelSMS), "sent").Inc()
	return nil
}

type refKey struct {
	key     string
	segment int
}

// record writes what was sent as the copy k, then the keys receipts find
// it by, and applies receipts that arrived before the keys.
func (g *Gateway) record(ctx context.Context, k copyKey, rec *outRecord, refs []refKey) error {
	if err := g.rec.put(ctx, outKey(k), rec); err != nil {
		return err
	}
	for _, r := range refs {
		own := refRecord{ID: k.id, To: k.to, Segment: r.segment, Taken: rec.Accepted}
		exists, err := g.rec.create(ctx, r.key, own)
		if err != nil {
			return err
		}
		if !exists {
			continue
		}
		var early []Receipt
		var before string
		if _, err := update(ctx, g.rec, r.key, func(v *refRecord) (bool, error) {
			if v.copyOf() == k {
				return false, nil // written by an earlier attempt of this message
			}
			if v.ID != "" && v.Taken.After(rec.Accepted) {
				return false, nil // a newer message owns it already
			}
			// Receipts that came before their message, or a network
			// message id given out again (an SMSC restarted and counts
			// from the start): the newest submission owns the id, as the
			// receipts to come are about it.
			early, before = v.Early, v.copyOf().String()
			*v = own
			return true, nil
		}); err != nil {
			return err
		}
		if before != "" {
			g.log.Info("network message id given out again; it now names the newer message", "key", r.key, "msg_id", k.id, "number", k.to, "before", before)
			g.m.receipts.WithLabelValues(string(rec.Channel), "id_reused").Inc()
		}
		for _, rc := range early {
			if err := g.applyReceipt(ctx, k, r.segment, rc, evReceipt); err != nil {
				return err
			}
			g.m.receipts.WithLabelValues(string(rc.Channel), "early").Inc()
		}
	}
	return nil
}

// conversationID keeps one RCS Conversation-ID per conversation: the one
// the phone user chose, else one derived from the room.
func (g *Gateway) conversationID(ctx context.Context, user string, n uri.Number, room string) (string, error) {
	conv, err := g.ids.Conversation(ctx, user, n)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if conv == "" {
		conv = uuidFrom("conversation", room, string(n))
	}
	return conv, nil
}

// imdnRef is the imdn.Message-ID of the copy k of a MIMI message sent by
// RCS: derived from its ID and recipient, so that a message sent again
// keeps it and each phone user of a room has one of their own.
func imdnRef(k copyKey) string {
	h := sha256.Sum256([]byte(k.String()))
	return "mimi" + hex.EncodeToString(h[:16])
}

// uuidFrom derives a version 8 UUID (RFC 9562) from names.
func uuidFrom(names ...string) string {
	h := sha256.Sum256([]byte(strings.Join(names, "\x00")))
	h[6] = h[6]&0x0f | 0x80
	h[8] = h[8]&0x3f | 0x80
	x := hex.EncodeToString(h[:16])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// excerpt finds the text of an earlier message in n's conversations for
// quoting it.
func (g *Gateway) excerpt(ctx context.Context, n uri.Number) excerptFunc {
	return func(id content.MessageID) string {
		var out outRecord
		if _, err := g.rec.getOut(ctx, copyKey{id: id.String(), to: n}, &out); err == nil {
			return out.Excerpt
		}
		var in inRecord
		if _, err := g.rec.get(ctx, inKey(id.String()), &in); err == nil {
			return in.Excerpt
		}
		return ""
	}
}

// notifyPhone turns a MIMI user's status report about messages a phone
// user sent into IMDNs, where the phone user asked for them. SMS has no
// way to tell a phone: such reports end here.
func (g *Gateway) notifyPhone(ctx context.Context, o *outbound, entries []content.StatusEntry) error {
	for _, e := range entries {
		var st Status
		switch e.Status {
		case content.Delivered:
			st = StatusDelivered
		case content.Read:
			st = StatusRead
		case content.Error:
			st = StatusFailed
		default:
			continue
		}
		key := inKey(e.ID.String())
		var in inRecord
		if _, err := g.rec.get(ctx, key, &in); errors.Is(err, errNoRecord) {
			g.m.notified.WithLabelValues("unknown").Inc()
			continue
		} else if err != nil {
			return err
		}
		if in.From != o.recipient || in.Channel != ChannelRCS || g.rcs == nil {
			g.m.notified.WithLabelValues(string(in.Channel)).Inc()
			continue
		}
		wanted := st == StatusFailed || (st == StatusDelivered && in.Notify.Delivery) || (st == StatusRead && in.Notify.Display)
		if !wanted || slices.Contains(in.Told, st) {
			g.m.notified.WithLabelValues("not_requested").Inc()
			continue
		}
		// Claim the notification before sending it, so that two reports
		// handled at once send one IMDN; give the claim back if it fails.
		claimed := false
		if _, err := update(ctx, g.rec, key, func(r *inRecord) (bool, error) {
			claimed = !slices.Contains(r.Told, st)
			if claimed {
				r.Told = append(r.Told, st)
			}
			return claimed, nil
		}); err != nil {
			return err
		}
		if !claimed {
			continue
		}
		n := Notification{From: in.To, To: in.From, Ref: in.Ref, ConversationID: in.ConversationID, Status: st, At: g.now()}
		if err := g.rcs.Notify(ctx, n); err != nil {
			_, _ = update(ctx, g.rec, key, func(r *inRecord) (bool, error) {
				r.Told = slices.DeleteFunc(r.Told, func(s Status) bool { return s == st })
				return true, nil
			})
			return err
		}
		g.m.notified.WithLabelValues("sent").Inc()
	}
	return nil
}

// report publishes a status report about message id to its MIMI sender,
// as the phone user n. Its ID is derived from the message and the status,
// so a report made twice is stored once.
func (g *Gateway) report(ctx context.Context, n uri.Number, to, room string, ch Channel, id content.MessageID, st content.Status) error {
	return g.reportWhy(ctx, n, to, room, ch, id, st, "")
}

// ReasonExtension carries, in an error report, why the message failed (a
// short English phrase, such as "refused: sender limit: 10 messages per
// 1m0s").
var ReasonExtension = content.ExtensionKey{Text: "mimigw-reason"}

// reportWhy is report with the reason, when there is one, in the
// ReasonExtension.
func (g *Gateway) reportWhy(ctx context.Context, n uri.Number, to, room string, ch Channel, id content.MessageID, st content.Status, reason string) error {
	phone := g.ids.UserURI(n)
	m := content.NewStatusReport(phone, room, []content.StatusEntry{{ID: id, Status: st}}, g.salt("report", id.String(), st.String()))
	if reason != "" {
		ext, err := content.NewExtension(ReasonExtension, reason)
		if err != nil {
			return err
		}
		m.Extensions.Other = append(m.Extensions.Other, ext)
	}
	data, err := m.Encode()
	if err != nil {
		return err
	}
	rid := content.ComputeID(phone, room, data, m.Salt)
	if ch == ChannelAuto || ch == "" {
		ch = ChannelSMS
	}
	env := bus.Envelope{ID: rid.String(), Sender: phone, Recipient: to, Room: room, Channel: string(ch), Accepted: g.now()}
	if _, err := g.bus.Publish(ctx, bus.SubjectFromPhone(n), env, data); err != nil {
		return fmt.Errorf("gateway: report %s on %s: %w", st, id, err)
	}
	g.m.reports.WithLabelValues(st.String()).Inc()
	return nil
}
