package sip

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mimigw/mimigw/mimi/bus/bustest"
	"github.com/mimigw/mimigw/sip/msrp"
	"github.com/mimigw/mimigw/sip/sdp"
)

// A pager-mode MESSAGE larger than the bus can store, within max_body, is
// refused 413 by the gateway behind the edge, never 503 (a phone would
// retry it forever), and nothing reaches the bus; one just under the
// bus's limit is stored. The connection carries on.
func TestPagerLargerThanBus(t *testing.T) {
	g, b := durableGateway(t)
	cfg := testConfig()
	cfg.MaxBody = 4 << 20
	e := startEdge(t, cfg, g)
	c := dialRaw(t, "tcp", e.Addr("tcp"))
	limit := int(b.MaxPayload())
	message := func(id string, size int) string {
		return request{local: c.conn.LocalAddr(), transport: "TCP", contentType: "message/cpim",
			body: cpimText(id, strings.Repeat("a", size))}.String()
	}

	c.send(message("too-large-1", limit+1))
	if code, reason := status(c.answer()); code != 413 {
		t.Fatalf("MESSAGE of %d bytes of text: %d %s, want 413", limit+1, code, reason)
	}
	if n := bustest.FromPhoneCount(t, b); n != 0 {
		t.Fatalf("from-phone stream holds %d after the 413, want 0", n)
	}
	c.send(message("under-1", limit-64<<10))
	if code, reason := status(c.answer()); code != 202 {
		t.Fatalf("MESSAGE of %d bytes of text: %d %s, want 202", limit-64<<10, code, reason)
	}
	if n := bustest.FromPhoneCount(t, b); n != 1 {
		t.Errorf("from-phone stream holds %d, want 1", n)
	}
}

// A phone's session: the edge's SDP answer carries a=max-size of
// sessions.max_message_size; a message over it gets 413 at its first
// chunk (its Byte-Range total) and nothing reaches the bus, while the
// session carries on and takes one just under it.
func TestSessionMaxMessageSize(t *testing.T) {
	g, b := durableGateway(t)
	cfg := sessionConfig()
	e := startEdge(t, cfg, g)
	p := newSIPPhone(t, e)
	cl := p.open()
	m, err := cl.answer.MSRP(0)
	if err != nil {
		t.Fatalf("answer m=message: %v", err)
	}
	if m.MaxSize != DefaultMaxMessageSize {
		t.Errorf("answer a=max-size %d, want %d", m.MaxSize, DefaultMaxMessageSize)
	}
	s := p.connect(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	over := cpimText("over-1", strings.Repeat("o", DefaultMaxMessageSize))
	var se *msrp.StatusError
	if err := s.Send(ctx, sdp.TypeCPIM, []byte(over)); !errors.As(err, &se) || se.Code != 413 {
		t.Fatalf("Send of %d bytes: %v, want 413", len(over), err)
	}
	if n := bustest.FromPhoneCount(t, b); n != 0 {
		t.Fatalf("from-phone stream holds %d after the 413, want 0", n)
	}
	under := cpimText("under-1", "")
	under = cpimText("under-1", strings.Repeat("u", DefaultMaxMessageSize-len(under)-8))
	if err := s.Send(ctx, sdp.TypeCPIM, []byte(under)); err != nil {
		t.Fatalf("Send of %d bytes: %v", len(under), err)
	}
	if n := bustest.FromPhoneCount(t, b); n != 1 {
		t.Errorf("from-phone stream holds %d, want 1", n)
	}
	p.bye(cl)
}

// With sessions.max_message_size raised past what the bus takes, a message
// the session takes whole is still refused 413 once the gateway finds it
// too large for the bus, not 408 (try again); nothing reaches the bus.
func TestSessionLargerThanBus(t *testing.T) {
	g, b := durableGateway(t)
	cfg := sessionConfig()
	cfg.Sessions.MaxMessageSize = 4 << 20
	e := startEdge(t, cfg, g)
	p := newSIPPhone(t, e)
	cl := p.open()
	if m, err := cl.answer.MSRP(0); err != nil || m.MaxSize != 4<<20 {
		t.Fatalf("answer a=max-size: %v, %+v", err, m)
	}
	s := p.connect(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	body := cpimText("bus-over-1", strings.Repeat("b", int(b.MaxPayload())))
	var se *msrp.StatusError
	if err := s.Send(ctx, sdp.TypeCPIM, []byte(body)); !errors.As(err, &se) || se.Code != 413 {
		t.Fatalf("Send of %d bytes: %v, want 413", len(body), err)
	}
	if n := bustest.FromPhoneCount(t, b); n != 0 {
		t.Errorf("from-phone stream holds %d after the 413, want 0", n)
	}
	p.bye(cl)
}
