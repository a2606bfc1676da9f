package sip

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mimigw/mimigw/sip/msrp"
	"github.com/mimigw/mimigw/sip/rcssim"
	"github.com/mimigw/mimigw/sip/sdp"
)

// answeredSessions is the number of sessions the edge holds past their 200.
func answeredSessions(e *Edge) int {
	n := 0
	e.answered.Range(func(_, _ any) bool { n++; return true })
	return n
}

// servePhoneMSRP has the phone's pool take MSRP connections on a listener
// of its own until the test ends, for sessions in which the phone is
// passive; it returns the listener's address.
func (p *sipPhone) servePhoneMSRP(t *testing.T) *net.TCPAddr {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.pool.Serve(ctx, l); close(done) }()
	t.Cleanup(func() {
		cancel()
		l.Close()
		<-done
	})
	return l.Addr().(*net.TCPAddr)
}

// openPassive sends an INVITE offering a=setup:passive with the phone's
// a=path on port, checks that the 200 answers a=setup:active, sets up the
// phone's MSRP session (passive: it waits for the edge's binding SEND) and
// only then ACKs, since the edge connects once the 200 is ACKed.
func (p *sipPhone) openPassive(port int) (*call, *msrp.Session) {
	p.t.Helper()
	local := msrp.URI{Host: "127.0.0.1", Port: port, SessionID: msrp.NewSessionID(), Transport: "tcp"}
	offer, err := sdp.Offer(sdp.OfferOptions{Path: []msrp.URI{local}, Setup: sdp.SetupPassive,
		AcceptTypes: []string{sdp.TypeCPIM}, AcceptWrappedTypes: []string{sdp.TypeText, sdp.TypeIMDN}})
	if err != nil {
		p.t.Fatal(err)
	}
	cl := &call{offer: offer}
	p.invite(cl, offer.String())
	a := p.final()
	if code, reason := status(a); code != 200 {
		p.t.Fatalf("INVITE answered %d %s, want 200", code, reason)
	}
	cl.to = headerValue(a, "To")
	_, body, _ := strings.Cut(a, "\r\n\r\n")
	if cl.answer, err = sdp.Parse([]byte(body)); err != nil {
		p.t.Fatalf("200 SDP: %v\n%s", err, body)
	}
	if m, err := cl.answer.MSRP(0); err != nil || m.Setup != sdp.SetupActive {
		p.t.Fatalf("answer a=setup %q (%v), want active to an offer of passive", m.Setup, err)
	}
	neg, err := sdp.Negotiate(offer, cl.answer, sdp.Offerer)
	if err != nil {
		p.t.Fatalf("Negotiate: %v", err)
	}
	if neg.Active {
		p.t.Fatal("the phone is the active side")
	}
	s, err := p.pool.NewSession(neg.SessionConfig())
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { s.Close() })
	p.c.send(request{method: "ACK", transport: "TCP", local: p.c.conn.LocalAddr(), callID: cl.callID, to: cl.to}.String())
	return cl, s
}

// A phone that offers a=setup:passive gets a=setup:active, and the edge
// connects to the phone's a=path once the 200 is ACKed: its binding SEND
// binds the session the phone waits on (the bind timeout, an hour here,
// is not what ends the wait), a message from the phone reaches the
// receiver, and the phone's BYE ends the session.
func TestSessionPhonePassive(t *testing.T) {
	recv := newMemReceiver()
	e := startEdge(t, sessionConfig(), recv)
	e.mu.Lock()
	e.bindTimeout = time.Hour
	e.mu.Unlock()
	p := newSIPPhone(t, e)
	addr := p.servePhoneMSRP(t)
	cl, s := p.openPassive(addr.Port)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Connect(ctx); err != nil {
		t.Fatalf("the edge did not bind the phone's session: %v", err)
	}
	if err := s.Send(ctx, sdp.TypeCPIM, []byte(cpimText("passive-1", "the edge connected"))); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if in, _, _ := recv.snapshot(); len(in) != 1 || in[0].Ref != "passive-1" || in[0].Parts[0].Text != "the edge connected" {
		t.Fatalf("received %+v, want the message", in)
	}
	p.bye(cl)
	waitExactly(t, "sessions past their 200", 0, func() int { return answeredSessions(e) })
}

// A phone that offers a=setup:passive with an a=path nobody listens on
// gets the edge's BYE as soon as the edge's connection is refused, not
// when the bind timeout (an hour here) runs out.
func TestSessionPhonePassiveUnreachable(t *testing.T) {
	e := startEdge(t, sessionConfig(), newMemReceiver())
	e.mu.Lock()
	e.bindTimeout = time.Hour
	e.mu.Unlock()
	p := newSIPPhone(t, e)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	cl, _ := p.openPassive(port)
	p.answerBye(cl)
	waitExactly(t, "sessions past their 200", 0, func() int { return answeredSessions(e) })
}

// The RCS simulator with setup: passive offers a=setup:passive in the
// chat sessions its phones open: the edge connects to it, and the
// simulator's message is taken (Send returns once the 200 of its last
// chunk came back).
func TestSessionFromPassiveSimulator(t *testing.T) {
	recv := newMemReceiver()
	e := startEdge(t, sessionConfig(), recv)
	e.mu.Lock()
	e.bindTimeout = time.Hour
	e.mu.Unlock()
	sim, err := rcssim.New(rcssim.Config{Numbers: []string{"+15551230001"}, Listen: "127.0.0.1:0", MSRP: "127.0.0.1:0",
		Gateway: "sip:" + e.Addr("tcp").String() + ";transport=tcp", Setup: "passive"}, e.log)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sim.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("simulator: %v", err)
		}
	})
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	if _, err := sim.Send(sctx, rcssim.Outgoing{From: "+15551230001", To: "+15551230002", Text: "from a passive phone", Mode: rcssim.ModeChat}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	in, _, _ := recv.snapshot()
	if len(in) != 1 || in[0].Parts[0].Text != "from a passive phone" {
		t.Fatalf("received %+v, want the simulator's message", in)
	}
}
