package bus_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/bus/bustest"
)

// Counters: an absent key counts from 0, additions and take-backs give
// the total after them, windows of different lengths are counted apart,
// and bad names and keys are refused before anything is sent.
func TestCounters(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	c := b.Counters("test-limits")
	steps := []struct {
		key    string
		n      int64
		window time.Duration
		want   int64
	}{
		{"sender.a.60", 1, time.Minute, 1},
		{"sender.a.60", 3, time.Minute, 4},
		{"sender.a.60", -1, time.Minute, 3},
		{"sender.b.60", 2, time.Minute, 2},
		{"sender.a.60", 5, time.Hour, 5}, // the same key in another window length
		{"sender.a.60", 0, time.Minute, 3},
	}
	for i, s := range steps {
		got, err := c.Add(ctx, s.key, s.n, s.window)
		if err != nil || got != s.want {
			t.Fatalf("step %d: Add(%s, %d, %s) = %d, %v; want %d", i, s.key, s.n, s.window, got, err, s.want)
		}
	}
	// Opening again (another instance, a restart) finds the counts.
	c2 := b.Counters("test-limits")
	if got, err := c2.Add(ctx, "sender.a.60", 1, time.Minute); err != nil || got != 4 {
		t.Fatalf("after opening again: %d %v, want 4", got, err)
	}
	for _, name := range []string{"", "a.b", "a b", "a*", "a>", strings.Repeat("a", 200)} {
		if bus.ValidCountersName(name) {
			t.Errorf("ValidCountersName(%q) took a name no stream can have", name)
		}
		if _, err := b.Counters(name).Add(ctx, "k", 1, time.Minute); err == nil {
			t.Errorf("counters named %q took a count", name)
		}
	}
	if !bus.ValidCountersName("mimigw-limits") {
		t.Error("ValidCountersName refused the default name")
	}
	for _, key := range []string{"", "a..b", "a.", "a b", "a*", "a.>"} {
		if _, err := c.Add(ctx, key, 1, time.Minute); err == nil {
			t.Errorf("Add(%q) took a key no subject can have", key)
		}
	}
	if _, err := c.Add(ctx, "k", 1, time.Millisecond); err == nil {
		t.Error("Add took a window under a second")
	}
}

// Two instances adding to one key at once never conflict: every addition
// gets a total of its own, and the totals are exactly 1..n.
func TestCountersTwoInstancesAtOnce(t *testing.T) {
	t.Parallel()
	srv := bustest.NewServer(t)
	ctx := context.Background()
	var cs [2]*bus.Counters
	for i := range cs {
		cs[i] = srv.Bus(t).Counters("test-limits")
	}
	const n = 400
	totals := make([]int64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			v, err := cs[i%2].Add(ctx, "provider.hot.0", 1, time.Hour)
			if err != nil {
				t.Error(err)
			}
			totals[i] = v
		})
	}
	wg.Wait()
	slices.Sort(totals)
	for i, v := range totals {
		if v != int64(i+1) {
			t.Fatalf("sorted totals[%d] = %d, want %d: two additions saw the same total", i, v, i+1)
		}
	}
}

// A count is dropped two windows after its last change, and then counts
// from 0 again.
func TestCountersExpire(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	c := b.Counters("test-limits")
	if _, err := c.Add(ctx, "short", 7, time.Second); err != nil {
		t.Fatal(err)
	}
	st, err := b.JetStream().Stream(ctx, c.Stream(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if info := st.CachedInfo(); info.Config.MaxAge != 2*time.Second || !info.Config.AllowMsgCounter || info.Config.MaxMsgsPerSubject != 1 {
		t.Fatalf("stream %s: max age %s, counter %v, per subject %d", info.Config.Name, info.Config.MaxAge, info.Config.AllowMsgCounter, info.Config.MaxMsgsPerSubject)
	}
	if _, err := st.GetLastMsgForSubject(ctx, "mimigw."+c.Stream(time.Second)+".short"); err != nil {
		t.Fatalf("the count is not on its subject: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := st.GetLastMsgForSubject(ctx, "mimigw."+c.Stream(time.Second)+".short")
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("a count of 1s windows still there after 20s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got, err := c.Add(ctx, "short", 1, time.Second); err != nil || got != 1 {
		t.Fatalf("after it was dropped: %d %v, want 1", got, err)
	}
}
