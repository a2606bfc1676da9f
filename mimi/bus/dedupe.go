package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// De-duplication past the duplicate window. JetStream forgets a message
// ID after DuplicateWindow (2 minutes by default); a phone or an SMSC may
// send a message again much later (a retry schedule of hours). Such a
// message finds its record, which lives for the deliveries TTL, and then
// its first copy among what its sender has on the subject.

// maxDuplicateScan bounds the messages read looking for a first copy (a
// sender's messages in the stream's retention); past it the message is
// stored again rather than risk losing it.
const maxDuplicateScan = 20000

// storedEarlier reports whether a message whose record was already under
// key is on subject from an earlier sending. A record last written within
// the duplicate window needs no look: the publish that follows is
// de-duplicated by JetStream, or stores a message whose first sending
// wrote the record and failed to publish. Otherwise the subject is read,
// headers only, from its oldest message to those a little after the
// record was last written (the record may have been updated since the
// message came, so its time bounds the end only), for the message's ID;
// a message not found (its first publish failed, or it left the stream)
// is stored.
func (b *Bus) storedEarlier(ctx context.Context, subject, id, key string) (bool, error) {
	e, err := b.Deliveries(key).Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil // gone meanwhile (its TTL)
	case err != nil:
		return false, fmt.Errorf("bus: record %s: %w: %w", key, ErrUnavailable, err)
	}
	written := e.Created()
	if b.now().Sub(written) < b.cfg.DuplicateWindow {
		return false, nil
	}
	stream := b.cfg.ToPhoneStream
	if isFromPhone(subject) {
		stream = b.cfg.FromPhoneStream
	}
	// The first copy was published within PublishTimeout of its record's
	// first writing, which was no later than its last; a second allows
	// for the streams' clocks.
	until := written.Add(b.cfg.PublishTimeout + time.Second)
	c, err := b.js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverAllPolicy, HeadersOnly: true})
	if err != nil {
		return false, fmt.Errorf("bus: looking for %s on %s: %w: %w", id, subject, ErrUnavailable, err)
	}
	for seen := 0; seen < maxDuplicateScan; {
		batch, err := c.FetchNoWait(256)
		if err != nil {
			return false, fmt.Errorf("bus: looking for %s on %s: %w: %w", id, subject, ErrUnavailable, err)
		}
		// Each batch is read to its end, which ends its fetch.
		n, found, done := 0, false, false
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			switch {
			case found || done || err != nil:
			case md.Timestamp.After(until):
				done = true
			case m.Headers().Get(jetstream.MsgIDHeader) == id:
				found = true
			case md.NumPending == 0:
				done = true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return false, fmt.Errorf("bus: looking for %s on %s: %w: %w", id, subject, ErrUnavailable, err)
		}
		if found || done || n == 0 {
			return found, nil
		}
		seen += n
	}
	b.log.Warn("message sent again past the duplicate window not looked up to its end; stored again", "subject", subject, "id", id)
	return false, nil
}
