package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/mimigw/mimigw/gateway/identity"
	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/content"
	"github.com/mimigw/mimigw/mimi/uri"
)

// Receive turns what a phone user sent into a MIMI message on
// mimi.from.tel.<their number> and returns once JetStream has stored it.
func (g *Gateway) Receive(ctx context.Context, in Inbound) error {
	err := g.receive(ctx, in)
	outcome := "accepted"
	switch {
	case errors.Is(err, errDuplicate):
		outcome, err = "duplicate", nil
	case errors.Is(err, ErrRejected):
		outcome = "rejected"
	case err != nil:
		outcome = "unavailable"
	}
	g.m.inbound.WithLabelValues(string(in.Channel), outcome).Inc()
	return err
}

var errDuplicate = errors.New("duplicate")

// publishError is what a failed publish of a message from a phone means
// to the edge: ErrOversize when the bus cannot store one that large,
// ErrUnavailable when the bus could not take it now (the phone retries),
// ErrRejected for anything else the bus refused, which would fail again
// the same way.
func publishError(err error) error {
	switch {
	case errors.Is(err, bus.ErrTooLarge):
		return ErrOversize
	case errors.Is(err, bus.ErrUnavailable), errors.Is(err, bus.ErrClosed),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ErrUnavailable
	}
	return ErrRejected
}

func (g *Gateway) receive(ctx context.Context, in Inbound) error {
	if in.Channel != ChannelRCS && in.Channel != ChannelSMS {
		return fmt.Errorf("gateway: inbound on channel %q: %w", in.Channel, ErrRejected)
	}
	if in.From == "" || in.To == "" {
		return fmt.Errorf("gateway: inbound without sender or recipient: %w", ErrRejected)
	}
	body, err := bodyFromPhone(in.Parts)
	if err != nil {
		return fmt.Errorf("gateway: from %s: %w", in.From, err)
	}
	recipient, err := g.recipientOf(ctx, in.To, in.From)
	if err != nil {
		return err
	}
	sender := g.ids.UserURI(in.From)
	room, err := g.ids.Room(ctx, recipient, in.From)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	salt := randomSalt()
	if in.Ref != "" {
		// The same message sent again gets the same ID, which JetStream
		// de-duplicates. The recipient is part of it: a one-to-many
		// message reaches each recipient under one Ref.
		salt = g.salt("in", string(in.Channel), string(in.From), string(in.To), in.Ref)
	}
	m := &content.Message{Salt: salt, Extensions: content.Extensions{SenderURI: sender, RoomURI: room}, Body: body}
	if in.Incomplete {
		ext, err := content.NewExtension(IncompleteExtension, true)
		if err != nil {
			return err
		}
		m.Extensions.Other = append(m.Extensions.Other, ext)
	}
	data, err := m.Encode()
	if err != nil {
		return fmt.Errorf("gateway: from %s: %v: %w", in.From, err, ErrRejected)
	}
	id := content.ComputeID(sender, room, data, salt).String()
	now := g.now()
	env := bus.Envelope{ID: id, Sender: sender, Recipient: recipient, Room: room, Channel: string(in.Channel), Accepted: now}

	rec := inRecord{Channel: in.Channel, From: in.From, To: in.To, Ref: in.Ref, ConversationID: in.ConversationID,
		Notify: in.Notify, Excerpt: makeExcerpt(textOf(m)), At: now}
	if in.Channel == ChannelRCS && in.ConversationID != "" {
		// A write only when the phone started a new conversation.
		if err := g.ids.SetConversation(ctx, recipient, in.From, in.ConversationID); err != nil {
			return fmt.Errorf("gateway: message %s from %s: %w: %w", id, in.From, ErrUnavailable, err)
		}
	}
	// The record of whom to tell what, then the message; the peer hears
	// of success only when both stand, and a message sent again is a
	// duplicate for as long as its record lives.
	recData, err := marshalInRecord(rec)
	if err != nil {
		return err
	}
	dup, err := g.bus.PublishWithRecord(ctx, bus.SubjectFromPhone(in.From), env, data, inKey(id), recData)
	if err != nil {
		return fmt.Errorf("gateway: message %s from %s: %w: %w", id, in.From, publishError(err), err)
	}
	if dup {
		return errDuplicate
	}
	if g.log.Enabled(ctx, slog.LevelDebug) {
		// Checked first: the arguments alone cost three allocations.
		g.log.Debug("accepted from phone", "msg_id", id, "number", in.From, "channel", in.Channel)
	}
	return nil
}

// IncompleteExtension marks, with the value true, a MIMI message made of a
// concatenated SMS that arrived with parts missing (after the reassembly
// timeout).
var IncompleteExtension = content.ExtensionKey{Text: "mimigw-incomplete"}

// recipientOf says whom a phone user reaches by writing to number to: the
// MIMI user holding it (lent or virtual), or the phone user with that
// number, as a tel URI.
func (g *Gateway) recipientOf(ctx context.Context, to, from uri.Number) (string, error) {
	user, _, ok, err := g.ids.Recipient(ctx, to, from)
	switch {
	case errors.Is(err, identity.ErrUnknownNumber):
		return "", fmt.Errorf("gateway: %w: %w", ErrRejected, err)
	case err != nil:
		return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
	case ok:
		return user, nil
	}
	return to.TelURI(), nil
}

// Serves reports whether number stands for a MIMI user toward contact.
func (g *Gateway) Serves(ctx context.Context, contact, number uri.Number) (bool, error) {
	_, _, ok, err := g.ids.Recipient(ctx, number, contact)
	if errors.Is(err, identity.ErrUnknownNumber) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return ok, nil
}
