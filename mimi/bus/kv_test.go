package bus_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/bus/bustest"
)

func TestIsConflict(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	ctx := context.Background()
	kv := b.Identity()
	rev, err := kv.Create(ctx, "k", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = kv.Create(ctx, "k", []byte("2"))
	if !bus.IsConflict(err) {
		t.Errorf("Create of an existing key: %v is not a conflict", err)
	}
	if _, err := kv.Update(ctx, "k", []byte("3"), rev+10); !bus.IsConflict(err) {
		t.Errorf("Update with a stale revision: %v is not a conflict", err)
	}
	// Create on a deleted key takes the library's second path.
	if err := kv.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { _, errs[i] = kv.Create(ctx, "k", []byte("again")) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !bus.IsConflict(err):
			t.Errorf("losing Create on a deleted key: %v is not a conflict", err)
		}
	}
	if won != 1 {
		t.Errorf("%d Creates won, want 1", won)
	}
	if bus.IsConflict(nil) || bus.IsConflict(errors.New("other")) || bus.IsConflict(jetstream.ErrKeyNotFound) {
		t.Error("IsConflict says yes to what is no conflict")
	}
}

func TestReadCache(t *testing.T) {
	t.Parallel()
	srv := bustest.NewServer(t)
	b, other := srv.Bus(t), srv.Bus(t) // two instances
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := bus.NewReadCache(b.Identity(), 2)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	eventually(t, func() bool {
		_, _ = c.Get(ctx, "probe")
		return c.Len() == 1
	})

	if _, err := c.Get(ctx, "a"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("absent key: %v", err)
	}
	// A write by the other instance reaches the cache through the watch.
	if _, err := other.Identity().Put(ctx, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		e, err := c.Get(ctx, "a")
		return err == nil && string(e.Value()) == "1"
	})
	if _, err := other.Identity().Put(ctx, "a", []byte("2")); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		e, err := c.Get(ctx, "a")
		return err == nil && string(e.Value()) == "2"
	})
	if err := other.Identity().Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		_, err := c.Get(ctx, "a")
		return errors.Is(err, jetstream.ErrKeyNotFound)
	})
	for _, k := range []string{"x", "y", "z"} {
		_, _ = c.Get(ctx, k)
	}
	if c.Len() > 2 {
		t.Errorf("cache holds %d keys, bound 2", c.Len())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c.Len() != 0 {
		t.Error("a stopped cache keeps keys it can no longer keep true")
	}
}

func eventually(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The deliveries bucket keeps at most DeliveriesMaxRecords records, shared
// by its shards, and drops the oldest, so that delivery state never
// refuses a write and the server's memory stays flat under sustained
// load. Keys spread over every shard.
func TestDeliveriesBounded(t *testing.T) {
	t.Parallel()
	srv := bustest.NewServer(t)
	cfg := func(c *bus.Config) { c.DeliveriesMaxRecords = 1000 }
	srv.Bus(t, bustest.WithConfig(cfg))
	b := srv.Bus(t, bustest.WithConfig(cfg)) // opening again keeps the bound
	ctx := context.Background()
	const n = 3000
	for i := range n {
		key := fmt.Sprintf("out.%04d", i)
		if _, err := b.Deliveries(key).Put(ctx, key, []byte("x")); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	if _, err := b.Deliveries("out.0000").Get(ctx, "out.0000"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("oldest record still there: %v", err)
	}
	last := fmt.Sprintf("out.%04d", n-1)
	if e, err := b.Deliveries(last).Get(ctx, last); err != nil || string(e.Value()) != "x" {
		t.Errorf("newest record: %v", err)
	}
	shards := b.Config().DeliveriesShards
	if shards < 2 {
		t.Fatalf("default deliveries_shards %d: nothing to spread over", shards)
	}
	total := 0
	for i := range shards {
		name := b.Config().DeliveriesBucket
		if i > 0 {
			name = fmt.Sprintf("%s-%d", name, i)
		}
		kv, err := b.JetStream().KeyValue(ctx, name)
		if err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		per := 1000 / shards
		if i < 1000%shards {
			per++
		}
		if v := int(st.Values()); v == 0 || v > per {
			t.Errorf("shard %s holds %d records, want 1 to %d", name, v, per)
		} else {
			total += v
		}
	}
	if total != 1000 { // 3,000 keys fill every shard
		t.Errorf("shards hold %d records together, bound 1000", total)
	}
}

// Records are found by the shard their key hashes to, so a bus written
// with one shard count refuses another: records would seem lost. A bucket
// from before shards (no count recorded) is taken as it is.
func TestDeliveriesShardsChanged(t *testing.T) {
	t.Parallel()
	srv := bustest.NewServer(t)
	ctx := ctxT(t)
	b := srv.Bus(t, bustest.WithConfig(func(c *bus.Config) { c.DeliveriesShards = 4 }))
	if _, err := b.Deliveries("in.1").Put(ctx, "in.1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	cfg := b.Config()
	cfg.URL = srv.URL()
	for _, shards := range []int{1, 8} {
		cfg.DeliveriesShards = shards
		if b, err := bus.Open(ctx, cfg, bustest.Logger(t), nil); !errors.Is(err, bus.ErrShardsChanged) {
			if err == nil {
				b.Close()
			}
			t.Errorf("Open with %d shards over 4: %v, want ErrShardsChanged", shards, err)
		}
		if b, err := bus.Attach(ctx, cfg, bustest.Logger(t)); !errors.Is(err, bus.ErrShardsChanged) {
			if err == nil {
				b.Close()
			}
			t.Errorf("Attach with %d shards over 4: %v, want ErrShardsChanged", shards, err)
		}
	}
	cfg.DeliveriesShards = 4
	a, err := bus.Attach(ctx, cfg, bustest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if e, err := a.Deliveries("in.1").Get(ctx, "in.1"); err != nil || string(e.Value()) != "x" {
		t.Errorf("record through a second connection: %v", err)
	}

	// A bucket made before shards, with its records: kept, and found.
	old := bustest.NewServer(t)
	nc, err := nats.Connect(old.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bus.DefaultDeliveriesBucket})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "in.1", []byte("old")); err != nil {
		t.Fatal(err)
	}
	ob := old.Bus(t, bustest.WithConfig(func(c *bus.Config) { c.DeliveriesShards = 1 }))
	if e, err := ob.Deliveries("in.1").Get(ctx, "in.1"); err != nil || string(e.Value()) != "old" {
		t.Errorf("record from before shards: %v", err)
	}
}
