package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/gateway/identity"
	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/bus/bustest"
	"github.com/mimigw/mimigw/mimi/content"
	"github.com/mimigw/mimigw/mimi/uri"
	"github.com/mimigw/mimigw/smpp"
	"github.com/mimigw/mimigw/smpp/smsc"
)

// BenchmarkMIMIToSMS measures the whole outbound path: b.N MIMI messages
// waiting on mimi.to.tel, the gateway takes each, submits it over one SMPP
// bind with window 100 to the SMSC simulator on loopback, records its
// delivery state and acks it. The clock runs from the gateway's start to
// the last submit_sm. Run with a fixed count, e.g.
//
//	go test -run XXX -bench MIMIToSMS -benchtime 20000x ./cmd/mimigw
func BenchmarkMIMIToSMS(b *testing.B) {
	for _, receipts := range []bool{false, true} {
		b.Run(fmt.Sprintf("receipts=%v", receipts), func(b *testing.B) { benchMIMIToSMS(b, receipts) })
	}
}

func benchMIMIToSMS(b *testing.B, receipts bool) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := bustest.NewServer(b)
	bs := srv.Bus(b, bustest.WithConfig(func(c *bus.Config) { c.MaxAckPending = 4096 }))

	outcome := "none"
	if receipts {
		outcome = "DELIVRD"
	}
	sim, err := smsc.New(smsc.Config{Name: "sim", Accounts: []smsc.Account{{SystemID: "bench", Password: "bench"}},
		Window: 200, Outcome: outcome, ReceiptDelay: time.Millisecond, LogSize: 16}, quiet)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Go(func() { _ = sim.Serve(ctx, ln) })

	ids, err := identity.New(bs.Identity(), identity.Config{Domain: "gw.example.net", Pools: []string{"+15559990000-+15559990999"}})
	if err != nil {
		b.Fatal(err)
	}
	gcfg := gateway.DefaultConfig()
	gcfg.Channel = gateway.ChannelSMS
	gcfg.Workers = 512
	reg := prometheus.NewRegistry()
	g, err := gateway.New(ctx, gcfg, bs, ids, quiet, reg)
	if err != nil {
		b.Fatal(err)
	}
	edge, err := smpp.NewEdge(smpp.Config{SMSCs: []smpp.SMSCConfig{{
		Name: "sim", Address: ln.Addr().String(), SystemID: "bench", Password: "bench", Window: 100, Binds: 1,
	}}}, g, quiet, reg)
	if err != nil {
		b.Fatal(err)
	}
	g.UseSMS(edge)
	wg.Go(func() { _ = edge.Run(ctx) })
	if err := sim.WaitBound(ctx, 1); err != nil {
		b.Fatal(err)
	}

	// The messages wait on the bus before the gateway starts: a few
	// senders, several phones.
	sender := "mimi://desk.example/u/alice"
	publish := func(i int) {
		n := uri.Number(fmt.Sprintf("+1555123%04d", i%100))
		room := identity.DMRoom("gw.example.net", sender, uri.UserURI("gw.example.net", n))
		m := content.NewText(sender, room, fmt.Sprintf("benchmark message %d", i), content.NewSalt())
		data, err := m.Encode()
		if err != nil {
			b.Error(err)
			return
		}
		id := content.ComputeID(sender, room, data, m.Salt)
		env := bus.Envelope{ID: id.String(), Sender: sender, Recipient: n.TelURI(), Room: room, Channel: "sms", Accepted: time.Now()}
		if _, err := bs.Publish(ctx, bus.SubjectToPhone(n), env, data); err != nil {
			b.Error(err)
		}
	}
	var pub sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 32; w++ {
		pub.Go(func() {
			for i := range next {
				publish(i)
			}
		})
	}
	for i := 0; i < b.N; i++ {
		next <- i
	}
	close(next)
	pub.Wait()
	// Lend every number up front, as a running gateway would have.
	for i := 0; i < 100 && i < b.N; i++ {
		if _, err := ids.Lend(ctx, sender, uri.Number(fmt.Sprintf("+1555123%04d", i))); err != nil {
			b.Fatal(err)
		}
	}

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	wg.Go(func() { _ = g.Run(ctx) })
	for sim.ReceivedCount() < uint64(b.N) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}
