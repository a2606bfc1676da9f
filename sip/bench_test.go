package sip

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkServeMessage is the edge's work for one pager-mode MESSAGE
// datagram, without sockets: parse, transaction key, cache, trust, CPIM,
// the call into the receiver (which takes it at once), the answer.
func BenchmarkServeMessage(b *testing.B) {
	e, err := NewEdge(testConfig(), newMemReceiver(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		b.Fatal(err)
	}
	p := peer{addr: netip.MustParseAddrPort("127.0.0.1:40000"), transport: "UDP"}
	msgs := make([][]byte, 1024)
	for i := range msgs {
		msgs[i] = []byte(request{local: netAddr(p.addr), contentType: "message/cpim", body: cpimText(fmt.Sprint("bench-", i), "Hello")}.String())
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req, err := e.parseRequest(msgs[i%len(msgs)])
		if err != nil {
			b.Fatal(err)
		}
		req.SetTransport("UDP")
		req.SetSource(p.addr.String())
		key := transactionKey(req)
		e.cache.Begin(key)
		ans := e.serve(ctx, req, p)
		e.cache.Finish(key, ans)
		_ = e.response(req, ans, "t").String()
		e.cache.Forget(key)
	}
}

// BenchmarkMessageUDP sends MESSAGEs over loopback UDP to a running edge
// (receiver without a bus), up to 256 unanswered, and waits for every 202.
func BenchmarkMessageUDP(b *testing.B) {
	recv := newMemReceiver()
	e := startEdge(b, testConfig(), recv)
	c, err := net.DialUDP("udp", nil, e.Addr("udp").(*net.UDPAddr))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	c.SetReadBuffer(4 << 20)
	done := make(chan int)
	go func() {
		buf := make([]byte, 4096)
		n := 0
		for n < b.N {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Read(buf); err != nil {
				break
			}
			n++
		}
		done <- n
	}()
	window := make(chan struct{}, 256)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msg := request{local: c.LocalAddr(), contentType: "message/cpim", body: cpimText(fmt.Sprint("udp-", i), "Hello")}.String()
		select {
		case window <- struct{}{}:
		default:
			time.Sleep(time.Millisecond)
			for len(window) > 0 {
				<-window
			}
			window <- struct{}{}
		}
		if _, err := c.Write([]byte(msg)); err != nil {
			b.Fatal(err)
		}
	}
	if n := <-done; n != b.N {
		b.Fatalf("%d answers to %d requests", n, b.N)
	}
}
