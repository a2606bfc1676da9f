package sip

import (
	"bytes"
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
	var out bytes.Buffer
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
		out.Reset()
		e.writeResponse(&out, req, ans, "t")
		e.cache.Forget(key)
	}
}

// BenchmarkMessageUDP sends MESSAGEs over loopback UDP to a running edge
// (receiver without a bus), at most 256 unanswered, and counts the 202s.
func BenchmarkMessageUDP(b *testing.B) {
	recv := newMemReceiver()
	e := startEdge(b, testConfig(), recv)
	c, err := net.DialUDP("udp", nil, e.Addr("udp").(*net.UDPAddr))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	c.SetReadBuffer(4 << 20)
	// One datagram whose branch and imdn.Message-ID are rewritten in place
	// for each message, so every one is a new transaction and a new Ref.
	const slot = "000000000000"
	msg := []byte(request{local: c.LocalAddr(), branch: "z9hG4bK-" + slot, contentType: "message/cpim",
		body: cpimText("udp-"+slot, "Hello")}.String())
	var at []int
	for off := 0; ; {
		i := bytes.Index(msg[off:], []byte(slot))
		if i < 0 {
			break
		}
		at = append(at, off+i)
		off += i + len(slot)
	}
	window := make(chan struct{}, 256)
	done := make(chan int)
	go func() {
		buf := make([]byte, 4096)
		ok := 0
		for n := 0; n < b.N; n++ {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			m, err := c.Read(buf)
			if err != nil {
				break
			}
			if code, _ := status(string(buf[:m])); code == 202 {
				ok++
			}
			<-window
		}
		done <- ok
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		window <- struct{}{}
		for _, p := range at {
			n := i
			for d := p + len(slot) - 1; d >= p; d-- {
				msg[d] = byte('0' + n%10)
				n /= 10
			}
		}
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
	}
	if ok := <-done; ok != b.N {
		b.Fatalf("%d answers 202 to %d requests", ok, b.N)
	}
}
