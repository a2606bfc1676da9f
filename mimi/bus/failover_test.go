package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/bus/bustest"
)

// A publish to a stream that cannot store (here: it is gone, so no server
// responds, as for a stream without a leader) is sent again until the
// stream is back, within publish_timeout; meanwhile Ready says the bus
// cannot store, and says it can again afterwards. The message is stored
// once.
func TestPublishWaitsForStream(t *testing.T) {
	srv := bustest.NewServer(t)
	b := srv.Bus(t, bustest.WithConfig(func(c *bus.Config) { c.PublishTimeout = waitFor }))
	if err := b.Ready(); err != nil {
		t.Fatalf("Ready before: %v", err)
	}
	stream := b.Config().FromPhoneStream
	if err := b.JetStream().DeleteStream(ctxT(t), stream); err != nil {
		t.Fatal(err)
	}
	env := envelope(t)
	env.Channel = bus.ChannelRCS
	res := make(chan error, 1)
	go func() {
		dup, err := b.Publish(context.Background(), bus.SubjectFromPhone(phone), env, []byte("waits"))
		if dup {
			err = errors.Join(err, errors.New("reported a duplicate"))
		}
		res <- err
	}()
	deadline := time.Now().Add(waitFor)
	for b.Ready() == nil {
		if time.Now().After(deadline) {
			t.Fatal("Ready stayed nil while the stream was gone")
		}
		select {
		case err := <-res:
			t.Fatalf("the publish returned while the stream was gone: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	// The stream comes back (another instance opening the bus makes it).
	srv.Bus(t)
	select {
	case err := <-res:
		if err != nil {
			t.Fatalf("publish after the stream came back: %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("the publish never returned")
	}
	if n := streamInfo(t, b, stream).State.Msgs; n != 1 {
		t.Errorf("stream holds %d messages, want 1", n)
	}
	for err := b.Ready(); err != nil; err = b.Ready() {
		if time.Now().After(deadline) {
			t.Fatalf("Ready after the stream came back: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Sending again ends with publish_timeout: a stream that does not come
// back gives ErrUnavailable in time.
func TestPublishRetryBounded(t *testing.T) {
	b := bustest.New(t, bustest.WithConfig(func(c *bus.Config) { c.PublishTimeout = 400 * time.Millisecond }))
	if err := b.JetStream().DeleteStream(ctxT(t), b.Config().FromPhoneStream); err != nil {
		t.Fatal(err)
	}
	env := envelope(t)
	env.Channel = bus.ChannelRCS
	start := time.Now()
	_, err := b.Publish(context.Background(), bus.SubjectFromPhone(phone), env, []byte("x"))
	if !errors.Is(err, bus.ErrUnavailable) {
		t.Errorf("publish to a missing stream: %v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took > waitFor {
		t.Errorf("publish took %s", took)
	}
}
