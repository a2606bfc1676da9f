package bus_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/bus/bustest"
)

// A MIMI text message of typical size.
var benchBody = make([]byte, 300)

func benchEnvelopes(b *testing.B, n int) []bus.Envelope {
	envs := make([]bus.Envelope, n)
	for i := range envs {
		envs[i] = envelope(b)
	}
	return envs
}

// BenchmarkPublish publishes one message at a time and waits for the
// JetStream ack (file store), as the gateway does for each inbound message.
func BenchmarkPublish(b *testing.B) {
	bs := bustest.New(b)
	envs := benchEnvelopes(b, b.N)
	subject := bus.SubjectToPhone(phone)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if _, err := bs.Publish(ctx, subject, envs[i], benchBody); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkPublishParallel publishes from 64 goroutines at once, as
// concurrent SIP transactions do; each still waits for its own ack.
func BenchmarkPublishParallel(b *testing.B) {
	bs := bustest.New(b)
	envs := benchEnvelopes(b, b.N)
	subject := bus.SubjectToPhone(phone)
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(32) // x GOMAXPROCS goroutines
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			i := next.Add(1) - 1
			if _, err := bs.Publish(ctx, subject, envs[i], benchBody); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkConsumeAck measures the to-phone consumer: messages already
// in the stream are handed to 64 workers, each acked with a confirmed
// (double) ack.
func BenchmarkConsumeAck(b *testing.B) {
	bs := bustest.New(b, bustest.WithConfig(func(c *bus.Config) { c.MaxAckPending = 10000 }))
	js := bs.JetStream()
	subject := bus.SubjectToPhone(phone)
	// Fill the stream with asynchronous publishes: the setup is not
	// what is measured.
	for i := range b.N {
		env := envelope(b)
		msg := natsMsg(subject, env, benchBody)
		if _, err := js.PublishMsgAsync(msg); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			<-js.PublishAsyncComplete()
		}
	}
	<-js.PublishAsyncComplete()

	var done sync.WaitGroup
	done.Add(b.N)
	var handled atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	res := make(chan error, 1)
	go func() {
		res <- bs.ConsumeToPhone(ctx, 64, func(hctx context.Context, d *bus.Delivery) {
			if err := d.Ack(hctx); err != nil {
				b.Error(err)
			}
			if handled.Add(1) <= int64(b.N) {
				done.Done()
			}
		})
	}()
	done.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	b.StopTimer()
	cancel()
	if err := <-res; err != nil {
		b.Fatal(err)
	}
}

func natsMsg(subject string, env bus.Envelope, data []byte) *nats.Msg {
	return &nats.Msg{Subject: subject, Header: env.Header(subject), Data: data}
}

// openEmbedded opens a Bus on the server it embeds (Open with no URL), as
// `mimigw serve --dev` runs, until the benchmark ends.
func openEmbedded(b *testing.B) *bus.Bus {
	cfg := bus.DefaultConfig()
	cfg.Embedded = bus.EmbeddedConfig{Listen: "127.0.0.1:-1", DataDir: b.TempDir()}
	bs, err := bus.Open(context.Background(), cfg, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(bs.Close)
	return bs
}

// BenchmarkPublishEmbedded is BenchmarkPublish against the server the Bus
// embeds (Open with no URL), as `mimigw serve --dev` runs.
func BenchmarkPublishEmbedded(b *testing.B) {
	bs := openEmbedded(b)
	envs := benchEnvelopes(b, b.N)
	subject := bus.SubjectToPhone(phone)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if _, err := bs.Publish(ctx, subject, envs[i], benchBody); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkPublishWithRecordEmbedded is the storage an inbound RCS message
// costs and nothing else: its MIMI message and its delivery record written
// together to the server the Bus embeds (file store, in-process
// connection), from 64 goroutines at once. Run on all cores with no SIP
// and no load generator beside it, it bounds how fast any inbound path
// that answers only once both are stored can go on this machine.
func BenchmarkPublishWithRecordEmbedded(b *testing.B) {
	bs := openEmbedded(b)
	envs := benchEnvelopes(b, b.N)
	for i := range envs {
		envs[i].Sender, envs[i].Recipient, envs[i].Channel = "tel:+15551230002", "mimi://a.example/u/alice", bus.ChannelRCS
	}
	subject := bus.SubjectFromPhone(phone)
	record := make([]byte, 120) // about what the gateway keeps to answer with IMDNs
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(32) // x GOMAXPROCS goroutines
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			env := envs[next.Add(1)-1]
			if _, err := bs.PublishWithRecord(ctx, subject, env, benchBody, "in."+env.ID, record); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
