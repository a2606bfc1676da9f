package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publish puts a message on subject and returns once JetStream has stored
// it (or knew it already). The envelope's ID is the de-duplication key,
// with the recipient's digits on to-phone subjects (Envelope.Header): a
// second publish of the same message to the same subject within the
// duplicate window stores nothing and reports duplicate. A zero env.Accepted is stamped with the current
// time.
//
// When the bus cannot take the message now (no server, no stream, timeout,
// disconnected, ctx done) the error wraps ErrUnavailable and the caller
// should answer with a retryable failure. Other errors (bad subject or
// envelope, message too large) will not go away by retrying; a message
// that with its headers is over the server's max payload (MaxPayload) is
// refused before anything is sent, wrapping ErrTooLarge, as is one the
// stream refuses for its size.
func (b *Bus) Publish(ctx context.Context, subject string, env Envelope, data []byte) (duplicate bool, err error) {
	msg, err := b.message(subject, env, data)
	if err != nil {
		return false, err
	}
	return b.publish(ctx, subjectKind(subject), msg, env.ID)
}

// message checks a message for the contract and builds it, stamping a zero
// env.Accepted with the current time.
func (b *Bus) message(subject string, env Envelope, data []byte) (*nats.Msg, error) {
	if env.Accepted.IsZero() {
		env.Accepted = time.Now()
	}
	if err := b.checkPublish(subject, env); err != nil {
		b.m.publishFailures.WithLabelValues(subjectKind(subject), "rejected").Inc()
		return nil, err
	}
	msg := &nats.Msg{Subject: subject, Header: env.Header(subject), Data: data}
	if size, limit := len(data)+headerSize(msg.Header), b.MaxPayload(); limit > 0 && int64(size) > limit {
		b.m.publishFailures.WithLabelValues(subjectKind(subject), "rejected").Inc()
		return nil, fmt.Errorf("bus: publish %s id %s: %w: %d bytes with headers, max payload %d",
			subject, env.ID, ErrTooLarge, size, limit)
	}
	return msg, nil
}

// headerSize is how many bytes h takes on the wire, as the client counts
// it against the max payload: the version line, a line per value, the
// empty line.
func headerSize(h nats.Header) int {
	if len(h) == 0 {
		return 0
	}
	n := len("NATS/1.0\r\n") + 2
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(": ") + len(v) + 2
		}
	}
	return n
}

func (b *Bus) checkPublish(subject string, env Envelope) error {
	if !validSubject(subject) {
		return fmt.Errorf("bus: publish %.80q: %w", subject, ErrBadSubject)
	}
	if err := env.Validate(); err != nil {
		return fmt.Errorf("bus: publish %s: %w", subject, err)
	}
	if isFromPhone(subject) && env.Channel != ChannelRCS && env.Channel != ChannelSMS {
		return fmt.Errorf("bus: publish %s: %w: %s must be rcs or sms on from-phone messages, got %q",
			subject, ErrBadEnvelope, HeaderChannel, env.Channel)
	}
	return nil
}

// PublishWithRecord publishes a message as Publish does and creates record
// under key in the deliveries bucket, for what must stand beside the
// message (such as whom to notify about it). A record already under key
// stays as it is: a message sent again keeps the record of its first
// sending, with what has happened to it since. The record is written
// first, then the message; it returns once JetStream has stored both (or
// found them there). duplicate is the message's, and lasts as long as its
// record: a message sent again after the duplicate window, while its
// record lives, is found on its subject (storedEarlier) and not stored
// again.
func (b *Bus) PublishWithRecord(ctx context.Context, subject string, env Envelope, data []byte, key string, record []byte) (duplicate bool, err error) {
	msg, err := b.message(subject, env, data)
	if err != nil {
		return false, err
	}
	if !validRecordKey(key) {
		b.m.publishFailures.WithLabelValues("record", "rejected").Inc()
		return false, fmt.Errorf("bus: record %.80q: %w", key, jetstream.ErrInvalidKey)
	}
	rec := b.startPublish("record", &nats.Msg{Subject: b.recordSubject(key), Data: record,
		Header: nats.Header{jetstream.ExpectedLastSubjSeqHeader: createOnly}}, key)
	known, err := b.awaitPublish(ctx, rec)
	if err != nil {
		return false, err
	}
	if known {
		earlier, err := b.storedEarlier(ctx, subject, msg.Header.Get(jetstream.MsgIDHeader), key)
		if err != nil {
			return false, err
		}
		if earlier {
			b.m.duplicates.WithLabelValues(subjectKind(subject)).Inc()
			return true, nil
		}
	}
	return b.publish(ctx, subjectKind(subject), msg, env.ID)
}

// createOnly, as the expected last sequence of a subject, makes a publish
// a create: the server refuses it when the subject holds a message, and
// the publish reports a duplicate (Schedule, PublishWithRecord). Set as a
// header directly, it costs less than the client's publish option.
var createOnly = []string{"0"}

// validRecordKey accepts what a KV key may be: dot-separated non-empty
// tokens of letters, digits and "-_=/".
func validRecordKey(k string) bool { return dottedTokens(k, "-_=/", 1024) }

// maxPendingPublishes bounds the publishes awaiting their ack on one
// connection; beyond it a publish waits briefly for room, then fails as
// unavailable.
const maxPendingPublishes = 8192

// pendingPublish is a message sent and not yet acknowledged.
type pendingPublish struct {
	kind, subject, id string
	msg               *nats.Msg
	createOnly        bool // the publish carries createOnly
	start             time.Time
	ack               jetstream.PubAckFuture
	err               error
	result            *ackResult // the outcome of the last sending, already awaited
}

type ackResult struct {
	ack *jetstream.PubAck
	err error
}

