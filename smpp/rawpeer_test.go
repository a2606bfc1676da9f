package smpp

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"

	"github.com/mimigw/mimigw/smpp/wire"
)

// rawPeer is an SMSC scripted PDU by PDU, for tests that need an order of
// events no ordinary SMSC guarantees. It speaks real SMPP over a real
// socket.
type rawPeer struct {
	ln    net.Listener
	conns chan *rawConn
	// bindStatus answers every bind; binds counts them.
	bindStatus pdu.Status
	mu         sync.Mutex
	binds      int
}

type rawConn struct {
	t    testing.TB
	c    net.Conn
	r    *wire.Reader
	wmu  sync.Mutex
	mode pdu.ID
}

func startRawPeer(t testing.TB, bindStatus pdu.Status) (*rawPeer, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &rawPeer{ln: ln, conns: make(chan *rawConn, 16), bindStatus: bindStatus}
	var wg sync.WaitGroup
	var open []net.Conn
	var omu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			omu.Lock()
			open = append(open, c)
			omu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				rc := &rawConn{t: t, c: c, r: wire.NewReader(c, 0)}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				h, _, err := rc.r.Next()
				c.SetDeadline(time.Time{})
				if err != nil {
					c.Close()
					return
				}
				p.mu.Lock()
				p.binds++
				p.mu.Unlock()
				rc.mode = h.ID
				rc.write(respFrame(wire.ResponseID(h.ID), p.bindStatus, h.Seq, "raw"))
				if p.bindStatus != wire.StatusOK {
					c.Close()
					return
				}
				p.conns <- rc
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		omu.Lock()
		for _, c := range open {
			c.Close()
		}
		omu.Unlock()
		wg.Wait()
	})
	return p, ln.Addr().String()
}

func (p *rawPeer) bindCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.binds
}

// accept returns the next bound connection.
func (p *rawPeer) accept(t testing.TB) *rawConn {
	t.Helper()
	select {
	case c := <-p.conns:
		return c
	case <-time.After(20 * time.Second):
		t.Fatal("no bind")
		return nil
	}
}

func respFrame(id pdu.ID, st pdu.Status, seq uint32, field string) []byte {
	f, err := wire.AppendResponse(nil, id, st, seq, field)
	if err != nil {
		panic(err)
	}
	return f
}

func (c *rawConn) write(frame []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.c.Write(frame); err != nil {
		c.t.Errorf("raw peer write: %v", err)
	}
}

// next reads the next PDU, answering enquire_link on the way unless
// keepEnquire is set.
func (c *rawConn) next(t testing.TB) (wire.Header, []byte) {
	t.Helper()
	for {
		c.c.SetReadDeadline(time.Now().Add(20 * time.Second))
		h, body, err := c.r.Next()
		if err != nil {
			t.Fatalf("raw peer read: %v", err)
		}
		if h.ID == wire.EnquireLink {
			c.write(respFrame(wire.EnquireLinkResp, 0, h.Seq, ""))
			continue
		}
		return h, body
	}
}

// quiet reports whether nothing but enquire_link arrives for d.
func (c *rawConn) quiet(t testing.TB, d time.Duration) (wire.Header, bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		c.c.SetReadDeadline(deadline)
		h, _, err := c.r.Next()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return wire.Header{}, true
		}
		if err != nil {
			t.Fatalf("raw peer read: %v", err)
		}
		if h.ID == wire.EnquireLink {
			c.write(respFrame(wire.EnquireLinkResp, 0, h.Seq, ""))
			continue
		}
		return h, false
	}
}

// answerRest answers enquire_link and unbind until the connection closes,
// so the edge's shutdown need not wait for a response timeout.
func (c *rawConn) answerRest() {
	go func() {
		c.c.SetReadDeadline(time.Time{})
		for {
			h, _, err := c.r.Next()
			if err != nil {
				return
			}
			switch h.ID {
			case wire.EnquireLink:
				c.write(respFrame(wire.EnquireLinkResp, 0, h.Seq, ""))
			case wire.Unbind:
				c.write(respFrame(wire.UnbindResp, 0, h.Seq, ""))
				c.c.Close()
				return
			}
		}
	}()
}
