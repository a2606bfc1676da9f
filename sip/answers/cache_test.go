package answers

import (
	"fmt"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestCache(ttl time.Duration, max int) (*Cache, *clock) {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	c := New(ttl, max)
	c.now = clk.now
	n := clk.t.UnixNano()
	c.cur.started, c.prev.started = n, n
	return c, clk
}

func TestCacheLifecycle(t *testing.T) {
	c, clk := newTestCache(32*time.Second, 1000)
	k := KeyOf("z9hG4bK-1", "10.0.0.1:5060", "MESSAGE")

	if st, _ := c.Begin(k); st != Unseen {
		t.Fatalf("first Begin = %v, want Unseen", st)
	}
	if st, _ := c.Begin(k); st != Pending {
		t.Fatalf("Begin while handling = %v, want Pending", st)
	}
	want := Answer{Status: 503, RetryAfter: 5, Reason: "Bus unavailable"}
	c.Finish(k, want)
	clk.t = clk.t.Add(31 * time.Second)
	st, got := c.Begin(k)
	if st != Answered || got != want {
		t.Fatalf("Begin after Finish = %v %+v, want Answered %+v", st, got, want)
	}
	clk.t = clk.t.Add(2 * time.Second) // 33 s after Finish
	if st, _ := c.Begin(k); st != Unseen {
		t.Fatalf("Begin after TTL = %v, want Unseen", st)
	}
}

func TestCacheKeysDiffer(t *testing.T) {
	keys := map[Key]string{}
	for _, in := range [][3]string{
		{"z9hG4bK-1", "10.0.0.1:5060", "MESSAGE"},
		{"z9hG4bK-1", "10.0.0.2:5060", "MESSAGE"},
		{"z9hG4bK-1", "10.0.0.1:5060", "OPTIONS"},
		{"z9hG4bK-2", "10.0.0.1:5060", "MESSAGE"},
		{"z9hG4bK-1\x0010.0.0.1:5060", "", "MESSAGE"},
	} {
		k := KeyOf(in[0], in[1], in[2])
		if prev, ok := keys[k]; ok {
			t.Fatalf("KeyOf(%q) equals KeyOf(%s)", in, prev)
		}
		keys[k] = fmt.Sprintf("%q", in)
	}
}

func TestCacheForget(t *testing.T) {
	c, _ := newTestCache(32*time.Second, 1000)
	k := KeyOf("b", "h:1", "MESSAGE")
	c.Begin(k)
	c.Forget(k)
	if st, _ := c.Begin(k); st != Unseen {
		t.Fatalf("Begin after Forget = %v, want Unseen", st)
	}
}

// The cap holds whatever the rate: a burst of distinct transactions far
// beyond it leaves at most max entries, and the early drops are counted.
func TestCacheBounded(t *testing.T) {
	const max = 1000
	c, clk := newTestCache(32*time.Second, max)
	for i := 0; i < 50*max; i++ {
		k := KeyOf(fmt.Sprintf("z9hG4bK-%d", i), "10.0.0.1:5060", "MESSAGE")
		if st, _ := c.Begin(k); st != Unseen {
			t.Fatalf("transaction %d: Begin = %v, want Unseen", i, st)
		}
		c.Finish(k, Answer{Status: 202})
		if n := c.Stats().Entries; n > max {
			t.Fatalf("after %d transactions the cache holds %d entries, cap %d", i+1, n, max)
		}
		clk.t = clk.t.Add(time.Millisecond)
	}
	if c.Stats().Evicted == 0 {
		t.Fatal("no early evictions counted although the cap was exceeded")
	}
	// The most recent answers are still there.
	k := KeyOf(fmt.Sprintf("z9hG4bK-%d", 50*max-1), "10.0.0.1:5060", "MESSAGE")
	if st, a := c.Begin(k); st != Answered || a.Status != 202 {
		t.Fatalf("latest transaction: %v %+v, want Answered 202", st, a)
	}
}

// Within the rate the cap allows, every answer survives its whole TTL.
func TestCacheKeepsAnswersForTTL(t *testing.T) {
	c, clk := newTestCache(4*time.Second, 100)
	var keys []Key
	for i := 0; i < 40; i++ { // 10 per second: 40 live at most, under 50 per generation
		k := KeyOf(fmt.Sprintf("b%d", i), "s", "MESSAGE")
		c.Begin(k)
		c.Finish(k, Answer{Status: 202})
		keys = append(keys, k)
		clk.t = clk.t.Add(100 * time.Millisecond)
		for j, old := range keys {
			age := time.Duration(len(keys)-j) * 100 * time.Millisecond
			st, _ := c.Begin(old)
			if age < 4*time.Second && st != Answered {
				t.Fatalf("answer %d aged %s: state %v, want Answered", j, age, st)
			}
			if st == Unseen { // Begin re-inserted it: undo for the next round
				c.Forget(old)
			}
		}
	}
	if c.Stats().Evicted != 0 {
		t.Fatalf("evicted %d entries below the cap", c.Stats().Evicted)
	}
}

func TestCacheTagStable(t *testing.T) {
	a := KeyOf("z9hG4bK-x", "h:1", "MESSAGE")
	b := KeyOf("z9hG4bK-x", "h:1", "MESSAGE")
	if a.Tag() != b.Tag() {
		t.Fatal("the same transaction got two tags")
	}
}

func BenchmarkCacheBeginFinish(b *testing.B) {
	c := New(32*time.Second, 400_000)
	branches := make([]string, 1<<16)
	for i := range branches {
		branches[i] = fmt.Sprintf("z9hG4bK-%d", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := KeyOf(branches[i&(1<<16-1)], "10.0.0.1:5060", "MESSAGE")
		if st, _ := c.Begin(k); st == Unseen {
			c.Finish(k, Answer{Status: 202})
		}
	}
}
