package sip

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/sip/msrp"
	"github.com/mimigw/mimigw/sip/msrp/relaytest"
	"github.com/mimigw/mimigw/sip/sdp"
)

// relayedPhone is a sipPhone whose MSRP goes through Kamailio's msrp relay
// (RFC 4976): it AUTHs, puts the Use-Path before its own URI in a=path,
// and sends over its AUTH connection; the relay opens the connection to
// the edge.
type relayedPhone struct {
	*sipPhone
	relay *msrp.Relay
}

func newRelayedPhone(t *testing.T, e *Edge) *relayedPhone {
	t.Helper()
	host, port, _ := net.SplitHostPort(relaytest.Start(t).Addr)
	n, _ := strconv.Atoi(port)
	p := newSIPPhone(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := p.pool.Auth(ctx, msrp.RelayConfig{URI: msrp.URI{Host: host, Port: n, Transport: "tcp"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return &relayedPhone{sipPhone: p, relay: r}
}

// offer is an offer whose a=path is the relay's Use-Path, then the phone.
func (p *relayedPhone) offer(mode sdp.Mode) *sdp.Session {
	p.t.Helper()
	local := msrp.URI{Host: "127.0.0.1", Port: 9, SessionID: msrp.NewSessionID(), Transport: "tcp"}
	o, err := sdp.Offer(sdp.OfferOptions{Mode: mode, Path: append(p.relay.UsePath(), local), Setup: sdp.SetupActive,
		AcceptTypes: []string{sdp.TypeCPIM}, AcceptWrappedTypes: []string{sdp.TypeText, sdp.TypeIMDN}})
	if err != nil {
		p.t.Fatal(err)
	}
	return o
}

// connect sets up the phone's MSRP session on the relay's connection,
// asking for Success-Reports: through a relay the 200 to a SEND is the
// relay's, and only the report says the edge took the message.
func (p *relayedPhone) connect(cl *call, reports func(*msrp.Frame)) *msrp.Session {
	p.t.Helper()
	neg, err := sdp.Negotiate(cl.offer, cl.answer, sdp.Offerer)
	if err != nil {
		p.t.Fatalf("Negotiate: %v", err)
	}
	cfg := neg.SessionConfig()
	cfg.Relay, cfg.SuccessReport, cfg.Reports = p.relay, msrp.ReportYes, reports
	s, err := p.pool.NewSession(cfg)
	if err != nil {
		p.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Connect(ctx); err != nil {
		p.t.Fatalf("MSRP Connect through the relay: %v", err)
	}
	return s
}

// successReports collects the Success-Reports a session gets, by
// Message-ID.
type successReports struct {
	mu  sync.Mutex
	ids map[string]int
}

func (r *successReports) add(f *msrp.Frame) {
	if f.Status == nil {
		return
	}
	r.mu.Lock()
	if r.ids == nil {
		r.ids = make(map[string]int)
	}
	r.ids[f.MessageID] = f.Status.Code
	r.mu.Unlock()
}

func (r *successReports) wait(t testing.TB, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		r.mu.Lock()
		got, ok := len(r.ids), true
		for _, code := range r.ids {
			ok = ok && code == 200
		}
		r.mu.Unlock()
		if got >= n && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d success reports (all 200: %v), want %d", got, ok, n)
		}
	}
}

// A phone behind Kamailio's msrp relay opens a chat session with the edge:
// the edge's answer keeps the phone's path (relay first), the relay opens
// the connection to listen.msrp, and a 20 KB text, ten short ones and an
// IMDN cross it intact, each reported back end to end once the receiver
// took it. Then a large message mode session through the same relay.
func TestSessionThroughKamailioRelay(t *testing.T) {
	recv := newMemReceiver()
	e := startEdge(t, sessionConfig(), recv)
	p := newRelayedPhone(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cl := &call{offer: p.offer(sdp.ModeChat)}
	p.invite(cl, cl.offer.String())
	a := p.final()
	if code, reason := status(a); code != 200 {
		t.Fatalf("INVITE answered %d %s", code, reason)
	}
	cl.to = headerValue(a, "To")
	_, body, _ := strings.Cut(a, "\r\n\r\n")
	var err error
	if cl.answer, err = sdp.Parse([]byte(body)); err != nil {
		t.Fatal(err)
	}
	if m, _ := cl.answer.MSRP(0); len(m.Path) != 1 || m.Setup != sdp.SetupPassive {
		t.Fatalf("answer a=path %v a=setup %q: want the edge's own URI, passive", m.Path, m.Setup)
	}
	p.c.send(request{method: "ACK", transport: "TCP", local: p.c.conn.LocalAddr(), callID: cl.callID, to: cl.to}.String())
	var reports successReports
	s := p.connect(cl, reports.add)

	big := strings.Repeat("0123456789", 2000)
	if err := s.Send(ctx, sdp.TypeCPIM, []byte(cpimText("relay-big", big))); err != nil {
		t.Fatalf("Send 20 KB: %v", err)
	}
	for i := range 10 {
		if err := s.Send(ctx, sdp.TypeCPIM, []byte(cpimText(fmt.Sprintf("relay-%d", i), fmt.Sprintf("text %d", i)))); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	imdn := imdnBody(`<imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>orig-relay</message-id><datetime>2026-08-08T06:41:00Z</datetime><delivery-notification><status><delivered/></status></delivery-notification></imdn>`)
	if err := s.Send(ctx, sdp.TypeCPIM, []byte(imdn)); err != nil {
		t.Fatalf("Send IMDN: %v", err)
	}
	reports.wait(t, 12)
	in, rc, _ := recv.snapshot()
	if len(in) != 11 {
		t.Fatalf("receiver got %d messages, want 11", len(in))
	}
	if in[0].Ref != "relay-big" || len(in[0].Parts) != 1 || in[0].Parts[0].Text != big {
		t.Errorf("first message %s does not carry the 20 KB text", in[0].Ref)
	}
	for i, m := range in[1:] {
		if want := fmt.Sprintf("relay-%d", i); m.Ref != want || m.Parts[0].Text != fmt.Sprintf("text %d", i) {
			t.Errorf("message %d: %s %q, want %s", i+1, m.Ref, m.Parts[0].Text, want)
		}
	}
	if len(rc) != 1 || rc[0].Ref != "orig-relay" || rc[0].Status != gateway.StatusDelivered {
		t.Errorf("receipts %+v, want orig-relay delivered", rc)
	}
	p.bye(cl)

	// Large message mode through the same relay.
	lm := &call{offer: p.offer(sdp.ModeLargeMessage)}
	p.invite(lm, lm.offer.String(), `Accept-Contact: *;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.largemsg"`)
	a = p.final()
	if code, reason := status(a); code != 200 {
		t.Fatalf("large message INVITE answered %d %s", code, reason)
	}
	lm.to = headerValue(a, "To")
	_, body, _ = strings.Cut(a, "\r\n\r\n")
	if lm.answer, err = sdp.Parse([]byte(body)); err != nil {
		t.Fatal(err)
	}
	p.c.send(request{method: "ACK", transport: "TCP", local: p.c.conn.LocalAddr(), callID: lm.callID, to: lm.to}.String())
	var lmReports successReports
	ls := p.connect(lm, lmReports.add)
	large := strings.Repeat("z", 20000)
	if err := ls.Send(ctx, sdp.TypeCPIM, []byte(cpimText("relay-large", large))); err != nil {
		t.Fatalf("Send large: %v", err)
	}
	lmReports.wait(t, 1)
	if in, _, _ := recv.snapshot(); len(in) != 12 || in[11].Ref != "relay-large" || in[11].Parts[0].Text != large {
		t.Fatalf("receiver got %d messages, the last not the 20 KB large message", len(in))
	}
	p.bye(lm)
}
