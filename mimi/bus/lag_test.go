package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/bus/bustest"
)

const (
	pendingSeries     = `mimigw_bus_consumer_pending{consumer="to_phone"}`
	ackPendingSeries  = `mimigw_bus_consumer_ack_pending{consumer="to_phone"}`
	redeliveredSeries = `mimigw_bus_consumer_redelivered{consumer="to_phone"}`
	fromMsgsSeries    = `mimigw_bus_stream_messages{stream="from_phone"}`
	fromBytesSeries   = `mimigw_bus_stream_bytes{stream="from_phone"}`
)

// Messages published for phones and not consumed show as pending on a
// scrape; a scrape within the cache interval asks the server nothing.
func TestConsumerBacklogMetrics(t *testing.T) {
	srv := bustest.NewServer(t)
	reg := prometheus.NewRegistry()
	b := srv.BusWithRegistry(t, reg)
	const n = 7
	for range n {
		if _, err := b.Publish(ctxT(t), bus.SubjectToPhone(phone), envelope(t), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	from := envelope(t)
	from.Channel = bus.ChannelSMS
	if _, err := b.Publish(ctxT(t), bus.SubjectFromPhone(phone), from, []byte("reply")); err != nil {
		t.Fatal(err)
	}
	// The server counts a consumer's pending messages a moment after it
	// stored them: scrape, reading each time, until it has all seven,
	// then keep that read.
	bus.SetLagTiming(b, 0, time.Second)
	got := gather(t, reg)
	for deadline := time.Now().Add(10 * time.Second); got[pendingSeries] != n && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		got = gather(t, reg)
	}
	bus.SetLagTiming(b, time.Hour, time.Second)
	for series, want := range map[string]float64{pendingSeries: n, ackPendingSeries: 0, redeliveredSeries: 0, fromMsgsSeries: 1} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
	if got[fromBytesSeries] == 0 {
		t.Errorf("%s = 0", fromBytesSeries)
	}

	// Within the cache interval the same values come back without a read.
	release, reads := make(chan struct{}), make(chan struct{}, 10)
	close(release)
	bus.StallLagReads(b, release, reads)
	if _, err := b.Publish(ctxT(t), bus.SubjectToPhone(phone), envelope(t), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if v := gather(t, reg)[pendingSeries]; v != n || len(reads) != 0 {
		t.Errorf("second scrape at once: pending %v, %d reads; want %d from the cache and no read", v, len(reads), n)
	}

	// A consumer holding a message unsettled shows it as ack pending.
	bus.SetLagTiming(b, 0, time.Second)
	held := make(chan struct{}, 1) // buffered: the handler may run before the test waits
	hold := make(chan struct{})
	consumeInBackground(t, b, 1, func(ctx context.Context, d *bus.Delivery) {
		select {
		case held <- struct{}{}:
		default:
		}
		<-hold
		_ = d.Ack(ctx)
	})
	t.Cleanup(func() { close(hold) }) // before the consumer's cleanup stops it
	receive(t, held, "a delivery")
	deadline := time.Now().Add(waitFor)
	// The consumer may also have fetched the next message for its free
	// worker slot: every one of the n+1 messages is pending or ack pending,
	// and the held one is among the latter.
	for {
		got := gather(t, reg)
		if got[ackPendingSeries] >= 1 && got[pendingSeries]+got[ackPendingSeries] == n+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pending %v, ack pending %v; want at least 1 ack pending and %d in all", got[pendingSeries], got[ackPendingSeries], n+1)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A server that does not answer holds a scrape up for at most a second,
// and a server that is gone not at all; neither leaves stale values.
func TestConsumerBacklogScrapeBounded(t *testing.T) {
	srv := bustest.NewServer(t)
	reg := prometheus.NewRegistry()
	b := srv.BusWithRegistry(t, reg)
	release, reads := make(chan struct{}), make(chan struct{}, 10)
	bus.StallLagReads(b, release, reads)
	start := time.Now()
	got := gather(t, reg)
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("scrape with a read hanging took %s", d)
	}
	if _, ok := got[pendingSeries]; ok {
		t.Errorf("%s present before any read finished", pendingSeries)
	}
	if len(reads) != 1 {
		t.Fatalf("%d reads started, want 1", len(reads))
	}
	// A second scrape while the read hangs starts no other read.
	gather(t, reg)
	if len(reads) != 1 {
		t.Errorf("%d reads started while one hangs, want 1", len(reads))
	}
	close(release)
	bus.SetLagTiming(b, 0, 5*time.Second)
	if v, ok := gather(t, reg)[pendingSeries]; !ok || v != 0 {
		t.Errorf("after the read: %s = %v (present %v), want 0", pendingSeries, v, ok)
	}

	// Once the connection is known lost, a scrape asks nothing.
	bus.SetLagTiming(b, 0, time.Second)
	srv.Stop()
	deadline := time.Now().Add(waitFor)
	for b.Conn().IsConnected() {
		if time.Now().After(deadline) {
			t.Fatal("the connection still looks up after the server stopped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	start = time.Now()
	got = gather(t, reg)
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("scrape with the server gone took %s", d)
	}
	if _, ok := got[pendingSeries]; ok {
		t.Errorf("%s still shown with the server gone", pendingSeries)
	}
	if got[`mimigw_bus_connected`] != 0 {
		t.Errorf("mimigw_bus_connected = %v with the server gone", got[`mimigw_bus_connected`])
	}
}
