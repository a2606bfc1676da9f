package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/bus/bustest"
)

// Counters: an absent key reads 0, a write needs the revision last read, a
// stale one conflicts, and a count expires with its TTL, after which it
// reads 0 and can be written again from the revision Get gives.
func TestCounters(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	c, err := b.OpenCounters(ctx, "test-limits")
	if err != nil {
		t.Fatal(err)
	}
	// Opening again (another instance, a restart) changes nothing.
	if _, err := b.OpenCounters(ctx, "test-limits"); err != nil {
		t.Fatalf("second open: %v", err)
	}
	if v, rev, err := c.Get(ctx, "k"); err != nil || v != 0 || rev != 0 {
		t.Fatalf("absent key: %d rev %d %v", v, rev, err)
	}
	rev1, err := c.Set(ctx, "k", 3, 0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Set(ctx, "k", 4, 0, time.Hour); !bus.IsConflict(err) {
		t.Fatalf("create over an existing count: %v, want a conflict", err)
	}
	rev2, err := c.Set(ctx, "k", 5, rev1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Set(ctx, "k", 6, rev1, time.Hour); !bus.IsConflict(err) {
		t.Fatalf("write with a stale revision: %v, want a conflict", err)
	}
	if v, rev, err := c.Get(ctx, "k"); err != nil || v != 5 || rev != rev2 {
		t.Fatalf("Get: %d rev %d %v; want 5 rev %d", v, rev, err, rev2)
	}

	// A count with the shortest TTL goes away by itself: the bucket
	// shows its delete marker.
	kv, err := b.JetStream().KeyValue(ctx, "test-limits")
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.Watch(ctx, "short", jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := c.Set(ctx, "short", 7, 0, time.Second); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(20 * time.Second)
	for gone := false; !gone; {
		select {
		case e := <-w.Updates():
			gone = e != nil && e.Operation() != jetstream.KeyValuePut
		case <-timeout:
			t.Fatal("a count with a 1s TTL not gone after 20s")
		}
	}
	v, rev, err := c.Get(ctx, "short")
	if err != nil || v != 0 {
		t.Fatalf("an expired count reads %d (%v), want 0", v, err)
	}
	if _, err := c.Set(ctx, "short", 1, rev, time.Hour); err != nil {
		// A delete marker may have gone in between: read again once.
		if !bus.IsConflict(err) {
			t.Fatal(err)
		}
		if _, rev, err = c.Get(ctx, "short"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Set(ctx, "short", 1, rev, time.Hour); err != nil {
			t.Fatalf("writing an expired count again: %v", err)
		}
	}
	if v, _, err := c.Get(ctx, "short"); err != nil || v != 1 {
		t.Fatalf("after writing it again: %d %v", v, err)
	}
}
