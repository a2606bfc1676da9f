package bus

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mimigw/mimigw/mimi/internal/stack"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Delivery is one message handed to a handler. The handler settles it with
// exactly one of Ack, Nak or Term; a handler that returns without settling
// has its delivery NAKed with the configured backoff.
type Delivery struct {
	Subject  string
	Envelope Envelope
	// EnvelopeErr is non-nil when the headers break the bus contract. The
	// message is still delivered so that the gateway can report it; Envelope
	// then holds the fields that were valid.
	EnvelopeErr error
	Data        []byte
	// Attempt counts deliveries of this message, from 1.
	Attempt int
	// LastAttempt is set from attempt MaxDeliver on: if this attempt
	// fails, the message must be answered with an error report and
	// settled, as it will not be tried again.
	LastAttempt bool
	// Sequence is the message's sequence number in its stream.
	Sequence uint64
	// Stored is when the stream stored the message.
	Stored time.Time

	msg     jetstream.Msg
	bus     *Bus
	role    string
	settled atomic.Bool
}

// Ack tells the server the message is done with, and waits for the server
// to confirm, so that a nil error means it will not be delivered again.
func (d *Delivery) Ack(ctx context.Context) error {
	if d.msg == nil || d.role == roleWatch {
		return nil
	}
	d.settled.Store(true)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.bus.cfg.PublishTimeout)
		defer cancel()
	}
	if err := d.msg.DoubleAck(ctx); err != nil {
		return d.fail("ack", err)
	}
	d.bus.m.settles.WithLabelValues(d.role, "ack").Inc()
	return nil
}

// Nak asks for the message again after delay. A delay of zero or less
// means the configured backoff for this attempt. The server adds its own
// backoff step to a NAK's delay, which this method allows for; a delay
// shorter than the difference between this attempt's backoff step and the
// first one is lengthened to it.
func (d *Delivery) Nak(delay time.Duration) error {
	if d.msg == nil || d.role == roleWatch {
		return nil
	}
	d.settled.Store(true)
	if d.role == roleToPhone && d.Attempt > d.bus.cfg.MaxDeliver {
		d.bus.log.Error("bus message NAKed on its final delivery; the server will not deliver it again",
			"msg_id", d.Envelope.ID, "subject", d.Subject, "attempt", d.Attempt)
	}
	if err := d.msg.NakWithDelay(d.bus.nakDelay(d.role, d.Attempt, delay)); err != nil {
		return d.fail("nak", err)
	}
	d.bus.m.settles.WithLabelValues(d.role, "nak").Inc()
	return nil
}

// Term tells the server never to deliver the message again; reason goes to
// the server's advisory.
func (d *Delivery) Term(reason string) error {
	if d.msg == nil || d.role == roleWatch {
		return nil
	}
	d.settled.Store(true)
	if err := d.msg.TermWithReason(reason); err != nil {
		return d.fail("term", err)
	}
	d.bus.m.settles.WithLabelValues(d.role, "term").Inc()
	return nil
}

// InProgress tells the server the handler is still at work, restarting
// the ack wait; call it from handlers that may run longer than AckWait.
func (d *Delivery) InProgress() error {
	if d.msg == nil || d.role == roleWatch {
		return nil
	}
	if err := d.msg.InProgress(); err != nil {
		return d.fail("in progress", err)
	}
	d.bus.m.settles.WithLabelValues(d.role, "in_progress").Inc()
	return nil
}

func (d *Delivery) fail(what string, err error) error {
	if errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
		return fmt.Errorf("bus: %s %s id %s: %w", what, d.Subject, d.Envelope.ID, err)
	}
	return fmt.Errorf("bus: %s %s id %s: %w: %w", what, d.Subject, d.Envelope.ID, ErrUnavailable, err)
}

// nakDelay turns the wait the caller wants into the delay to send. On the
// to-phone consumer the server's ack wait for attempt k is BackOff[k-1]
// and it dates a NAK's delay from the first step, BackOff[0], so it adds
// BackOff[k-1]-BackOff[0]; that is taken off here.
func (b *Bus) nakDelay(role string, attempt int, want time.Duration) time.Duration {
	steps := b.cfg.Backoff
	idx := min(max(attempt-1, 0), len(steps)-1)
	if want <= 0 {
		want = steps[idx]
	}
	if role != roleToPhone && role != roleFromPhone {
		return want
	}
	d := want - (steps[idx] - steps[0])
	return max(d, time.Millisecond)
}

