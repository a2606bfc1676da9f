package bus_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/bus/bustest"
	"github.com/mimigw/mimigw/mimi/uri"
)

// waitFor is the failure bound for anything a test waits on; it is never
// a performance claim.
const waitFor = 20 * time.Second

func newID(t testing.TB) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

func envelope(t testing.TB) bus.Envelope {
	return bus.Envelope{
		ID:        newID(t),
		Sender:    "mimi://a.example/u/alice",
		Recipient: "tel:+15551230002",
		Room:      "mimi://a.example/r/dm-1",
		Channel:   bus.ChannelAuto,
		Accepted:  time.Now().Truncate(time.Millisecond),
	}
}

var phone = uri.Number("+15551230002")

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

// consumeInBackground runs ConsumeToPhone until the test ends (or stop is
// called) and reports its result on the returned channel.
func consumeInBackground(t *testing.T, b *bus.Bus, workers int, h func(context.Context, *bus.Delivery)) (stop func(), result <-chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() { res <- b.ConsumeToPhone(ctx, workers, h) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-res:
		case <-time.After(waitFor):
			t.Error("ConsumeToPhone did not return after cancel")
		}
	})
	return cancel, res
}

func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func streamInfo(t *testing.T, b *bus.Bus, name string) *jetstream.StreamInfo {
	t.Helper()
	s, err := b.JetStream().Stream(ctxT(t), name)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo()
}

