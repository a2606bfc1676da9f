package bus

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	// timerPrefix starts the subjects of the timer stream; the key follows.
	timerPrefix = "mimigw.timer."
	// headerTimerAt carries when a timer is due, RFC 3339 with nanoseconds.
	headerTimerAt = "Mimigw-Timer-At"
	maxTimerKey   = 256
)

// ErrBadTimerKey is returned for a key that cannot name a timer.
var ErrBadTimerKey = errors.New("bad timer key")

// Timer is a durable timer that has come due.
type Timer struct {
	Key  string
	At   time.Time
	Data []byte
	// Attempt counts deliveries, including those before it was due.
	Attempt int
}

// Schedule sets a timer that fires at (or soon after) at, on whichever
// gateway instance runs ConsumeTimers; it survives restarts of instances
// and of the server. Keys are dot-separated tokens of letters, digits and
// "-_=:" (such as "revoke.<msg id>"). While a timer with the same key is
// pending, Schedule does nothing and returns nil: timers are de-duplicated
// by key. Once it has fired, the key may be used again.
func (b *Bus) Schedule(ctx context.Context, key string, at time.Time, data []byte) error {
	if !validTimerKey(key) {
		return fmt.Errorf("bus: schedule %.80q: %w: want dot-separated tokens of letters, digits and -_=: (at most %d bytes)", key, ErrBadTimerKey, maxTimerKey)
	}
	// The subject must hold no message yet: a pending timer with this key
	// makes the server refuse the publish, which is the de-duplication.
	msg := &nats.Msg{Subject: timerPrefix + key, Data: data, Header: nats.Header{
		headerTimerAt: {at.UTC().Format(time.RFC3339Nano)}, jetstream.ExpectedLastSubjSeqHeader: createOnly}}
	_, err := b.publish(ctx, "timer", msg, key)
	if err != nil {
		return fmt.Errorf("bus: schedule %s: %w", key, err)
	}
	return nil
}

// ConsumeTimers fires due timers: handle runs on up to workers goroutines,
// and a timer is done when handle returns nil. A timer not yet due goes
// back to the server until it is; one whose handler fails (or panics) is
// retried after a backoff that grows with how long it has been overdue.
// Timers have no delivery limit. A timer may fire more than once (an
// instance dying between handle and the ack), so handle must be
// idempotent. Shutdown works as in ConsumeToPhone.
func (b *Bus) ConsumeTimers(ctx context.Context, workers int, handle func(context.Context, Timer) error) error {
	if workers < 1 {
		return fmt.Errorf("bus: consume %s: workers must be at least 1, got %d", b.cfg.TimerStream, workers)
	}
	return b.consume(ctx, b.cfg.TimerStream, b.timerConsumerConfig(), workers,
		func(hctx context.Context, m jetstream.Msg) { b.fireTimer(hctx, m, handle) })
}

func (b *Bus) fireTimer(ctx context.Context, m jetstream.Msg, handle func(context.Context, Timer) error) {
	b.m.deliveries.WithLabelValues(roleTimers).Inc()
	t := Timer{Key: m.Subject()[len(timerPrefix):], Data: m.Data(), Attempt: 1}
	if meta, err := m.Metadata(); err == nil {
		t.Attempt = int(meta.NumDelivered)
	}
	log := b.log.With("timer", t.Key)
	at, err := time.Parse(time.RFC3339Nano, m.Headers().Get(headerTimerAt))
	if err != nil {
		// Only a publisher other than Schedule can write this; it can never
		// become valid, so it is removed, loudly.
		b.m.badEnvelopes.WithLabelValues(roleTimers).Inc()
		log.Error("bus timer without a valid due time; removed", "header", headerTimerAt, "err", err)
		b.settle(log, "term", m.TermWithReason("no valid "+headerTimerAt))
		return
	}
	t.At = at
	if wait := time.Until(at); wait > 0 {
		b.settle(log, "nak", m.NakWithDelay(wait))
		return
	}
	if err := b.callTimer(ctx, t, handle); err != nil {
		retry := b.timerRetry(time.Since(at))
		log.Warn("bus timer handler failed; retrying", "err", err, "attempt", t.Attempt, "retry_in", retry)
		b.settle(log, "nak", m.NakWithDelay(retry))
		return
	}
	actx, cancel := context.WithTimeout(ctx, b.cfg.PublishTimeout)
	defer cancel()
	b.settle(log, "ack", m.DoubleAck(actx))
}

func (b *Bus) callTimer(ctx context.Context, t Timer, handle func(context.Context, Timer) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			b.m.handlerPanics.WithLabelValues(roleTimers).Inc()
			b.log.Error("bus timer handler panicked", "timer", t.Key, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return handle(ctx, t)
}

func (b *Bus) settle(log interface{ Warn(string, ...any) }, outcome string, err error) {
	if err != nil {
		log.Warn("bus timer "+outcome+" failed; the server redelivers after the ack wait", "err", err)
		return
	}
	b.m.settles.WithLabelValues(roleTimers, outcome).Inc()
}

// timerRetry picks the wait before retrying a failed timer: the largest
// backoff step not longer than the time it has been overdue, at least the
// first step. It needs no state beyond the due time, which the message
// carries.
func (b *Bus) timerRetry(overdue time.Duration) time.Duration {
	d := b.cfg.Backoff[0]
	for _, s := range b.cfg.Backoff {
		if s <= overdue {
			d = s
		}
	}
	return d
}

// validTimerKey accepts dot-separated non-empty tokens of letters, digits
// and "-_=:"; they become subject tokens.
func validTimerKey(k string) bool { return dottedTokens(k, "-_=:", maxTimerKey) }

// dottedTokens reports whether k, at most max bytes, is dot-separated
// non-empty tokens of ASCII letters, digits and the bytes of punct.
func dottedTokens(k, punct string, max int) bool {
	if k == "" || len(k) > max {
		return false
	}
	prevDot := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte(punct, c) >= 0:
			prevDot = false
		case c == '.':
			if prevDot {
				return false
			}
			prevDot = true
		default:
			return false
		}
	}
	return !prevDot
}
