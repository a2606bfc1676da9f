package provider

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"

	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/content"
	"github.com/mimigw/mimigw/mimi/provider/transport"
	"github.com/mimigw/mimigw/mimi/provider/wire"
	"github.com/mimigw/mimigw/mimi/uri"
)

// errNotForProvider: a phone user's message for no room the provider
// protocol reaches (the operator's own platform reads it from the bus).
var errNotForProvider = errors.New("provider: not for a MIMI provider")

// carry is the outbox: every message a phone user sent (texts and status
// reports, from the from-phone stream) that belongs in a room of the MIMI
// provider protocol is encrypted as that phone user and sent to the
// room's hub (submitMessage), or, in a room hosted here, fanned out to its
// followers (notify), and stored for the room's other phone users here.
// The message is acknowledged on the bus only once the hub accepted it or
// every follower took it, and it is stored, so the stream is the
// outbox: a message not yet accepted is tried again with the bus's
// backoff, up to its attempts.
func (p *Provider) carry(ctx context.Context, d *bus.Delivery) {
	outcome, err := p.forward(ctx, d)
	// The logger with the message's attributes is made only for the
	// paths that log: most messages go through without a word.
	log := func() *slog.Logger {
		return p.log.With("msg_id", d.Envelope.ID, "room", d.Envelope.Room, "sender", d.Envelope.Sender, "attempt", d.Attempt)
	}
	switch {
	case err == nil || errors.Is(err, errNotForProvider):
		if err != nil {
			outcome = "not_for_provider"
		}
		if aerr := d.Ack(ctx); aerr != nil {
			log().Warn("outbox ack failed; the message will come again", "err", aerr)
		}
	case transient(err) && !d.LastAttempt:
		outcome = "retry"
		log().Info("outbox: trying again later", "err", err)
		_ = d.Nak(0)
	default:
		// A peer's refusal or a peer away past provider.outbox_attempts: counted
		// and logged, not an error of this gateway's.
		outcome = "failed"
		log().Warn("outbox: message cannot reach its room; given up", "err", err)
		if rerr := p.reportFailure(ctx, d); rerr != nil {
			log().Warn("outbox: the phone user was not told", "err", rerr)
		}
		_ = d.Term(err.Error())
	}
	p.m.outbox.WithLabelValues(outcome).Inc()
}

// reportFailure tells a phone user that its message cannot reach its
// room: an error status report from the recipient about it, on the phone
// user's to-phone subject, which the gateway turns into a failed IMDN for
// an RCS phone (an SMS phone has nothing to show it). A status report that
// failed is not reported; the report's ID comes from the message's, so
// reporting twice stores one.
func (p *Provider) reportFailure(ctx context.Context, d *bus.Delivery) error {
	env := d.Envelope
	n, ok := p.userNumber(env.Sender)
	if d.EnvelopeErr != nil || !ok {
		return nil
	}
	id, err := content.ParseMessageID(env.ID)
	if err != nil {
		return nil
	}
	if m, err := content.Decode(d.Data); err != nil {
		return nil
	} else if _, report, _ := m.StatusReport(); report {
		return nil
	}
	salt := sha256.Sum256([]byte("provider failure " + env.ID))
	r := content.NewStatusReport(env.Recipient, env.Room, []content.StatusEntry{{ID: id, Status: content.Error}}, [16]byte(salt[:16]))
	data, err := r.Encode()
	if err != nil {
		return err
	}
	renv := bus.Envelope{ID: content.ComputeID(env.Recipient, env.Room, data, r.Salt).String(), Sender: env.Recipient,
		Recipient: n.TelURI(), Room: env.Room, Accepted: p.now()}
	_, err = p.bus.Publish(ctx, bus.SubjectToPhone(n), renv, data)
	return err
}