// newDelivery wraps m; a message whose envelope does not parse is still
// delivered, with EnvelopeErr set.
func (b *Bus) newDelivery(m jetstream.Msg, role string) *Delivery {
	d := &Delivery{Subject: m.Subject(), Data: m.Data(), msg: m, bus: b, role: role, Attempt: 1}
	d.Envelope, d.EnvelopeErr = ParseEnvelope(m.Headers())
	if meta, err := m.Metadata(); err == nil {
		d.Attempt = int(meta.NumDelivered)
		d.Sequence = meta.Sequence.Stream
		d.Stored = meta.Timestamp
	}
	if role == roleToPhone {
		d.LastAttempt = d.Attempt >= b.cfg.MaxDeliver
	}
	b.m.deliveries.WithLabelValues(role).Inc()
	if d.EnvelopeErr != nil {
		b.m.badEnvelopes.WithLabelValues(role).Inc()
	}
	return d
}

// ConsumeToPhone hands messages for phone users to handle, on up to
// workers goroutines at once, through the durable consumer shared by every
// gateway instance: each message goes to one handler at a time, anywhere.
// It returns nil once ctx is done, after it has stopped fetching and every
// handler already running (or already handed a fetched message) has
// returned; ErrClosed if the Bus was closed. Handlers run under a context
// that is not cancelled with ctx, so that shutdown finishes in-flight work;
// they bound their own time.
func (b *Bus) ConsumeToPhone(ctx context.Context, workers int, handle func(context.Context, *Delivery)) error {
	if workers < 1 {
		return fmt.Errorf("bus: consume %s: workers must be at least 1, got %d", b.cfg.ToPhoneStream, workers)
	}
	return b.consume(ctx, b.cfg.ToPhoneStream, b.toPhoneConsumerConfig(), workers,
		func(hctx context.Context, m jetstream.Msg) {
			d := b.newDelivery(m, roleToPhone)
			b.runHandler(d, func() { handle(hctx, d) })
		})
}

// ConsumeFromPhone hands the messages phone users sent (the from-phone
// stream, which keeps them for every reader) to handle, through the durable
// consumer named durable, shared by every instance that uses the same
// name: each message goes to one handler at a time. A MIMI-side component
// that carries them on (the MIMI provider protocol's outbox) reads them this
// way, with the bus's backoff between attempts and shutdown as
// ConsumeToPhone, but its own number of attempts (a peer may be away for
// longer than a phone network); a new consumer starts with messages stored
// from then on.
func (b *Bus) ConsumeFromPhone(ctx context.Context, durable string, workers, attempts int, handle func(context.Context, *Delivery)) error {
	if workers < 1 || attempts < 1 {
		return fmt.Errorf("bus: consume %s: workers and attempts must be at least 1, got %d and %d", b.cfg.FromPhoneStream, workers, attempts)
	}
	if !validName(durable) || durable == b.cfg.Consumer {
		return fmt.Errorf("bus: consume %s: consumer name %q is not usable", b.cfg.FromPhoneStream, durable)
	}
	ccfg := b.toPhoneConsumerConfig()
	ccfg.Durable = durable
	ccfg.Description = "carries phone users' messages on to MIMI providers"
	ccfg.FilterSubject = FromPhoneSubjects
	ccfg.DeliverPolicy = jetstream.DeliverNewPolicy
	ccfg.MaxDeliver = attempts + 1
	if len(ccfg.BackOff) >= ccfg.MaxDeliver {
		// The server wants fewer steps than deliveries.
		ccfg.BackOff = ccfg.BackOff[:ccfg.MaxDeliver-1]
	}
	// Made here, as Open makes the to-phone consumer, so that its first
	// start is not reported as a consumer gone missing; if the server
	// cannot take it now, consume keeps trying.
	actx, cancel := context.WithTimeout(ctx, b.cfg.PublishTimeout)
	if _, err := b.js.CreateOrUpdateConsumer(actx, b.cfg.FromPhoneStream, ccfg); err != nil {
		b.log.Info("bus consumer not made yet; trying again", "consumer", durable, "err", err)
	}
	cancel()
	return b.consume(ctx, b.cfg.FromPhoneStream, ccfg, workers,
		func(hctx context.Context, m jetstream.Msg) {
			d := b.newDelivery(m, roleFromPhone)
			d.LastAttempt = d.Attempt >= attempts
			b.runHandler(d, func() { handle(hctx, d) })
		})
}

