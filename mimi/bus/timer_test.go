package bus_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/bus/bustest"
)

type fired struct {
	bus.Timer
	when time.Time
}

// timersInBackground runs ConsumeTimers until stop is called or the test
// ends; handle may be nil (always succeed).
func timersInBackground(t *testing.T, b *bus.Bus, handle func(bus.Timer) error) (<-chan fired, func()) {
	out := make(chan fired, 100)
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() {
		res <- b.ConsumeTimers(ctx, 2, func(_ context.Context, tm bus.Timer) error {
			out <- fired{tm, time.Now()}
			if handle != nil {
				return handle(tm)
			}
			return nil
		})
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-res:
				if err != nil {
					t.Errorf("ConsumeTimers = %v", err)
				}
			case <-time.After(waitFor):
				t.Error("ConsumeTimers did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return out, stop
}

func TestTimerFiresAfterItsTime(t *testing.T) {
	b := bustest.New(t)
	got, _ := timersInBackground(t, b, nil)
	at := time.Now().Add(700 * time.Millisecond)
	if err := b.Schedule(ctxT(t), "revoke.abc", at, []byte("payload")); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Hour)
	if err := b.Schedule(ctxT(t), "overdue", past, nil); err != nil {
		t.Fatal(err)
	}
	f := receive(t, got, "overdue timer")
	if f.Key != "overdue" || !f.At.Equal(past) {
		t.Errorf("first timer %q at %v, want the overdue one", f.Key, f.At)
	}
	f = receive(t, got, "timer")
	if f.Key != "revoke.abc" || string(f.Data) != "payload" || !f.At.Equal(at) {
		t.Errorf("fired %+v", f.Timer)
	}
	if f.when.Before(at) {
		t.Errorf("timer due at %v fired early, at %v", at, f.when)
	}
	if f.Attempt < 2 {
		t.Errorf("attempt %d: a timer not yet due should have been delivered and put back first", f.Attempt)
	}
	waitEmpty(t, b, b.Config().TimerStream)
}

func TestTimerDeduplicatedByKey(t *testing.T) {
	b := bustest.New(t)
	at := time.Now().Add(500 * time.Millisecond)
	if err := b.Schedule(ctxT(t), "k", at, []byte("first")); err != nil {
		t.Fatal(err)
	}
	// Another instance scheduling the same timer.
	b2 := bustest.Join(t, b)
	if err := b2.Schedule(ctxT(t), "k", at.Add(time.Hour), []byte("second")); err != nil {
		t.Fatalf("duplicate Schedule: %v", err)
	}
	if n := streamInfo(t, b, b.Config().TimerStream).State.Msgs; n != 1 {
		t.Fatalf("timer stream holds %d, want 1", n)
	}
	got, _ := timersInBackground(t, b, nil)
	if f := receive(t, got, "timer"); string(f.Data) != "first" {
		t.Errorf("fired %q, want the first schedule", f.Data)
	}
	waitEmpty(t, b, b.Config().TimerStream)
	// Fired and gone: the key is free again.
	if err := b.Schedule(ctxT(t), "k", time.Now(), []byte("again")); err != nil {
		t.Fatal(err)
	}
	if f := receive(t, got, "rescheduled timer"); string(f.Data) != "again" {
		t.Errorf("fired %q, want again", f.Data)
	}
	select {
	case f := <-got:
		t.Errorf("extra firing: %+v", f.Timer)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestTimerSurvivesConsumerRestart(t *testing.T) {
	b := bustest.New(t)
	got, stop := timersInBackground(t, b, nil)
	at := time.Now().Add(1500 * time.Millisecond)
	if err := b.Schedule(ctxT(t), "restart", at, nil); err != nil {
		t.Fatal(err)
	}
	// Wait until the first consumer has been handed the timer and put it
	// back for later.
	waitAckPending(t, b, 1)
	stop()
	select {
	case f := <-got:
		t.Fatalf("timer fired early on the stopped consumer: %+v", f.Timer)
	default:
	}
	// Another instance takes over.
	b2 := bustest.Join(t, b)
	got2, _ := timersInBackground(t, b2, nil)
	f := receive(t, got2, "timer on the second instance")
	if f.Key != "restart" || f.when.Before(at) {
		t.Errorf("fired %q at %v, due %v", f.Key, f.when, at)
	}
	waitEmpty(t, b, b.Config().TimerStream)
}

func TestTimerSurvivesServerRestart(t *testing.T) {
	srv := bustest.NewServer(t)
	b := srv.Bus(t)
	at := time.Now().Add(time.Second)
	if err := b.Schedule(ctxT(t), "durable", at, []byte("d")); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	got, _ := timersInBackground(t, b, nil)
	f := receive(t, got, "timer after server restart")
	if f.Key != "durable" || string(f.Data) != "d" || f.when.Before(at) {
		t.Errorf("fired %+v at %v, due %v", f.Timer, f.when, at)
	}
}

func TestTimerHandlerFailureRetried(t *testing.T) {
	b := bustest.New(t)
	var mu sync.Mutex
	calls := 0
	got, _ := timersInBackground(t, b, func(bus.Timer) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		switch calls {
		case 1:
			return errors.New("downstream unavailable")
		case 2:
			panic("handler bug")
		}
		return nil
	})
	if err := b.Schedule(ctxT(t), "flaky", time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		receive(t, got, "timer firing")
	}
	waitEmpty(t, b, b.Config().TimerStream)
	select {
	case f := <-got:
		t.Errorf("fired again after success: %+v", f.Timer)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestScheduleRejectsBadKey(t *testing.T) {
	b := bustest.New(t)
	for _, k := range []string{"", "a b", "a.*", "a..b", "x>"} {
		if err := b.Schedule(ctxT(t), k, time.Now(), nil); !errors.Is(err, bus.ErrBadTimerKey) {
			t.Errorf("Schedule(%q) = %v, want ErrBadTimerKey", k, err)
		}
	}
}

// waitAckPending waits until the timer consumer holds n timers handed
// out and not yet done.
func waitAckPending(t *testing.T, b *bus.Bus, n int) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		c, err := b.JetStream().Consumer(ctxT(t), b.Config().TimerStream, b.Config().Consumer+"-timers")
		if err != nil {
			t.Fatal(err)
		}
		if c.CachedInfo().NumAckPending == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timer consumer has %d pending, want %d", c.CachedInfo().NumAckPending, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