func TestOpenEmbeddedIdempotent(t *testing.T) {
	dir := t.TempDir()
	cfg := bus.DefaultConfig()
	cfg.Embedded = bus.EmbeddedConfig{Listen: "127.0.0.1:-1", DataDir: dir}
	b, err := bus.Open(ctxT(t), cfg, bustest.Logger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	env := envelope(t)
	if _, err := b.Publish(ctxT(t), bus.SubjectToPhone(phone), env, []byte("kept")); err != nil {
		t.Fatal(err)
	}
	for _, kv := range []jetstream.KeyValue{b.Identity(), b.Capabilities(), b.Deliveries("k")} {
		if _, err := kv.Put(ctxT(t), "k", []byte("v")); err != nil {
			t.Fatalf("put in %s: %v", kv.Bucket(), err)
		}
	}
	b.Close()
	if err := b.Ready(); !errors.Is(err, bus.ErrClosed) {
		t.Errorf("Ready after Close = %v, want ErrClosed", err)
	}

	// Same store, the same config: nothing changes, nothing is lost.
	b2, err := bus.Open(ctxT(t), cfg, bustest.Logger(t), nil)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	if n := streamInfo(t, b2, cfg.ToPhoneStream).State.Msgs; n != 1 {
		t.Errorf("to-phone stream holds %d messages after reopen, want 1", n)
	}
	b2.Close()

	// Changed limits: streams, buckets and the consumer take them.
	cfg.FromPhoneMaxAge = 24 * time.Hour
	cfg.FromPhoneMaxBytes = 1 << 20
	cfg.ToPhoneMaxBytes = 2 << 20
	cfg.DuplicateWindow = 5 * time.Minute
	cfg.CapabilitiesTTL = time.Hour
	cfg.AckWait = 7 * time.Second
	cfg.MaxDeliver = 4
	cfg.Backoff = []time.Duration{time.Second, 3 * time.Second}
	cfg.MaxAckPending = 77
	b3, err := bus.Open(ctxT(t), cfg, bustest.Logger(t), nil)
	if err != nil {
		t.Fatalf("Open with changed limits: %v", err)
	}
	defer b3.Close()
	from := streamInfo(t, b3, cfg.FromPhoneStream).Config
	if from.MaxAge != 24*time.Hour || from.MaxBytes != 1<<20 || from.Duplicates != 5*time.Minute {
		t.Errorf("from-phone stream config not updated: %+v", from)
	}
	to := streamInfo(t, b3, cfg.ToPhoneStream)
	if to.Config.MaxBytes != 2<<20 || to.Config.Retention != jetstream.WorkQueuePolicy || to.State.Msgs != 1 {
		t.Errorf("to-phone stream: config %+v, %d msgs", to.Config, to.State.Msgs)
	}
	st, err := b3.Capabilities().Status(ctxT(t))
	if err != nil || st.TTL() != time.Hour {
		t.Errorf("capabilities TTL = %v (%v), want 1h", st, err)
	}
	e, err := b3.Identity().Get(ctxT(t), "k")
	if err != nil || string(e.Value()) != "v" {
		t.Errorf("identity bucket lost its key: %v", err)
	}
	cons, err := b3.JetStream().Consumer(ctxT(t), cfg.ToPhoneStream, cfg.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	cc := cons.CachedInfo().Config
	if cc.MaxDeliver != 5 || cc.MaxAckPending != 77 || len(cc.BackOff) != 2 ||
		cc.BackOff[0] != 8*time.Second || cc.BackOff[1] != 10*time.Second {
		t.Errorf("consumer config not updated: max_deliver %d max_ack_pending %d backoff %v",
			cc.MaxDeliver, cc.MaxAckPending, cc.BackOff)
	}
}

func TestOpenConcurrently(t *testing.T) {
	srv := bustest.NewServer(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			b, err := bus.Open(ctxT(t), srv.Config(), bustest.Logger(t), nil)
			if err != nil {
				errs <- err
				return
			}
			b.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Open: %v", err)
	}
}

func TestOpenFailsWithoutServer(t *testing.T) {
	srv := bustest.NewServer(t)
	cfg := srv.Config()
	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	reg := prometheus.NewRegistry()
	_, err := bus.Open(ctx, cfg, bustest.Logger(t), reg)
	if !errors.Is(err, bus.ErrUnavailable) {
		t.Fatalf("Open with no server = %v, want ErrUnavailable", err)
	}
	// The failed Open left nothing behind: the same registry takes a Bus.
	srv.Start()
	b, err := bus.Open(ctxT(t), cfg, bustest.Logger(t), reg)
	if err != nil {
		t.Fatalf("Open after a failed Open: %v", err)
	}
	b.Close()
}

func TestOpenWaitsForServer(t *testing.T) {
	srv := bustest.NewServer(t)
	cfg := srv.Config()
	srv.Stop()
	go func() {
		time.Sleep(300 * time.Millisecond)
		srv.Start()
	}()
	b, err := bus.Open(ctxT(t), cfg, bustest.Logger(t), nil)
	if err != nil {
		t.Fatalf("Open before the server came up: %v", err)
	}
	defer b.Close()
	if err := b.Ready(); err != nil {
		t.Errorf("Ready: %v", err)
	}
}

func TestCloseStopsConsumers(t *testing.T) {
	srv := bustest.NewServer(t)
	b := srv.Bus(t)
	res := make(chan error, 2)
	go func() {
		res <- b.ConsumeToPhone(context.Background(), 2, func(ctx context.Context, d *bus.Delivery) { _ = d.Ack(ctx) })
	}()
	go func() {
		res <- b.ConsumeTimers(context.Background(), 1, func(context.Context, bus.Timer) error { return nil })
	}()
	if _, err := b.Publish(ctxT(t), bus.SubjectToPhone(phone), envelope(t), nil); err != nil {
		t.Fatal(err)
	}
	waitEmpty(t, b, b.Config().ToPhoneStream)
	b.Close()
	for range 2 {
		if err := receive(t, res, "consumer return after Close"); !errors.Is(err, bus.ErrClosed) {
			t.Errorf("consumer returned %v, want ErrClosed", err)
		}
	}
	if _, err := b.Publish(ctxT(t), bus.SubjectToPhone(phone), envelope(t), nil); !errors.Is(err, bus.ErrUnavailable) {
		t.Errorf("Publish after Close = %v, want ErrUnavailable", err)
	}
}

func TestCloseWhileServerDown(t *testing.T) {
	srv := bustest.NewServer(t)
	b := srv.Bus(t)
	srv.Stop()
	closed := make(chan struct{})
	go func() {
		b.Close()
		close(closed)
	}()
	receive(t, closed, "Close with the server down")
}

func TestOpenRejectsBadConfig(t *testing.T) {
	cfg := bus.DefaultConfig()
	cfg.AckWait = -1
	_, err := bus.Open(ctxT(t), cfg, nil, nil)
	var ce *bus.ConfigError
	if !errors.As(err, &ce) || ce.Key != "ack_wait" {
		t.Fatalf("Open with bad config = %v, want ConfigError for ack_wait", err)
	}
}

func TestEmbeddedServerRequiresToken(t *testing.T) {
	cfg := bus.DefaultConfig()
	cfg.Embedded = bus.EmbeddedConfig{Listen: "127.0.0.1:-1", DataDir: t.TempDir()}
	cfg.Token = "s3cret-token"
	b, err := bus.Open(ctxT(t), cfg, bustest.Logger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if nc, err := nats.Connect(b.ClientURL(), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Fatal("connected to the embedded server without its token")
	}
	nc, err := nats.Connect(b.ClientURL(), nats.Token("s3cret-token"))
	if err != nil {
		t.Fatalf("connect with token: %v", err)
	}
	nc.Close()
}

func TestPublishConsumeExact(t *testing.T) {
	b := bustest.New(t)
	env := envelope(t)
	data := []byte{0xa5, 0x00, 0x01, 0xff, '\n', 'h', 'i'}
	dup, err := b.Publish(ctxT(t), bus.SubjectToPhone(phone), env, data)
	if err != nil || dup {
		t.Fatalf("Publish = %v, %v", dup, err)
	}

	// What the stream holds, header by header.
	s, err := b.JetStream().Stream(ctxT(t), b.Config().ToPhoneStream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetLastMsgForSubject(ctxT(t), bus.SubjectToPhone(phone))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Nats-Msg-Id": env.ID + "." + phone.Digits(), "Mimi-Id": env.ID, "Mimi-Sender": env.Sender,
		"Mimi-Recipient": env.Recipient, "Mimi-Room": env.Room, "Mimi-Channel": "auto",
		"Mimi-Accepted": env.Accepted.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
	}
	for k, v := range want {
		if got := raw.Header.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("stored header %s = %q, want %q", k, got, v)
		}
	}
	if !bytes.Equal(raw.Data, data) {
		t.Errorf("stored data %x, want %x", raw.Data, data)
	}

	got := make(chan *bus.Delivery, 1)
	consumeInBackground(t, b, 1, func(ctx context.Context, d *bus.Delivery) {
		if err := d.Ack(ctx); err != nil {
			t.Errorf("Ack: %v", err)
		}
		got <- d
	})
	d := receive(t, got, "delivery")
	if d.EnvelopeErr != nil {
		t.Fatalf("EnvelopeErr: %v", d.EnvelopeErr)
	}
	if !d.Envelope.Accepted.Equal(env.Accepted) {
		t.Errorf("Accepted %v, want %v", d.Envelope.Accepted, env.Accepted)
	}
	d.Envelope.Accepted = env.Accepted
	if d.Envelope != env {
		t.Errorf("envelope %+v, want %+v", d.Envelope, env)
	}
	if !bytes.Equal(d.Data, data) || d.Subject != bus.SubjectToPhone(phone) || d.Attempt != 1 || d.LastAttempt {
		t.Errorf("delivery subject %q data %x attempt %d last %v", d.Subject, d.Data, d.Attempt, d.LastAttempt)
	}
	waitEmpty(t, b, b.Config().ToPhoneStream)
}

// waitEmpty waits until a work-queue stream holds nothing: every message
// acked.
func waitEmpty(t *testing.T, b *bus.Bus, stream string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		if streamInfo(t, b, stream).State.Msgs == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("stream %s still holds %d messages", stream, streamInfo(t, b, stream).State.Msgs)
}

func TestPublishStampsAccepted(t *testing.T) {
	b := bustest.New(t)
	env := envelope(t)
	env.Accepted = time.Time{}
	before := time.Now().Add(-time.Millisecond)
	if _, err := b.Publish(ctxT(t), bus.SubjectToPhone(phone), env, nil); err != nil {
		t.Fatal(err)
	}
	s, _ := b.JetStream().Stream(ctxT(t), b.Config().ToPhoneStream)
	raw, err := s.GetLastMsgForSubject(ctxT(t), bus.SubjectToPhone(phone))
	if err != nil {
		t.Fatal(err)
	}
	got, err := bus.ParseEnvelope(raw.Header)
	if err != nil {
		t.Fatal(err)
	}
	if got.Accepted.Before(before) {
		t.Errorf("Accepted %v is before the publish at %v", got.Accepted, before)
	}
}

func TestPublishRejectsBadInput(t *testing.T) {
	b := bustest.New(t)
	good := envelope(t)
	noRoom := good
	noRoom.Room = ""
	fromAuto := good
	fromAuto.Channel = bus.ChannelAuto
	tests := []struct {
		name    string
		subject string
		env     bus.Envelope
		want    error
	}{
		{"wildcard subject", "mimi.to.tel.*", good, bus.ErrBadSubject},
		{"empty token", "mimi..tel.1", good, bus.ErrBadSubject},
		{"no room", bus.SubjectToPhone(phone), noRoom, bus.ErrBadEnvelope},
		{"from-phone needs rcs or sms", bus.SubjectFromPhone(phone), fromAuto, bus.ErrBadEnvelope},
	}
	for _, tt := range tests {
		_, err := b.Publish(ctxT(t), tt.subject, tt.env, nil)
		if !errors.Is(err, tt.want) || errors.Is(err, bus.ErrUnavailable) {
			t.Errorf("%s: %v, want %v and not ErrUnavailable", tt.name, err, tt.want)
		}
	}
	big := make([]byte, 2<<20)
	_, err := b.Publish(ctxT(t), bus.SubjectToPhone(phone), good, big)
	if err == nil || errors.Is(err, bus.ErrUnavailable) {
		t.Errorf("2 MiB message: %v, want a permanent error", err)
	}
	// A subject no stream holds: nobody can store it, so retry later.
	_, err = b.Publish(ctxT(t), "mimi.elsewhere.1", good, nil)
	if !errors.Is(err, bus.ErrUnavailable) {
		t.Errorf("subject without stream: %v, want ErrUnavailable", err)
	}
}

func TestDuplicateNotDeliveredTwice(t *testing.T) {
	b := bustest.New(t)
	env := envelope(t)
	subject := bus.SubjectToPhone(phone)
	if dup, err := b.Publish(ctxT(t), subject, env, []byte("one")); err != nil || dup {
		t.Fatalf("first Publish = %v, %v", dup, err)
	}
	// Another instance publishing the same message (a retried SIP MESSAGE).
	b2 := bustest.Join(t, b)
	if dup, err := b2.Publish(ctxT(t), subject, env, []byte("one")); err != nil || !dup {
		t.Fatalf("second Publish = %v, %v; want duplicate", dup, err)
	}
	if n := streamInfo(t, b, b.Config().ToPhoneStream).State.Msgs; n != 1 {
		t.Fatalf("stream holds %d messages, want 1", n)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	consumeInBackground(t, b, 2, func(ctx context.Context, d *bus.Delivery) {
		mu.Lock()
		seen[d.Envelope.ID]++
		mu.Unlock()
		_ = d.Ack(ctx)
	})
	waitEmpty(t, b, b.Config().ToPhoneStream)
	// A marker published after the duplicate arrives only once the
	// duplicate would have: the queue is ordered.
	marker := envelope(t)
	if _, err := b.Publish(ctxT(t), subject, marker, nil); err != nil {
		t.Fatal(err)
	}
	waitEmpty(t, b, b.Config().ToPhoneStream)
	mu.Lock()
	defer mu.Unlock()
	if seen[env.ID] != 1 || seen[marker.ID] != 1 || len(seen) != 2 {
		t.Errorf("deliveries %v, want each of %s and the marker once", seen, env.ID)
	}
}

// A message for a room goes to each of its phone users: the to-phone
// stream keeps one copy per recipient, however often each is published,
// and a publisher that sets Nats-Msg-Id to the plain message ID (the
// contract before copies were kept apart) is still delivered.
func TestToPhoneDuplicatesPerRecipient(t *testing.T) {
	b := bustest.New(t)
	env := envelope(t)
	phones := []uri.Number{phone, "+15551230003"}
	for round := range 2 {
		for _, n := range phones {
			env.Recipient = n.TelURI()
			if dup, err := b.Publish(ctxT(t), bus.SubjectToPhone(n), env, []byte("one")); err != nil || dup != (round > 0) {
				t.Fatalf("publish %d for %s: duplicate %v, %v", round, n, dup, err)
			}
		}
	}
	plain := envelope(t)
	hdr := plain.Header(bus.SubjectToPhone(phone))
	hdr.Set(bus.HeaderMsgID, plain.ID)
	if _, err := b.JetStream().PublishMsg(ctxT(t), &nats.Msg{Subject: bus.SubjectToPhone(phone), Header: hdr}); err != nil {
		t.Fatal(err)
	}
	if n := streamInfo(t, b, b.Config().ToPhoneStream).State.Msgs; n != 3 {
		t.Fatalf("stream holds %d messages, want 3", n)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	consumeInBackground(t, b, 2, func(ctx context.Context, d *bus.Delivery) {
		if d.EnvelopeErr != nil {
			t.Errorf("envelope of %s: %v", d.Subject, d.EnvelopeErr)
		}
		mu.Lock()
		seen[d.Envelope.ID+" "+d.Subject]++
		mu.Unlock()
		_ = d.Ack(ctx)
	})
	waitEmpty(t, b, b.Config().ToPhoneStream)
	mu.Lock()
	defer mu.Unlock()
	want := map[string]int{env.ID + " mimi.to.tel.15551230002": 1, env.ID + " mimi.to.tel.15551230003": 1, plain.ID + " mimi.to.tel.15551230002": 1}
	if !maps.Equal(seen, want) {
		t.Errorf("deliveries %v, want %v", seen, want)
	}
}

func TestTwoInstancesShareWork(t *testing.T) {
	b1 := bustest.New(t)
	b2 := bustest.Join(t, b1)
	const n = 200
	var mu sync.Mutex
	handled := map[string]int{}
	by := map[int]int{}
	all := make(chan struct{})
	handler := func(inst int) func(context.Context, *bus.Delivery) {
		return func(ctx context.Context, d *bus.Delivery) {
			time.Sleep(time.Millisecond) // hold the message a moment, as real delivery does
			if err := d.Ack(ctx); err != nil {
				t.Errorf("Ack: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			handled[d.Envelope.ID]++
			by[inst]++
			if len(handled) == n {
				close(all)
			}
		}
	}
	consumeInBackground(t, b1, 2, handler(1))
	consumeInBackground(t, b2, 2, handler(2))
	for i := range n {
		pub := b1
		if i%2 == 1 {
			pub = b2
		}
		if _, err := pub.Publish(ctxT(t), bus.SubjectToPhone(phone), envelope(t), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	receive(t, all, "all messages handled")
	waitEmpty(t, b1, b1.Config().ToPhoneStream)
	mu.Lock()
	defer mu.Unlock()
	for id, c := range handled {
		if c != 1 {
			t.Errorf("message %s handled %d times", id, c)
		}
	}
	if by[1] == 0 || by[2] == 0 {
		t.Errorf("work not shared: instance 1 handled %d, instance 2 handled %d", by[1], by[2])
	}
	t.Logf("instance 1 handled %d, instance 2 handled %d", by[1], by[2])
}

func TestNakRedeliveryAndLastAttempt(t *testing.T) {
	b := bustest.New(t) // MaxDeliver 3
	type seen struct {
		attempt int
		last    bool
	}
	got := make(chan seen, 10)
	consumeInBackground(t, b, 1, func(ctx context.Context, d *bus.Delivery) {
		got <- seen{d.Attempt, d.LastAttempt}
		if d.Attempt <= 3 {
			if err := d.Nak(0); err != nil {
				t.Errorf("Nak: %v", err)
			}
			return
		}
		if err := d.Term("gave up"); err != nil {
			t.Errorf("Term: %v", err)
		}
	})
	if _, err := b.Publish(ctxT(t), bus.SubjectToPhone(phone), envelope(t), nil); err != nil {
		t.Fatal(err)
	}
	// Three attempts, the third marked last, and one more the server
	// allows for an unsettled last attempt.
	want := []seen{{1, false}, {2, false}, {3, true}, {4, true}}
	for i, w := range want {
		if s := receive(t, got, fmt.Sprintf("attempt %d", i+1)); s != w {
			t.Fatalf("delivery %d: %+v, want %+v", i+1, s, w)
		}
	}
	waitEmpty(t, b, b.Config().ToPhoneStream)
	select {
	case s := <-got:
		t.Errorf("delivered again after Term: %+v", s)
	case <-time.After(300 * time.Millisecond): // the backoff steps are 50 and 100 ms
	}
}

func TestUnsettledHandlerIsNaked(t *testing.T) {
	b := bustest.New(t)
	attempts := make(chan int, 10)
	consumeInBackground(t, b, 1, func(ctx context.Context, d *bus.Delivery) {
		attempts <- d.Attempt
		switch d.Attempt {
		case 1:
			return // forgot to settle
		case 2:
			panic("handler bug")
		}
		_ = d.Ack(ctx)
	})
	if _, err := b.Publish(ctxT(t), bus.SubjectToPhone(phone), envelope(t), nil); err != nil {
		t.Fatal(err)
	}
	for want := 1; want <= 3; want++ {
		if a := receive(t, attempts, "attempt"); a != want {
			t.Fatalf("attempt %d, want %d", a, want)
		}
	}
	waitEmpty(t, b, b.Config().ToPhoneStream)
}

func TestBackoffDelays(t *testing.T) {
	b := bustest.New(t, bustest.WithConfig(func(c *bus.Config) {
		c.MaxDeliver = 4
		c.Backoff = []time.Duration{300 * time.Millisecond, time.Second}
	}))
	type seen struct {
		attempt int
		at      time.Time
	}
	got := make(chan seen, 10)
	consumeInBackground(t, b, 1, func(ctx context.Context, d *bus.Delivery) {
		got <- seen{d.Attempt, time.Now()}
		switch d.Attempt {
		case 1, 2:
			_ = d.Nak(0) // configured backoff: 300 ms, then 1 s
		case 3:
			_ = d.Nak(1500 * time.Millisecond)
		default:
			_ = d.Ack(ctx)
		}
	})
	if _, err := b.Publish(ctxT(t), bus.SubjectToPhone(phone), envelope(t), nil); err != nil {
		t.Fatal(err)
	}
	var prev seen
	// Lower bounds only: the server must never redeliver early.
	minGap := map[int]time.Duration{2: 300 * time.Millisecond, 3: time.Second, 4: 1500 * time.Millisecond}
	for i := 1; i <= 4; i++ {
		s := receive(t, got, fmt.Sprintf("attempt %d", i))
		if s.attempt != i {
			t.Fatalf("attempt %d, want %d", s.attempt, i)
		}
		if i > 1 {
			gap := s.at.Sub(prev.at)
			if gap < minGap[i] {
				t.Errorf("attempt %d came %s after the previous one, want at least %s", i, gap, minGap[i])
			}
			t.Logf("attempt %d after %s (backoff %s)", i, gap.Round(time.Millisecond), minGap[i])
		}
		prev = s
	}
}

func TestMalformedEnvelopeReachesHandler(t *testing.T) {
	b := bustest.New(t)
	// A publisher that ignores the contract.
	msg := nats.NewMsg(bus.SubjectToPhone(phone))
	msg.Header.Set("Mimi-Id", "not-an-id")
	msg.Header.Set("Mimi-Sender", "mimi://a.example/u/alice")
	msg.Data = []byte("x")
	if _, err := b.JetStream().PublishMsg(ctxT(t), msg); err != nil {
		t.Fatal(err)
	}
	got := make(chan *bus.Delivery, 1)
	consumeInBackground(t, b, 1, func(ctx context.Context, d *bus.Delivery) {
		_ = d.Term("bad envelope")
		got <- d
	})
	d := receive(t, got, "malformed delivery")
	if !errors.Is(d.EnvelopeErr, bus.ErrBadEnvelope) {
		t.Errorf("EnvelopeErr = %v, want ErrBadEnvelope", d.EnvelopeErr)
	}
	if d.Envelope.Sender != "mimi://a.example/u/alice" || string(d.Data) != "x" {
		t.Errorf("delivery lost what was valid: %+v data %q", d.Envelope, d.Data)
	}
	waitEmpty(t, b, b.Config().ToPhoneStream)
}

func TestShutdownWaitsForInFlight(t *testing.T) {
	b := bustest.New(t)
	started := make(chan struct{})
	release := make(chan struct{})
	acked := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := make(chan error, 1)
	go func() {
		res <- b.ConsumeToPhone(ctx, 2, func(hctx context.Context, d *bus.Delivery) {
			close(started)
			<-release
			acked <- d.Ack(hctx) // the handler's context outlives the cancel
		})
	}()
	if _, err := b.Publish(ctxT(t), bus.SubjectToPhone(phone), envelope(t), nil); err != nil {
		t.Fatal(err)
	}
	receive(t, started, "handler start")
	cancel()
	select {
	case err := <-res:
		t.Fatalf("ConsumeToPhone returned (%v) while a handler was running", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	if err := receive(t, res, "ConsumeToPhone return"); err != nil {
		t.Errorf("ConsumeToPhone = %v, want nil", err)
	}
	if err := receive(t, acked, "ack"); err != nil {
		t.Errorf("in-flight Ack after cancel: %v", err)
	}
	waitEmpty(t, b, b.Config().ToPhoneStream)
}

func TestServerRestart(t *testing.T) {
	srv := bustest.NewServer(t)
	b := srv.Bus(t)
	got := make(chan string, 10)
	consumeInBackground(t, b, 1, func(ctx context.Context, d *bus.Delivery) {
		if err := d.Ack(ctx); err == nil {
			got <- string(d.Data)
		}
	})
	if _, err := b.Publish(ctxT(t), bus.SubjectToPhone(phone), envelope(t), []byte("before")); err != nil {
		t.Fatal(err)
	}
	if s := receive(t, got, "message before restart"); s != "before" {
		t.Fatalf("got %q", s)
	}

	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	start := time.Now()
	_, err := b.Publish(ctx, bus.SubjectToPhone(phone), envelope(t), []byte("lost"))
	cancel()
	if !errors.Is(err, bus.ErrUnavailable) {
		t.Fatalf("Publish with the server down = %v, want ErrUnavailable", err)
	}
	if el := time.Since(start); el > 2*time.Second+time.Second {
		t.Errorf("Publish with the server down took %s, past its 2s deadline", el)
	}
	if err := b.Ready(); !errors.Is(err, bus.ErrUnavailable) {
		t.Errorf("Ready with the server down = %v", err)
	}

	srv.Start()
	deadline := time.Now().Add(waitFor)
	for b.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("bus not ready after restart: %v", b.Ready())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := b.Publish(ctxT(t), bus.SubjectToPhone(phone), envelope(t), []byte("after")); err != nil {
		t.Fatalf("Publish after restart: %v", err)
	}
	if s := receive(t, got, "message after restart"); s != "after" {
		t.Fatalf("got %q after restart, want \"after\" (the failed publish must not appear)", s)
	}
}

func TestConsumerRecreatedWhenDeleted(t *testing.T) {
	b := bustest.New(t)
	got := make(chan string, 10)
	consumeInBackground(t, b, 1, func(ctx context.Context, d *bus.Delivery) {
		_ = d.Ack(ctx)
		got <- string(d.Data)
	})
	if _, err := b.Publish(ctxT(t), bus.SubjectToPhone(phone), envelope(t), []byte("1")); err != nil {
		t.Fatal(err)
	}
	receive(t, got, "first message")
	if err := b.JetStream().DeleteConsumer(ctxT(t), b.Config().ToPhoneStream, b.Config().Consumer); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Publish(ctxT(t), bus.SubjectToPhone(phone), envelope(t), []byte("2")); err != nil {
		t.Fatal(err)
	}
	if s := receive(t, got, "message after the consumer was deleted"); s != "2" {
		t.Errorf("got %q", s)
	}
}

func TestWatchFromPhone(t *testing.T) {
	b := bustest.New(t)
	other := uri.Number("+447700900123")
	from := func(data string, n uri.Number) {
		t.Helper()
		env := envelope(t)
		env.Sender, env.Recipient, env.Channel = n.TelURI(), "mimi://a.example/u/alice", bus.ChannelSMS
		if _, err := b.Publish(ctxT(t), bus.SubjectFromPhone(n), env, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	from("old", phone)
	ctx, cancel := context.WithCancel(context.Background())
	w, err := b.WatchFromPhone(ctx, bus.SubjectFromPhone(phone))
	if err != nil {
		t.Fatal(err)
	}
	all, err := b.WatchFromPhone(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	from("new1", phone)
	from("elsewhere", other)
	from("new2", phone)
	for _, want := range []string{"new1", "new2"} {
		d := receive(t, w, want)
		if string(d.Data) != want || d.EnvelopeErr != nil || d.Envelope.Channel != "sms" {
			t.Errorf("watch got %q (%v), want %q", d.Data, d.EnvelopeErr, want)
		}
		if err := d.Ack(ctx); err != nil {
			t.Errorf("Ack on a watched delivery: %v", err)
		}
	}
	for _, want := range []string{"new1", "elsewhere", "new2"} {
		if d := receive(t, all, want); string(d.Data) != want {
			t.Errorf("watch of all got %q, want %q", d.Data, want)
		}
	}
	cancel()
	for range w { // drains, then closes
	}
	// Watching took nothing: a new watch of the past would still see all.
	if n := streamInfo(t, b, b.Config().FromPhoneStream).State.Msgs; n != 4 {
		t.Errorf("from-phone stream holds %d, want 4", n)
	}
	if _, err := b.WatchFromPhone(context.Background(), "mimi.to.tel.>"); !errors.Is(err, bus.ErrBadSubject) {
		t.Errorf("watch outside the from-phone stream: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	srv := bustest.NewServer(t)
	reg := prometheus.NewRegistry()
	b := srv.BusWithRegistry(t, reg)
	env := envelope(t)
	for range 2 {
		if _, err := b.Publish(ctxT(t), bus.SubjectToPhone(phone), env, nil); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	consumeInBackground(t, b, 1, func(ctx context.Context, d *bus.Delivery) {
		_ = d.Ack(ctx)
		close(done)
	})
	receive(t, done, "delivery")
	waitEmpty(t, b, b.Config().ToPhoneStream)
	want := map[string]float64{
		`mimigw_bus_publishes_total{kind="to_phone"}`:                 2,
		`mimigw_bus_duplicates_total{kind="to_phone"}`:                1,
		`mimigw_bus_deliveries_total{consumer="to_phone"}`:            1,
		`mimigw_bus_settles_total{consumer="to_phone",outcome="ack"}`: 1,
		`mimigw_bus_publish_seconds_count{kind="to_phone"}`:           2,
		`mimigw_bus_connected`:                                        1,
	}
	got := gather(t, reg)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	// A second Bus on the same registry is refused, not silently merged.
	if _, err := bus.Open(ctxT(t), srv.Config(), slog.New(slog.DiscardHandler), reg); err == nil {
		t.Error("second Bus registered on the same registry")
	}
	if got := gather(t, reg)[`mimigw_bus_publishes_total{kind="to_phone"}`]; got != 2 {
		t.Errorf("after the refused Open, publishes_total = %v, want 2", got)
	}
}

func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			labels := ""
			for i, l := range m.GetLabel() {
				if i > 0 {
					labels += ","
				}
				labels += fmt.Sprintf("%s=%q", l.GetName(), l.GetValue())
			}
			if labels != "" {
				name += "{" + labels + "}"
			}
			switch {
			case m.Counter != nil:
				out[name] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[name] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[mf.GetName()+"_count{"+labels+"}"] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}

func TestPublishWithRecord(t *testing.T) {
	srv := bustest.NewServer(t)
	b := srv.Bus(t)
	env := envelope(t)
	env.Sender, env.Recipient, env.Channel = phone.TelURI(), "mimi://a.example/u/alice", bus.ChannelRCS
	subject := bus.SubjectFromPhone(phone)
	key := "in." + env.ID
	// Sent again, the message is a duplicate and its record stays as the
	// first sending left it (here, changed since by the gateway).
	for i, rec := range []string{`{"n":1}`, `{"n":2}`} {
		dup, err := b.PublishWithRecord(ctxT(t), subject, env, []byte("message"), key, []byte(rec))
		if err != nil || dup != (i > 0) {
			t.Fatalf("publish %d: duplicate %v, %v; want %v", i, dup, err, i > 0)
		}
		if i == 0 {
			if _, err := b.Deliveries(key).Put(ctxT(t), key, []byte(`{"n":1,"told":["read"]}`)); err != nil {
				t.Fatal(err)
			}
		}
	}
	e, err := b.Deliveries(key).Get(ctxT(t), key)
	if err != nil || string(e.Value()) != `{"n":1,"told":["read"]}` {
		t.Fatalf("record after the message came again: %v %q", err, e.Value())
	}
	if n := streamInfo(t, b, b.Config().FromPhoneStream).State.Msgs; n != 1 {
		t.Errorf("from-phone stream holds %d, want 1", n)
	}

	// A new message whose record is already there (its first try stored
	// the record, not the message): the message is stored, the record kept.
	again := envelope(t)
	again.Sender, again.Recipient, again.Channel = env.Sender, env.Recipient, env.Channel
	if dup, err := b.PublishWithRecord(ctxT(t), subject, again, []byte("message"), key, []byte(`{"n":3}`)); err != nil || dup {
		t.Fatalf("message with its record there: duplicate %v, %v", dup, err)
	}
	if n := streamInfo(t, b, b.Config().FromPhoneStream).State.Msgs; n != 2 {
		t.Errorf("from-phone stream holds %d, want 2", n)
	}
	if e, err := b.Deliveries(key).Get(ctxT(t), key); err != nil || string(e.Value()) != `{"n":1,"told":["read"]}` {
		t.Errorf("record: %v", err)
	}

	// A key the bucket cannot hold: neither is written.
	other := envelope(t)
	other.Sender, other.Recipient, other.Channel = env.Sender, env.Recipient, env.Channel
	for _, bad := range []string{"", "in..x", "in.*", "in.x.", "in x"} {
		if _, err := b.PublishWithRecord(ctxT(t), subject, other, []byte("m"), bad, []byte("r")); err == nil || errors.Is(err, bus.ErrUnavailable) {
			t.Errorf("key %q: %v, want a permanent error", bad, err)
		}
	}
	if n := streamInfo(t, b, b.Config().FromPhoneStream).State.Msgs; n != 2 {
		t.Errorf("after bad keys the stream holds %d, want 2", n)
	}

	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := b.PublishWithRecord(ctx, subject, other, []byte("m"), "in."+other.ID, []byte("r")); !errors.Is(err, bus.ErrUnavailable) {
		t.Errorf("with the server down: %v, want ErrUnavailable", err)
	}
}

// A message sent again past the duplicate window, while its record lives
// (updated since), is a duplicate: its first copy is found on its
// subject, among other messages of the same phone, and nothing is published (a core
// subscription sees every publish, duplicates included). A message whose
// record is there but whose first publish never was is stored, and one
// whose first copy left the stream is published again.
func TestPublishWithRecordPastWindow(t *testing.T) {
	srv := bustest.NewServer(t)
	b := srv.Bus(t, bustest.WithConfig(func(c *bus.Config) { c.PublishTimeout = 500 * time.Millisecond }))
	subject := bus.SubjectFromPhone(phone)
	fromPhone := func() bus.Envelope {
		env := envelope(t)
		env.Sender, env.Recipient, env.Channel = phone.TelURI(), "mimi://a.example/u/alice", bus.ChannelSMS
		return env
	}
	env := fromPhone()
	if dup, err := b.PublishWithRecord(ctxT(t), subject, env, []byte("first"), "in."+env.ID, []byte(`{}`)); err != nil || dup {
		t.Fatalf("first sending: duplicate %v, %v", dup, err)
	}
	for range 5 {
		other := fromPhone()
		if _, err := b.PublishWithRecord(ctxT(t), subject, other, []byte("other"), "in."+other.ID, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := b.Conn().SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	published := func() int {
		t.Helper()
		if err := b.Conn().Flush(); err != nil {
			t.Fatal(err)
		}
		n, _, err := sub.Pending()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// The gateway updates a record as the message's reports come: its
	// time is then no longer the message's (here, later by more than a
	// publish may take).
	time.Sleep(2 * time.Second)
	if _, err := b.Deliveries("in."+env.ID).Put(ctxT(t), "in."+env.ID, []byte(`{"told":["read"]}`)); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(b.Config().DuplicateWindow + time.Minute)
	bus.SetClock(b, func() time.Time { return later })

	if dup, err := b.PublishWithRecord(ctxT(t), subject, env, []byte("first"), "in."+env.ID, []byte(`{}`)); err != nil || !dup {
		t.Fatalf("sent again past the window: duplicate %v, %v; want a duplicate", dup, err)
	}
	if n := published(); n != 0 {
		t.Errorf("sent again past the window: published %d times, want none", n)
	}

	lost := fromPhone()
	if _, err := b.Deliveries("in."+lost.ID).Put(ctxT(t), "in."+lost.ID, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if dup, err := b.PublishWithRecord(ctxT(t), subject, lost, []byte("lost"), "in."+lost.ID, []byte(`{}`)); err != nil || dup {
		t.Fatalf("record there, message never published: duplicate %v, %v", dup, err)
	}
	if n := published(); n != 1 {
		t.Errorf("record there, message never published: published %d times, want once", n)
	}
	if n := streamInfo(t, b, b.Config().FromPhoneStream).State.Msgs; n != 7 {
		t.Errorf("from-phone stream holds %d, want 7", n)
	}

	stream, err := b.JetStream().Stream(ctxT(t), b.Config().FromPhoneStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Purge(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	// Not found, so published (JetStream's own window, which has not
	// passed in this test, then drops it).
	if _, err := b.PublishWithRecord(ctxT(t), subject, env, []byte("first"), "in."+env.ID, []byte(`{}`)); err != nil {
		t.Fatalf("sent again after its first copy left the stream: %v", err)
	}
	if n := published(); n != 2 {
		t.Errorf("sent again after its first copy left the stream: published %d in all, want 2", n)
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
}

// A message that with its headers is over the server's max payload is
// refused as too large before anything is written, its record included;
// one that fits with its headers is stored.
func TestPublishTooLarge(t *testing.T) {
	b := bustest.New(t)
	limit := b.MaxPayload()
	if limit <= 0 {
		t.Fatalf("max payload %d on a connected bus", limit)
	}
	env := envelope(t)
	env.Sender, env.Recipient, env.Channel = phone.TelURI(), "mimi://a.example/u/alice", bus.ChannelRCS
	subject := bus.SubjectFromPhone(phone)
	key := "in." + env.ID
	// The data alone fits; with the headers it does not.
	_, err := b.PublishWithRecord(ctxT(t), subject, env, make([]byte, limit-8), key, []byte(`{}`))
	if !errors.Is(err, bus.ErrTooLarge) || errors.Is(err, bus.ErrUnavailable) {
		t.Fatalf("data of max payload less 8: %v, want ErrTooLarge and not ErrUnavailable", err)
	}
	if _, err := b.Publish(ctxT(t), subject, env, make([]byte, 2*limit)); !errors.Is(err, bus.ErrTooLarge) {
		t.Errorf("data of twice max payload: %v, want ErrTooLarge", err)
	}
	if n := streamInfo(t, b, b.Config().FromPhoneStream).State.Msgs; n != 0 {
		t.Errorf("from-phone stream holds %d after refusals, want 0", n)
	}
	if _, err := b.Deliveries(key).Get(ctxT(t), key); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("record of a refused message: %v, want none", err)
	}
	if dup, err := b.PublishWithRecord(ctxT(t), subject, env, make([]byte, limit-4096), key, []byte(`{}`)); err != nil || dup {
		t.Fatalf("data of max payload less 4 KiB: duplicate %v, %v", dup, err)
	}
	if n := streamInfo(t, b, b.Config().FromPhoneStream).State.Msgs; n != 1 {
		t.Errorf("from-phone stream holds %d, want 1", n)
	}
}

// A publish is bounded by PublishTimeout even when its caller sets no
// deadline: an ack that never comes (here a stream told to send none)
// fails as unavailable.
func TestPublishBoundedWithoutDeadline(t *testing.T) {
	b := bustest.New(t, bustest.WithConfig(func(c *bus.Config) { c.PublishTimeout = 300 * time.Millisecond }))
	sc := streamInfo(t, b, b.Config().ToPhoneStream).Config
	sc.NoAck = true
	if _, err := b.JetStream().UpdateStream(ctxT(t), sc); err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() {
		_, err := b.Publish(context.Background(), bus.SubjectToPhone(phone), envelope(t), []byte("x"))
		res <- err
	}()
	select {
	case err := <-res:
		if !errors.Is(err, bus.ErrUnavailable) {
			t.Errorf("publish never acknowledged, no deadline: %v, want ErrUnavailable", err)
		}
	case <-time.After(waitFor):
		t.Fatal("publish never acknowledged, no deadline: it never returned")
	}
}

// ConsumeFromPhone reads the from-phone stream through a durable consumer
// of its own: messages stored after it exists, redelivered after a NAK with
// the attempts counted, and still in the stream for other readers once
// acknowledged.
func TestConsumeFromPhone(t *testing.T) {
	b := bustest.New(t)
	if err := b.ConsumeFromPhone(ctxT(t), b.Config().Consumer, 1, 3, nil); err == nil {
		t.Error("the to-phone consumer's name was accepted")
	}
	if err := b.ConsumeFromPhone(ctxT(t), "outbox", 0, 3, nil); err == nil {
		t.Error("zero workers were accepted")
	}
	got := make(chan int, 10)
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() {
		res <- b.ConsumeFromPhone(ctx, "outbox", 2, 2, func(ctx context.Context, d *bus.Delivery) {
			if d.LastAttempt != (d.Attempt >= 2) {
				t.Errorf("attempt %d of 2: LastAttempt %v", d.Attempt, d.LastAttempt)
			}
			got <- d.Attempt
			if d.Attempt == 1 {
				_ = d.Nak(0)
				return
			}
			if err := d.Ack(ctx); err != nil {
				t.Errorf("Ack: %v", err)
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-res; err != nil {
			t.Errorf("ConsumeFromPhone: %v", err)
		}
	})
	deadline := time.Now().Add(waitFor)
	for {
		if _, err := b.JetStream().Consumer(ctxT(t), b.Config().FromPhoneStream, "outbox"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the outbox consumer was not created")
		}
		time.Sleep(10 * time.Millisecond)
	}
	env := envelope(t)
	env.Channel = "sms"
	if _, err := b.Publish(ctxT(t), bus.SubjectFromPhone(phone), env, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if a := receive(t, got, "first attempt"); a != 1 {
		t.Fatalf("attempt %d, want 1", a)
	}
	if a := receive(t, got, "second attempt"); a != 2 {
		t.Fatalf("attempt %d, want 2", a)
	}
	if n := streamInfo(t, b, b.Config().FromPhoneStream).State.Msgs; n != 1 {
		t.Errorf("the from-phone stream holds %d messages after the ack, want 1 (it keeps them for every reader)", n)
	}
	select {
	case a := <-got:
		t.Errorf("delivered again after the ack (attempt %d)", a)
	case <-time.After(300 * time.Millisecond):
	}
}

// recorder is a slog handler that keeps what was logged.
type recorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// find returns the records with message msg, each as its attributes.
func (r *recorder) find(msg string) []map[string]slog.Value {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]slog.Value
	for _, rec := range r.recs {
		if rec.Message != msg {
			continue
		}
		attrs := map[string]slog.Value{}
		rec.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value; return true })
		out = append(out, attrs)
	}
	return out
}

// An embedded server whose port is taken fails at once, naming the key
// and the address, instead of waiting for a server that never listens.
func TestStartServerPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	cfg := bus.DefaultConfig()
	cfg.Embedded = bus.EmbeddedConfig{Listen: addr, DataDir: t.TempDir()}
	start := time.Now()
	_, err = bus.Open(ctxT(t), cfg, bustest.Logger(t), nil)
	var ce *bus.ConfigError
	if !errors.As(err, &ce) || ce.Key != "embedded.listen" || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Open on a taken port = %v, want an error naming embedded.listen and %s", err, addr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s to fail", d)
	}
}

// With nothing listening at bus.url, Open says every few seconds what it
// waits for (the URL without its password, the attempts), and fails on one
// line naming the key.
func TestOpenLogsWhileWaitingForServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	cfg := bus.DefaultConfig()
	cfg.URL = "nats://gw:secret@" + addr
	rec := &recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	_, err = bus.Open(ctx, cfg, slog.New(rec), nil)
	var ce *bus.ConfigError
	if !errors.As(err, &ce) || ce.Key != "url" || !errors.Is(err, bus.ErrUnavailable) {
		t.Fatalf("Open = %v, want an error naming url and wrapping ErrUnavailable", err)
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || strings.Contains(msg, "secret") || !strings.Contains(msg, addr) {
		t.Errorf("error %q: want one line naming %s without the password", msg, addr)
	}
	waits := rec.find("waiting for the NATS server")
	if len(waits) == 0 {
		t.Fatal("nothing logged while waiting")
	}
	w := waits[0]
	if u := w["url"].String(); strings.Contains(u, "secret") || !strings.Contains(u, addr) {
		t.Errorf("logged url %q", u)
	}
	if w["attempt"].Kind() != slog.KindInt64 || w["attempt"].Int64() < 1 {
		t.Errorf("logged attempt %v", w["attempt"])
	}
	rec.mu.Lock()
	for _, r := range rec.recs {
		s := r.Message
		r.Attrs(func(a slog.Attr) bool { s += " " + a.String(); return true })
		if strings.Contains(s, "secret") {
			t.Errorf("logged the password: %s", s)
		}
	}
	rec.mu.Unlock()
}

// Tools attach to a mimigw bus only: a NATS server without JetStream, or
// without the gateway's streams, is refused at once with an error naming
// the URL.
func TestAttachRefusesForeignBus(t *testing.T) {
	plain, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go plain.Start()
	if !plain.ReadyForConnections(waitFor) {
		t.Fatal("plain server not ready")
	}
	defer plain.Shutdown()
	js, err := bus.StartServer(bus.EmbeddedConfig{Listen: "127.0.0.1:-1", DataDir: t.TempDir()}, "", "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer js.Shutdown()
	for _, tt := range []struct{ url, want string }{
		{plain.ClientURL(), "JetStream is not enabled"},
		{js.ClientURL(), "no stream MIMI_TO_PHONE"},
	} {
		cfg := bus.DefaultConfig()
		cfg.URL = tt.url
		start := time.Now()
		b, err := bus.Attach(ctxT(t), cfg, bustest.Logger(t))
		if err == nil {
			b.Close()
			t.Errorf("%s: attached", tt.url)
			continue
		}
		var ce *bus.ConfigError
		if !errors.As(err, &ce) || ce.Key != "url" || !strings.Contains(err.Error(), "not a mimigw bus") ||
			!strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), strings.TrimPrefix(tt.url, "nats://")) {
			t.Errorf("%s: %v, want url: ... not a mimigw bus: %s", tt.url, err, tt.want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: took %s", tt.url, d)
		}
	}
}

// The embedded server's log lines carry one component key, its own.
func TestEmbeddedLogNoDuplicateKeys(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := bus.DefaultConfig()
	cfg.Embedded = bus.EmbeddedConfig{Listen: "127.0.0.1:-1", DataDir: t.TempDir()}
	b, err := bus.Open(ctxT(t), cfg, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	server := 0
	for _, line := range lines {
		keys := map[string]int{}
		dec := json.NewDecoder(strings.NewReader(line))
		if _, err := dec.Token(); err != nil { // {
			t.Fatalf("%q: %v", line, err)
		}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			keys[k.(string)]++
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
		}
		for k, n := range keys {
			if n > 1 {
				t.Errorf("key %q %d times in %s", k, n, line)
			}
		}
		if strings.Contains(line, `"component":"nats-server"`) {
			server++
		}
	}
	if server == 0 {
		t.Errorf("no line from the embedded server in %d lines", len(lines))
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