// runHandler runs call for d; a panic or a return without settling NAKs d.
func (b *Bus) runHandler(d *Delivery, call func()) {
	defer func() {
		if r := recover(); r != nil {
			b.m.handlerPanics.WithLabelValues(d.role).Inc()
			b.log.Error("bus handler panicked", "msg_id", d.Envelope.ID, "subject", d.Subject,
				"attempt", d.Attempt, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		} else if !d.settled.Load() {
			b.log.Warn("bus handler returned without settling its message; NAKed",
				"msg_id", d.Envelope.ID, "subject", d.Subject, "attempt", d.Attempt)
		}
		if !d.settled.Load() {
			if err := d.Nak(0); err != nil {
				b.log.Warn("bus nak failed; the server redelivers after the ack wait", "msg_id", d.Envelope.ID, "err", err)
			}
		}
	}()
	call()
}

// Pull settings: a pull request lasts 30 s with a heartbeat every 5 s, so
// a lost request or a dead server is noticed within 10 s.
const (
	pullExpiry    = 30 * time.Second
	pullHeartbeat = 5 * time.Second
	// drainTimeout bounds how long a stopping consumer waits for messages
	// already sent its way before leaving them to be redelivered.
	drainTimeout = 10 * time.Second
)

// consume runs a worker pool on the durable consumer described by ccfg,
// creating the consumer again if it disappears.
func (b *Bus) consume(ctx context.Context, stream string, ccfg jetstream.ConsumerConfig, workers int, handle func(context.Context, jetstream.Msg)) error {
	hctx := context.WithoutCancel(ctx)
	work := make(chan jetstream.Msg)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				select {
				case m := <-work:
					stack.Reserve()
					handle(hctx, m)
				case <-quit:
					return
				}
			}
		})
	}
	defer func() {
		close(quit)
		wg.Wait()
	}()
	// The callback blocks until a worker is free, so the client holds at
	// most workers messages beyond those being handled; a message left
	// over when stopping stays unsettled and comes back after its ack wait.
	dispatch := func(m jetstream.Msg) {
		select {
		case work <- m:
		case <-quit:
		}
	}
	log := b.log.With("stream", stream, "consumer", ccfg.Durable)
	pause := 100 * time.Millisecond
	for {
		cons, err := b.consumer(ctx, stream, ccfg)
		if err == nil {
			var cc jetstream.ConsumeContext
			cc, err = cons.Consume(dispatch,
				jetstream.PullMaxMessages(workers),
				jetstream.PullExpiry(pullExpiry),
				jetstream.PullHeartbeat(pullHeartbeat),
				jetstream.ConsumeErrHandler(func(cc jetstream.ConsumeContext, err error) {
					log.Warn("bus consumer", "err", err)
					// The library keeps pulling from a deleted consumer;
					// stop, so that it is created again below. A pull
					// that finds no consumer at all (deleted between two
					// pulls) comes back as no responders.
					if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
						errors.Is(err, nats.ErrNoResponders) {
						cc.Stop()
					}
				}))
			if err == nil {
				pause = 100 * time.Millisecond
				done := cc.Closed()
				select {
				case <-ctx.Done():
					stopConsuming(cc, done)
					return nil
				case <-b.closed:
					stopConsuming(cc, done)
					return ErrClosed
				case <-done:
					// Ended on its own: the consumer was deleted, or the
					// connection closed.
				}
			}
		}
		if b.nc.Load().IsClosed() {
			return ErrClosed
		}
		if err != nil {
			log.Warn("bus consumer unavailable; retrying", "err", err)
		} else {
			log.Warn("bus consumer stopped; starting again")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-b.closed:
			return ErrClosed
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
}

// stopConsuming stops fetching and waits until what was already sent to
// this client has been handed to workers, or drainTimeout passes.
func stopConsuming(cc jetstream.ConsumeContext, done <-chan struct{}) {
	cc.Drain()
	select {
	case <-done:
	case <-time.After(drainTimeout):
		cc.Stop()
	}
}

// consumer finds the durable consumer, creating it if it is gone (an
// operator deleted it, or the server lost it).
func (b *Bus) consumer(ctx context.Context, stream string, ccfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	actx, cancel := context.WithTimeout(ctx, b.cfg.PublishTimeout)
	defer cancel()
	cons, err := b.js.Consumer(actx, stream, ccfg.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		b.log.Warn("bus consumer missing; creating it", "stream", stream, "consumer", ccfg.Durable)
		cons, err = b.js.CreateOrUpdateConsumer(actx, stream, ccfg)
	}
	if err != nil {
		return nil, fmt.Errorf("bus: consumer %s on %s: %w", ccfg.Durable, stream, err)
	}
	return cons, nil
}
