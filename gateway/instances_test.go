package gateway

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mimigw/mimigw/gateway/identity"
	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/bus/bustest"
	"github.com/mimigw/mimigw/mimi/uri"
)

// Two gateway instances share the work; one dies holding messages it has
// not acked. The other delivers every message: nothing is lost.
func TestInstanceDiesHoldingWork(t *testing.T) {
	t.Parallel()
	srv := bustest.NewServer(t)
	opts := bustest.WithConfig(func(c *bus.Config) {
		c.AckWait = time.Second
		c.Backoff = []time.Duration{100 * time.Millisecond}
		c.MaxDeliver = 5
	})
	start := func(b *bus.Bus, sms SMSSender) context.CancelFunc {
		ids, err := identity.New(b.Identity(), identity.Config{Domain: domain, Pools: []string{"+15559990000-+15559990009"}})
		if err != nil {
			t.Fatal(err)
		}
		cfg := testConfig()
		cfg.Channel = ChannelSMS
		g, err := New(context.Background(), cfg, b, ids, bustest.Logger(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		g.UseSMS(sms)
		ctx, cancel := context.WithCancel(context.Background())
		go func() { _ = g.Run(ctx) }()
		return cancel
	}

	// Instance A takes messages and never finishes them.
	held := make(chan struct{}, 100)
	stuck := smsFunc(func(ctx context.Context, m OutboundSMS) (SMSSent, error) {
		held <- struct{}{}
		<-ctx.Done()
		return SMSSent{}, ctx.Err()
	})
	busA := srv.Bus(t, opts)
	stopA := start(busA, stuck)

	const n = 40
	publisher := srv.Bus(t, opts)
	h := &harness{t: t, bus: publisher}
	ids := make(map[string]bool)
	for i := 0; i < n; i++ {
		id := h.sendToPhone(uri.Number(fmt.Sprintf("+1555123%04d", i)), alice, "", fmt.Sprintf("m%d", i), ChannelSMS)
		ids[id.String()] = true
	}
	recv(t, held, "a message held by instance A")

	// A dies: its connection goes without a word, its handlers never return.
	busA.Conn().Close()
	defer stopA()

	// Instance B picks everything up, including what A held.
	var mu sync.Mutex
	sent := map[string]int{}
	done := make(chan struct{})
	ok := smsFunc(func(ctx context.Context, m OutboundSMS) (SMSSent, error) {
		mu.Lock()
		sent[m.ID]++
		if len(sent) == n {
			select {
			case <-done:
			default:
				close(done)
			}
		}
		mu.Unlock()
		return SMSSent{Source: "smsc1", Refs: []string{m.ID[:16]}}, nil
	})
	stopB := start(srv.Bus(t, opts), ok)
	defer stopB()
	select {
	case <-done:
	case <-time.After(wait):
		mu.Lock()
		t.Fatalf("instance B sent %d of %d messages", len(sent), n)
	}
	mu.Lock()
	defer mu.Unlock()
	for id := range ids {
		if sent[id] == 0 {
			t.Errorf("message %s lost", id)
		}
	}
	dups := 0
	for _, c := range sent {
		dups += c - 1
	}
	t.Logf("%d messages, %d sent twice by B", n, dups)
	if dups != 0 {
		t.Errorf("B sent %d messages twice; each was handed to it once", dups)
	}
}

type smsFunc func(context.Context, OutboundSMS) (SMSSent, error)

func (f smsFunc) SendSMS(ctx context.Context, m OutboundSMS) (SMSSent, error) { return f(ctx, m) }
func (f smsFunc) Segments(text string) int                                    { return asciiSegments(text) }
