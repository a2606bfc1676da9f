package msrp

import (
	"context"
	"testing"
	"time"
)

// repeatReader reads b over and over.
type repeatReader struct {
	b   []byte
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.b[r.off:])
		n += c
		r.off = (r.off + c) % len(r.b)
	}
	return n, nil
}

func benchFrame(b *testing.B) []byte {
	f := testSend(b, string(testBody(200)))
	f.TID = "a786hjs2"
	out, err := f.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	return out
}

func BenchmarkReader(b *testing.B) {
	in := benchFrame(b)
	r := NewReader(&repeatReader{b: in}, Limits{})
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		f, err := r.Next()
		if err != nil || len(f.Body) != 200 {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshal(b *testing.B) {
	f := testSend(b, string(testBody(200)))
	f.TID = "a786hjs2"
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = f.AppendTo(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConnSend: 200-byte messages from an active client to a
// passive gateway over loopback TCP, each Send waiting for its 200 (the
// Handler returns at once), one after the other on one session.
func BenchmarkConnSend(b *testing.B) {
	gw, cl := newPeer(b, true, false), newPeer(b, false, false)
	p := newPair(b, gw, cl, func(g, c *SessionConfig) {
		g.Handler = func(context.Context, *Message) error { return nil }
	})
	ctx := context.Background()
	if err := p.cl.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	body := testBody(200)
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		if err := p.cl.Send(ctx, "message/cpim", body); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkConnSendParallel: the same with four senders on four sessions
// sharing the connection.
func BenchmarkConnSendParallel(b *testing.B) {
	gw, cl := newPeer(b, true, false), newPeer(b, false, false)
	var sessions []*Session
	for range 4 {
		p := newPair(b, gw, cl, func(g, c *SessionConfig) {
			g.Handler = func(context.Context, *Message) error { return nil }
		})
		if err := p.cl.Connect(context.Background()); err != nil {
			b.Fatal(err)
		}
		sessions = append(sessions, p.cl)
	}
	body := testBody(200)
	next := make(chan *Session, len(sessions))
	for _, s := range sessions {
		next <- s
	}
	b.ReportAllocs()
	b.SetParallelism(1) // GOMAXPROCS goroutines; there are 2 cores here
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		s := <-next
		for pb.Next() {
			if err := s.Send(context.Background(), "message/cpim", body); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