func (p *Provider) forward(ctx context.Context, d *bus.Delivery) (string, error) {
	env := d.Envelope
	if d.EnvelopeErr != nil || env.Room == "" {
		return "", errNotForProvider
	}
	if domainOf(env.Room) == p.domain && !p.mayBeRemote(env.Recipient) {
		// A conversation named here with a phone or user of this
		// operator's: most of the traffic, and no room record to read.
		return "", errNotForProvider
	}
	rec, _, err := p.rooms.get(ctx, env.Room)
	switch {
	case errors.Is(err, errNoRoom):
		rec, err = p.open(ctx, env)
		if err != nil {
			return "", err
		}
	case err != nil:
		return "", err
	case rec.Creating != "":
		// Being made by another instance (or left half made): open
		// sorts it out.
		if rec, err = p.open(ctx, env); err != nil {
			return "", err
		}
	}
	if !rec.hasLocal(env.Sender) {
		return "", fmt.Errorf("%w: %s is not a member of %s", errNotForProvider, env.Sender, env.Room)
	}
	c, err := p.mls.Client(ctx, env.Sender)
	if err != nil {
		return "", err
	}
	ct, err := c.Encrypt(ctx, rec.GroupID, d.Data)
	if err != nil {
		return "", err
	}
	outcome := "submitted"
	if rec.Hub == p.domain {
		outcome = "fanned_out"
		fm := &wire.FanoutMessage{Timestamp: uint64(p.now().UnixMilli()), Message: ct}
		err = p.fanout(ctx, rec, "", fm)
	} else {
		err = p.submit(ctx, rec, env.Sender, ct)
	}
	if err != nil {
		return "", err
	}
	// The room's other phone users here: a hub need not send a provider
	// back what it submitted (this gateway's does not).
	return outcome, p.toLocal(ctx, rec, env.Sender, env.ID, d.Data)
}

// open creates the room of a conversation a phone user starts with a
// user of another provider, when the room is named for this gateway and
// its recipient is a peer's user (or a number a peer serves).
func (p *Provider) open(ctx context.Context, env bus.Envelope) (*roomRecord, error) {
	if domainOf(env.Room) != p.domain {
		return nil, errNotForProvider // a room elsewhere this gateway never joined
	}
	if _, ok := p.userNumber(env.Sender); !ok {
		return nil, errNotForProvider
	}
	target, peer, err := p.targetOf(ctx, env.Recipient)
	if err != nil {
		return nil, err
	}
	return p.createRoom(ctx, env.Room, env.Sender, target, peer)
}

// mayBeRemote reports whether a phone user writing to recipient may be
// writing to another provider's user: a configured peer's user, or a
// number outside provider.served.
func (p *Provider) mayBeRemote(recipient string) bool {
	if u, err := uri.ParseMIMI(recipient); err == nil {
		return u.Kind == uri.User && u.Domain != p.domain && p.isPeer(u.Domain)
	}
	n, err := uri.ParseNumber(recipient, "")
	return err == nil && !p.conf().serves(n)
}

// targetOf names the MIMI user a phone user wrote to and the peer serving
// them: a peer's user written to directly (a virtual or lent number of
// theirs), or a number outside provider.served that a peer says it serves.
func (p *Provider) targetOf(ctx context.Context, recipient string) (user, peer string, err error) {
	if !p.mayBeRemote(recipient) {
		return "", "", errNotForProvider
	}
	if u, err := uri.ParseMIMI(recipient); err == nil {
		return recipient, u.Domain, nil
	}
	n, _ := uri.ParseNumber(recipient, "")
	user, peer, err = p.lookupNumber(ctx, n)
	if err != nil {
		return "", "", err
	}
	if user == "" {
		return "", "", errNotForProvider
	}
	return user, peer, nil
}

// submit sends an encrypted message to its room's hub.
func (p *Provider) submit(ctx context.Context, rec *roomRecord, sender string, ct []byte) error {
	body, err := (&wire.SubmitMessageRequest{Protocol: wire.MLS10, AppMessage: ct, SendingURI: sender}).Marshal()
	if err != nil {
		return err
	}
	rb, err := p.call(ctx, rec.Hub, transport.SubmitMessage, rec.Room, body, 200)
	if err != nil {
		return err
	}
	resp, err := wire.UnmarshalSubmitMessageResponse(rb)
	if err != nil {
		return fmt.Errorf("provider: submitMessage answer from %s: %w", rec.Hub, err)
	}
	switch resp.Status {
	case wire.Accepted:
		return nil
	case wire.EpochTooOld:
		// The hub moved on; its commits are on their way by notify. The
		// message is encrypted again on the next attempt.
		return fmt.Errorf("%w: %s is at epoch %d", errPeerUnavailable, rec.Room, resp.CurrentEpoch)
	}
	return fmt.Errorf("%w: submitMessage to %s: %s", errRefused, rec.Hub, resp.Status)
}
