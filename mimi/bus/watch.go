package bus

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// WatchFromPhone follows the from-phone stream from now on: the channel
// carries, in stream order, every message on subjects matching filter
// (such as SubjectFromPhone(n), or "" for all) stored after WatchFromPhone
// returned, and none stored before. It reads through an ephemeral ordered
// consumer, so it takes nothing from anyone and needs no acks (Ack, Nak and
// Term do nothing). The channel is closed when ctx is done or the Bus
// closes. A reader that falls behind slows only its own watch.
func (b *Bus) WatchFromPhone(ctx context.Context, filter string) (<-chan *Delivery, error) {
	if filter == "" {
		filter = FromPhoneSubjects
	}
	if !strings.HasPrefix(filter, "mimi.from.") {
		return nil, fmt.Errorf("bus: watch %.80q: %w: filter must lie under %s", filter, ErrBadSubject, FromPhoneSubjects)
	}
	// Start after the last message stored now, by sequence, so that a
	// consumer the client has to re-create (reconnect, lost heartbeat)
	// before the first message arrives still starts at the same place.
	actx, cancel := context.WithTimeout(ctx, b.cfg.PublishTimeout)
	defer cancel()
	stream, err := b.js.Stream(actx, b.cfg.FromPhoneStream)
	if err != nil {
		return nil, fmt.Errorf("bus: watch %s: %w", filter, unavailable(err))
	}
	start := stream.CachedInfo().State.LastSeq + 1
	cons, err := b.js.OrderedConsumer(actx, b.cfg.FromPhoneStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:    start,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: watch %s: %w", filter, unavailable(err))
	}

	out := make(chan *Delivery, 64)
	stop := make(chan struct{})
	var mu sync.Mutex // held while sending, so that out is closed only between sends
	outClosed := false
	cc, err := cons.Consume(func(m jetstream.Msg) {
		d := b.newDelivery(m, roleWatch)
		mu.Lock()
		defer mu.Unlock()
		if outClosed {
			return
		}
		select {
		case out <- d:
		case <-stop:
		}
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		b.log.Debug("bus watch", "filter", filter, "err", err)
	}))
	if err != nil {
		return nil, fmt.Errorf("bus: watch %s: %w", filter, unavailable(err))
	}
	go func() {
		select {
		case <-ctx.Done():
		case <-b.closed:
		}
		cc.Stop()
		close(stop)
		mu.Lock()
		outClosed = true
		close(out)
		mu.Unlock()
	}()
	return out, nil
}

// unavailable marks transient errors with ErrUnavailable.
func unavailable(err error) error {
	if transient(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}
