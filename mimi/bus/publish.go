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
// it (or knew it already). The envelope's ID is the de-duplication key: a
// second publish of the same ID within the duplicate window stores nothing
// and reports duplicate. A zero env.Accepted is stamped with the current
// time.
//
// When the bus cannot take the message now (no server, no stream, timeout,
// disconnected, ctx done) the error wraps ErrUnavailable and the caller
// should answer with a retryable failure. Other errors (bad subject or
// envelope, message too large) will not go away by retrying.
func (b *Bus) Publish(ctx context.Context, subject string, env Envelope, data []byte) (duplicate bool, err error) {
	kind := subjectKind(subject)
	if env.Accepted.IsZero() {
		env.Accepted = time.Now()
	}
	if err := b.checkPublish(subject, env); err != nil {
		b.m.publishFailures.WithLabelValues(kind, "rejected").Inc()
		return false, err
	}
	msg := &nats.Msg{Subject: subject, Header: env.Header(), Data: data}
	return b.publish(ctx, kind, msg, env.ID)
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

// publish sends msg and waits for the stream's ack; id names the message
// in errors.
func (b *Bus) publish(ctx context.Context, kind string, msg *nats.Msg, id string, opts ...jetstream.PublishOpt) (bool, error) {
	select {
	case <-b.closed:
		b.m.publishFailures.WithLabelValues(kind, "unavailable").Inc()
		return false, fmt.Errorf("bus: publish %s id %s: %w: %w", msg.Subject, id, ErrUnavailable, ErrClosed)
	default:
	}
	// A publish takes at most PublishTimeout, whatever the caller's
	// deadline: the peers waiting on it (an SMSC, a SIP transaction) are
	// better served by a retryable failure than by a long wait.
	ctx, cancel := context.WithTimeout(ctx, b.cfg.PublishTimeout)
	defer cancel()
	start := time.Now()
	ack, err := b.js.PublishMsg(ctx, msg, opts...)
	if err != nil && len(opts) > 0 && wrongLastSequence(err) {
		// Only Schedule sets an expectation: the subject already holds a
		// pending timer, so this one is a duplicate.
		b.m.publishes.WithLabelValues(kind).Inc()
		b.m.duplicates.WithLabelValues(kind).Inc()
		return true, nil
	}
	if err != nil {
		if permanent(err) {
			b.m.publishFailures.WithLabelValues(kind, "rejected").Inc()
			return false, fmt.Errorf("bus: publish %s id %s: %w", msg.Subject, id, err)
		}
		b.m.publishFailures.WithLabelValues(kind, "unavailable").Inc()
		return false, fmt.Errorf("bus: publish %s id %s: %w: %w", msg.Subject, id, ErrUnavailable, err)
	}
	b.m.publishSeconds.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	b.m.publishes.WithLabelValues(kind).Inc()
	if ack.Duplicate {
		b.m.duplicates.WithLabelValues(kind).Inc()
	}
	return ack.Duplicate, nil
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

// wrongLastSequence reports whether the server refused a publish because
// the subject's last sequence was not the one expected.
func wrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
