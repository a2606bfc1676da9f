package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"
)

// The deliveries bucket is split into shards, each a KV bucket of its own:
// shard 0 is deliveries_bucket itself, shard i the bucket named
// deliveries_bucket-i. A key lives in the shard its hash picks, so every
// instance must run with the same deliveries_shards.
//
// Why: the NATS file store keeps an index entry per subject (per key) and
// writes the whole index out every two minutes while it holds the stream's
// lock. With a million records in one stream that write stalls every
// record write, and so every inbound message, for the better part of a
// second under load. Shards keep each stream's index, and each stall, a
// fraction of that, and the shards' writes fall at different times.

// shardsMeta names the stream metadata entry that records how many shards
// the deliveries records were written with.
const shardsMeta = "mimigw.deliveries_shards"

// deliveryShard is the shard index of key: its 32-bit FNV-1a hash modulo
// the shard count.
func deliveryShard(key string, shards int) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % uint32(shards))
}

// deliveryBucketName is the name of shard i of bucket.
func deliveryBucketName(bucket string, i int) string {
	if i == 0 {
		return bucket
	}
	return bucket + "-" + strconv.Itoa(i)
}

// Deliveries is the bucket of delivery state that holds key.
func (b *Bus) Deliveries(key string) jetstream.KeyValue {
	return b.deliveries[deliveryShard(key, len(b.deliveries))]
}

// recordSubject is the subject a record under key is written to.
func (b *Bus) recordSubject(key string) string {
	return "$KV." + b.Deliveries(key).Bucket() + "." + key
}

// ErrShardsChanged is returned by Open and Attach when the bus holds
// delivery records written with another deliveries_shards: records would
// be looked for in the wrong shard.
var ErrShardsChanged = errors.New("deliveries_shards differs from the bus")

// checkShards refuses to go on when shard 0 already exists with records
// written under another shard count. A bucket from before shards existed
// (no metadata) is taken as it is.
func (b *Bus) checkShards(ctx context.Context) error {
	st, err := b.js.Stream(ctx, "KV_"+b.cfg.DeliveriesBucket)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	have, ok := st.CachedInfo().Config.Metadata[shardsMeta]
	if ok && have != strconv.Itoa(b.cfg.DeliveriesShards) {
		return fmt.Errorf("bus: bucket %s: %w: configured %d, written with %s",
			b.cfg.DeliveriesBucket, ErrShardsChanged, b.cfg.DeliveriesShards, have)
	}
	return nil
}

// provisionDeliveries creates or updates every shard, bounded together by
// deliveries_max_records.
func (b *Bus) provisionDeliveries(ctx context.Context) error {
	if err := b.retry(ctx, "check "+b.cfg.DeliveriesBucket, b.checkShards); err != nil {
		return err
	}
	n := b.cfg.DeliveriesShards
	b.deliveries = make([]jetstream.KeyValue, n)
	for i := range n {
		bound := shardBound(b.cfg.DeliveriesMaxRecords, n, i)
		name := deliveryBucketName(b.cfg.DeliveriesBucket, i)
		cfg := jetstream.KeyValueConfig{Bucket: name,
			Description: fmt.Sprintf("per-message delivery state and network message ID maps, shard %d of %d", i, n),
			TTL:         b.cfg.DeliveriesTTL, Storage: jetstream.FileStorage, Replicas: b.cfg.Replicas,
			Metadata: map[string]string{shardsMeta: strconv.Itoa(n)}}
		if err := b.retry(ctx, "bucket "+name, func(ctx context.Context) error {
			kv, err := b.js.CreateOrUpdateKeyValue(ctx, cfg)
			b.deliveries[i] = kv
			return err
		}); err != nil {
			return fmt.Errorf("bus: bucket %s: %w", name, err)
		}
		if err := b.retry(ctx, "bound "+name, func(ctx context.Context) error { return b.boundDeliveries(ctx, name, bound) }); err != nil {
			return fmt.Errorf("bus: bucket %s: %w", name, err)
		}
	}
	return nil
}

// shardBound is shard i's part of max records over n shards; the parts
// add up to max.
func shardBound(max int64, n, i int) int64 {
	b := max / int64(n)
	if int64(i) < max%int64(n) {
		b++
	}
	return b
}

// boundDeliveries caps a shard by record count, dropping the oldest. KV
// buckets are made with DiscardNew, which would refuse new delivery state
// once full; here old state gives way instead. (Creating or updating the
// bucket resets the policy, so this runs after it every time.)
func (b *Bus) boundDeliveries(ctx context.Context, bucket string, max int64) error {
	st, err := b.js.Stream(ctx, "KV_"+bucket)
	if err != nil {
		return err
	}
	sc := st.CachedInfo().Config
	if sc.MaxMsgs == max && sc.Discard == jetstream.DiscardOld {
		return nil
	}
	sc.MaxMsgs, sc.Discard = max, jetstream.DiscardOld
	_, err = b.js.UpdateStream(ctx, sc)
	return err
}

// bindDeliveries finds every shard, changing nothing.
func (b *Bus) bindDeliveries(ctx context.Context) error {
	if err := b.retry(ctx, "check "+b.cfg.DeliveriesBucket, b.checkShards); err != nil {
		return err
	}
	b.deliveries = make([]jetstream.KeyValue, b.cfg.DeliveriesShards)
	for i := range b.deliveries {
		name := deliveryBucketName(b.cfg.DeliveriesBucket, i)
		if err := b.retry(ctx, "bucket "+name, func(ctx context.Context) error {
			kv, err := b.js.KeyValue(ctx, name)
			b.deliveries[i] = kv
			return err
		}); err != nil {
			return fmt.Errorf("bus: bucket %s: %w", name, err)
		}
	}
	return nil
}
