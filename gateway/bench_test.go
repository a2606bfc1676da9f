package gateway

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mimigw/mimigw/mimi/bus/bustest"
	"github.com/mimigw/mimigw/mimi/uri"
)

// BenchmarkReceive is the inbound path of an RCS pager-mode message once
// the edge has parsed it: a MIMI message and the record for its IMDNs
// written to JetStream (file store), from 64 goroutines at once as
// concurrent SIP transactions do.
func BenchmarkReceive(b *testing.B) {
	bs := bustest.New(b)
	g, err := New(context.Background(), testConfig(), bs, mustIdentity(b, bs), bustest.Logger(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	g.UseSMS(newSMSEdge()) // Run needs an edge to deliver by; nothing is sent
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	in := func(i int64) Inbound {
		return Inbound{Channel: ChannelRCS, From: uri.Number("+1555" + strconv.Itoa(int(1000000+i%1000))), To: phone,
			Ref: "bench" + strconv.FormatInt(i, 10), Parts: []Part{{Text: "load test message of a typical length"}},
			Notify: Notifications{Delivery: true, Display: true}, ConversationID: "conv-bench"}
	}
	// Once the identity cache watches its bucket, each sender's first
	// message fills it, as in a gateway that has been running a while.
	for i := int64(-1); g.idCache.Len() == 0; i-- {
		select {
		case err := <-done:
			b.Fatal("gateway stopped:", err)
		default:
		}
		if err := g.Receive(ctx, in(i)); err != nil {
			b.Fatal(err)
		}
	}
	for i := int64(-1000); i < 0; i++ {
		if err := g.Receive(ctx, in(i)); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(32) // x GOMAXPROCS goroutines
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := g.Receive(ctx, in(next.Add(1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
