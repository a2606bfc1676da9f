package smpp

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/smpp/smsc"
	"github.com/mimigw/mimigw/smpp/wire"
)

// Throughput of one bind with a window of 100 against the simulator on
// loopback: BenchmarkSendSMS goes through the edge (SendSMS: protection,
// encoding, the session's window), BenchmarkBareSubmit is a bare client
// pipelining prebuilt submit_sm with the same window, the ceiling the
// simulator and loopback allow.
//
//	go test -run '^$' -bench 'SendSMS|BareSubmit' -benchtime 50000x ./smpp/

const benchWindow = 100

func benchSim(b *testing.B) string {
	_, addr := startSim(b, smsc.Config{Outcome: "none", LogSize: 1000})
	return addr
}

func BenchmarkSendSMS(b *testing.B) {
	addr := benchSim(b)
	sc := smscConfig("sim", addr)
	sc.Window = benchWindow
	e, _ := startEdge(b, Config{SMSCs: []SMSCConfig{sc}}, newMemReceiver())
	ctx := context.Background()
	var next atomic.Int64
	var failed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	// Enough senders to keep the window full.
	for range 2 * benchWindow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				_, err := e.SendSMS(ctx, gateway.OutboundSMS{ID: "b", From: "+15551230001", To: "+15551230002", Text: "benchmark message"})
				if err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d sends failed", f)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msg/s")
}

func BenchmarkBareSubmit(b *testing.B) {
	addr := benchSim(b)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	bind, _ := wire.AppendBind(nil, wire.BindTransmitter, 1, wire.Bind{SystemID: "bare", Password: "pw", InterfaceVersion: 0x34})
	if _, err := conn.Write(bind); err != nil {
		b.Fatal(err)
	}
	r := wire.NewReader(conn, 0)
	if h, _, err := r.Next(); err != nil || h.Status != 0 {
		b.Fatalf("bind: %+v %v", h, err)
	}
	m := &wire.Message{SourceTON: 1, SourceNPI: 1, Source: "15551230001", DestTON: 1, DestNPI: 1, Dest: "15551230002", ShortMessage: []byte("benchmark message")}
	frame, _ := wire.AppendMessage(nil, wire.SubmitSM, 0, m)
	window := make(chan struct{}, benchWindow)
	done := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	go func() {
		for i := 0; i < b.N; i++ {
			h, _, err := r.Next()
			if err != nil {
				done <- err
				return
			}
			if h.ID != wire.SubmitSMResp || h.Status != 0 {
				done <- fmt.Errorf("answer %s status %#x", h.ID, uint32(h.Status))
				return
			}
			<-window
		}
		done <- nil
	}()
	w := bufio.NewWriterSize(conn, 32<<10)
	buf := make([]byte, len(frame))
	for i := 0; i < b.N; i++ {
		select {
		case window <- struct{}{}:
		default:
			// The window is full: flush what is buffered, then wait.
			w.Flush()
			window <- struct{}{}
		}
		copy(buf, frame)
		seq := uint32(i + 2)
		buf[12], buf[13], buf[14], buf[15] = byte(seq>>24), byte(seq>>16), byte(seq>>8), byte(seq)
		w.Write(buf)
	}
	w.Flush()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msg/s")
}

// BenchmarkMODeliver: deliver_sm from the simulator through the edge
// (decode, address parsing, receiver, answer), ten in flight.
func BenchmarkMODeliver(b *testing.B) {
	sim, addr := startSim(b, smsc.Config{Outcome: "none", Window: 10})
	startEdge(b, Config{SMSCs: []SMSCConfig{smscConfig("sim", addr)}}, &discardReceiver{})
	m := &wire.Message{SourceTON: 1, SourceNPI: 1, Source: "15551230002", DestTON: 1, DestNPI: 1, Dest: "15551230001", ShortMessage: []byte("benchmark MO message")}
	batch := make([]*wire.Message, 10)
	for i := range batch {
		batch[i] = m
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for done := 0; done < b.N; done += len(batch) {
		st, err := sim.Deliver(ctx, "", batch[:min(len(batch), b.N-done)]...)
		if err != nil {
			b.Fatal(err)
		}
		if st[0] != wire.StatusOK {
			b.Fatalf("answer %#x", uint32(st[0]))
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
}

// discardReceiver takes every message and keeps nothing.
type discardReceiver struct{ memReceiver }

func (*discardReceiver) Receive(context.Context, gateway.Inbound) error { return nil }