// startPublish sends msg without waiting for its ack; id names the
// message in errors.
func (b *Bus) startPublish(kind string, msg *nats.Msg, id string) *pendingPublish {
	p := &pendingPublish{kind: kind, subject: msg.Subject, id: id, msg: msg, start: time.Now(),
		createOnly: msg.Header.Get(jetstream.ExpectedLastSubjSeqHeader) != ""}
	b.send(p)
	return p
}

// send (re)sends p's message.
func (b *Bus) send(p *pendingPublish) {
	p.ack, p.err, p.result = nil, nil, nil
	select {
	case <-b.closed:
		p.err = ErrClosed
		return
	default:
	}
	p.ack, p.err = b.js.PublishMsgAsync(p.msg)
}

// awaitAck waits for the answer to p's last sending, until deadline.
func (b *Bus) awaitAck(ctx context.Context, p *pendingPublish, deadline time.Time) (*jetstream.PubAck, error) {
	if r := p.result; r != nil {
		p.result = nil
		return r.ack, r.err
	}
	if p.err != nil {
		return nil, p.err
	}
	// The client fails an ack that has not come within the ack timeout of
	// its sending; a timer of our own is needed only for a deadline before
	// that.
	var expired <-chan time.Time
	if left := time.Until(deadline); left < min(b.cfg.PublishAckTimeout, b.cfg.PublishTimeout) {
		t := time.NewTimer(left)
		defer t.Stop()
		expired = t.C
	}
	select {
	case ack := <-p.ack.Ok():
		return ack, nil
	case err := <-p.ack.Err():
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-expired:
		return nil, jetstream.ErrAsyncPublishTimeout
	}
}

// awaitPublish waits for the ack of p, sending it again while the stream
// cannot take it (failover.go). A publish takes at most PublishTimeout,
// whatever the caller's deadline, and each sending waits at most
// PublishAckTimeout for its ack: the peers waiting on it (an SMSC, a SIP
// transaction) are better served by a retryable failure than by a long
// wait.
func (b *Bus) awaitPublish(ctx context.Context, p *pendingPublish) (bool, error) {
	deadline := p.start.Add(b.cfg.PublishTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	var sg *streamGate
	backoff := probeFirst
	maybeStored := false // an earlier sending may have been stored
	for {
		ack, err := b.awaitAck(ctx, p, deadline)
		if err != nil && p.createOnly && wrongLastSequence(err) {
			// The subject already holds a pending timer or a record (this
			// publish's own, if an earlier sending was stored), so this
			// one is a duplicate.
			b.m.publishes.WithLabelValues(p.kind).Inc()
			b.m.duplicates.WithLabelValues(p.kind).Inc()
			b.gates.succeeded(p.subject)
			return true, nil
		}
		if err == nil {
			b.gates.succeeded(p.subject)
			b.m.publishSeconds.WithLabelValues(p.kind).Observe(time.Since(p.start).Seconds())
			b.m.publishes.WithLabelValues(p.kind).Inc()
			if ack.Duplicate {
				b.m.duplicates.WithLabelValues(p.kind).Inc()
			}
			// A duplicate found by a sending after one that may have been
			// stored is this publish's own message.
			return ack.Duplicate && !maybeStored, nil
		}
		if permanent(err) {
			b.m.publishFailures.WithLabelValues(p.kind, "rejected").Inc()
			if tooLarge(err) {
				return false, fmt.Errorf("bus: publish %s id %s: %w: %w", p.subject, p.id, ErrTooLarge, err)
			}
			return false, fmt.Errorf("bus: publish %s id %s: %w", p.subject, p.id, err)
		}
		if !retryable(err) || !time.Now().Before(deadline) {
			return false, b.unavailable(p, err)
		}
		if sg == nil {
			sg = b.gates.get(gateKey(p.subject))
		}
		sg.failed(err)
		maybeStored = maybeStored || mayBeStored(err)
		probe, ok := sg.wait(ctx, deadline, backoff)
		if !ok {
			return false, b.unavailable(p, err)
		}
		backoff = min(2*backoff, probeMax)
		b.m.publishRetries.WithLabelValues(p.kind).Inc()
		b.send(p)
		if probe {
			// Wait for this sending's outcome before another may probe.
			ack, err := b.awaitAck(ctx, p, deadline)
			sg.endProbe()
			p.result = &ackResult{ack, err}
		}
	}
}

// unavailable counts and wraps a publish that failed for now.
func (b *Bus) unavailable(p *pendingPublish, err error) error {
	b.m.publishFailures.WithLabelValues(p.kind, "unavailable").Inc()
	return fmt.Errorf("bus: publish %s id %s: %w: %w", p.subject, p.id, ErrUnavailable, err)
}

// publish sends msg and waits for the stream's ack.
func (b *Bus) publish(ctx context.Context, kind string, msg *nats.Msg, id string) (bool, error) {
	return b.awaitPublish(ctx, b.startPublish(kind, msg, id))
}

// permanent reports whether a publish error will recur however often the
// message is sent. Everything else counts as unavailable: a failure the
// publisher may retry, never a success.
func permanent(err error) bool {
	if errors.Is(err, nats.ErrMaxPayload) || errors.Is(err, nats.ErrBadSubject) ||
		errors.Is(err, nats.ErrHeadersNotSupported) || errors.Is(err, nats.ErrBadHeaderMsg) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum
	}
	return false
}

// tooLarge reports whether a publish failed for the message's size: over
// the server's max payload, or over the stream's largest message.
func tooLarge(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, nats.ErrMaxPayload) ||
		errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum
}

// wrongLastSequence reports whether the server refused a publish because
// the subject's last sequence was not the one expected.
func wrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
