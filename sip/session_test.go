package sip

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/sip/msrp"
	"github.com/mimigw/mimigw/sip/sdp"
	"github.com/mimigw/mimigw/sip/sipptest"
)

// sessionConfig is testConfig with an MSRP listener.
func sessionConfig() Config {
	c := testConfig()
	c.Listen.MSRP = "127.0.0.1:0"
	return c
}

// sipPhone is an RCS client over one SIP TCP connection that opens
// sessions toward the edge, and connects their MSRP side as the active
// party.
type sipPhone struct {
	t         testing.TB
	e         *Edge
	c         *rawClient
	transport string // TCP, or TLS when c is a TLS connection
	pool      *msrp.Pool
}

func newSIPPhone(t testing.TB, e *Edge) *sipPhone {
	pool, err := msrp.NewPool(msrp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	return &sipPhone{t: t, e: e, c: dialRaw(t, "tcp", e.Addr("tcp")), transport: "TCP", pool: pool}
}

// call is one INVITE dialog as the phone sees it.
type call struct {
	callID string
	branch string
	to     string // To of the 200, with the edge's tag
	offer  *sdp.Session
	answer *sdp.Session
}

func phoneOffer(t testing.TB) *sdp.Session {
	t.Helper()
	local := msrp.URI{Host: "127.0.0.1", Port: 9, SessionID: msrp.NewSessionID(), Transport: "tcp"}
	o, err := sdp.Offer(sdp.OfferOptions{Path: []msrp.URI{local}, Setup: sdp.SetupActive,
		AcceptTypes: []string{sdp.TypeCPIM, sdp.TypeIsComposing}, AcceptWrappedTypes: []string{sdp.TypeText, sdp.TypeIMDN}})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func (p *sipPhone) invite(cl *call, body string, extra ...string) {
	p.t.Helper()
	p.inviteAs(cl, sdp.ContentType, body, extra...)
}

// inviteAs is invite with the body's Content-Type given.
func (p *sipPhone) inviteAs(cl *call, contentType, body string, extra ...string) {
	p.t.Helper()
	if cl.callID == "" {
		cl.callID = newMessageID()
	}
	if cl.branch == "" {
		cl.branch = "z9hG4bK-" + newMessageID()
	}
	local := p.c.conn.LocalAddr().String()
	hdrs := append([]string{
		"Contact: <sip:+15551230001@" + local + ";transport=" + strings.ToLower(p.transport) + ">;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.session\"",
		"Accept-Contact: *;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.session\"",
		"Conversation-ID: conv-session-1",
		"Session-Expires: 1800",
	}, extra...)
	p.c.send(request{method: "INVITE", transport: p.transport, local: p.c.conn.LocalAddr(), callID: cl.callID, branch: cl.branch,
		contentType: contentType, body: body, extra: hdrs}.String())
}

// final reads answers until a final one.
func (p *sipPhone) final() string {
	p.t.Helper()
	for {
		a := p.c.answer()
		if code, _ := status(a); code >= 200 {
			return a
		}
	}
}

// open sends an INVITE with an MSRP offer, checks the 200 and ACKs it.
func (p *sipPhone) open(extra ...string) *call {
	p.t.Helper()
	return p.openWith(phoneOffer(p.t), extra...)
}

// openWith is open with the phone's offer given.
func (p *sipPhone) openWith(offer *sdp.Session, extra ...string) *call {
	p.t.Helper()
	cl := &call{offer: offer}
	p.invite(cl, cl.offer.String(), extra...)
	a := p.final()
	if code, reason := status(a); code != 200 {
		p.t.Fatalf("INVITE answered %d %s, want 200", code, reason)
	}
	if ct := headerValue(a, "Content-Type"); ct != sdp.ContentType {
		p.t.Fatalf("200 Content-Type %q", ct)
	}
	if headerValue(a, "Contact") == "" {
		p.t.Fatal("200 without Contact")
	}
	cl.to = headerValue(a, "To")
	if !strings.Contains(cl.to, "tag=") {
		p.t.Fatalf("200 To %q without tag", cl.to)
	}
	_, body, _ := strings.Cut(a, "\r\n\r\n")
	var err error
	if cl.answer, err = sdp.Parse([]byte(body)); err != nil {
		p.t.Fatalf("200 SDP: %v\n%s", err, body)
	}
	p.c.send(request{method: "ACK", transport: p.transport, local: p.c.conn.LocalAddr(), callID: cl.callID, to: cl.to}.String())
	return cl
}

// connect binds the MSRP side of a call.
func (p *sipPhone) connect(cl *call) *msrp.Session {
	p.t.Helper()
	return p.connectWith(cl, nil)
}

// connectWith binds the MSRP side of a call whose messages from the edge
// go to h.
func (p *sipPhone) connectWith(cl *call, h msrp.Handler) *msrp.Session {
	p.t.Helper()
	neg, err := sdp.Negotiate(cl.offer, cl.answer, sdp.Offerer)
	if err != nil {
		p.t.Fatalf("Negotiate: %v", err)
	}
	if !neg.Active {
		p.t.Fatal("the phone is not the active side")
	}
	cfg := neg.SessionConfig()
	cfg.Handler = h
	s, err := p.pool.NewSession(cfg)
	if err != nil {
		p.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Connect(ctx); err != nil {
		p.t.Fatalf("MSRP Connect: %v", err)
	}
	return s
}

func (p *sipPhone) bye(cl *call) {
	p.t.Helper()
	p.c.send(request{method: "BYE", transport: p.transport, local: p.c.conn.LocalAddr(), callID: cl.callID, to: cl.to}.String())
	if code, reason := status(p.final()); code != 200 {
		p.t.Fatalf("BYE answered %d %s", code, reason)
	}
}

// answerBye reads the edge's BYE of a call and answers it 200.
func (p *sipPhone) answerBye(cl *call) {
	p.t.Helper()
	bye := p.c.answer()
	if !strings.HasPrefix(bye, "BYE ") || headerValue(bye, "Call-ID") != cl.callID {
		p.t.Fatalf("got %q, want the session's BYE", bye)
	}
	res := "SIP/2.0 200 OK\r\n"
	for _, h := range []string{"Via", "From", "To", "Call-ID", "CSeq"} {
		res += h + ": " + headerValue(bye, h) + "\r\n"
	}
	p.c.send(res + "Content-Length: 0\r\n\r\n")
}

// A phone opens a chat session: the 200's SDP answers with the edge's MSRP
// path, passive, CPIM with text, IMDN and FT-HTTP inside; a 20 KB text in
// chunks and ten short ones reach the receiver once each, the last chunk's
// 200 only after Receive returned; BYE ends the session.
func TestSessionInbound(t *testing.T) {
	recv := newMemReceiver()
	e := startEdge(t, sessionConfig(), recv)
	p := newSIPPhone(t, e)
	cl := p.open()

	m, err := cl.answer.MSRP(0)
	if err != nil {
		t.Fatalf("answer m=message: %v", err)
	}
	maddr := e.Addr("msrp").(*net.TCPAddr)
	if l := m.Local(); l.Host != "127.0.0.1" || l.Port != maddr.Port || l.SessionID == "" || l.Transport != "tcp" {
		t.Errorf("answer a=path %v, want msrp://127.0.0.1:%d/<id>;tcp", m.Path, maddr.Port)
	}
	if m.Setup != sdp.SetupPassive {
		t.Errorf("answer a=setup %q, want passive", m.Setup)
	}
	if fmt.Sprint(m.AcceptTypes) != "[message/cpim]" {
		t.Errorf("accept-types %v", m.AcceptTypes)
	}
	if fmt.Sprint(m.AcceptWrappedTypes) != "[text/plain message/imdn+xml]" { // ours intersected with the phone's
		t.Errorf("accept-wrapped-types %v", m.AcceptWrappedTypes)
	}

	s := p.connect(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// A refresh by UPDATE without a body is answered 200.
	p.c.send(request{method: "UPDATE", transport: "TCP", local: p.c.conn.LocalAddr(), callID: cl.callID, to: cl.to}.String())
	if code, reason := status(p.final()); code != 200 {
		t.Errorf("UPDATE answered %d %s, want 200", code, reason)
	}

	// (a) 20 KB, in three chunks, Receive held until the test lets go.
	big := strings.Repeat("0123456789", 2000)
	block := make(chan struct{})
	recv.set(func(r *testReceiver) { r.block = block })
	sent := make(chan error, 1)
	go func() { sent <- s.Send(ctx, sdp.TypeCPIM, []byte(cpimText("big-1", big))) }()
	recv.waitInbound(t, 1)
	select {
	case err := <-sent:
		t.Fatalf("Send returned (%v) while Receive was still blocked", err)
	case <-time.After(150 * time.Millisecond):
	}
	recv.set(func(r *testReceiver) { r.block = nil })
	close(block)
	if err := <-sent; err != nil {
		t.Fatalf("Send 20 KB: %v", err)
	}

	// (b) ten short texts.
	for i := range 10 {
		if err := s.Send(ctx, sdp.TypeCPIM, []byte(cpimText(fmt.Sprintf("short-%d", i), fmt.Sprintf("text %d", i)))); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	in, _, _ := recv.snapshot()
	if len(in) != 11 {
		t.Fatalf("receiver got %d messages, want 11", len(in))
	}
	seen := map[string]int{}
	for _, m := range in {
		seen[m.Ref]++
		if m.From != "+15551230001" || m.To != "+15551230002" || m.ConversationID != "conv-session-1" {
			t.Errorf("message %s: from %s to %s conversation %q", m.Ref, m.From, m.To, m.ConversationID)
		}
	}
	if in[0].Ref != "big-1" || len(in[0].Parts) != 1 || in[0].Parts[0].Text != big {
		t.Errorf("first message %s does not carry the 20 KB text", in[0].Ref)
	}
	for ref, n := range seen {
		if n != 1 {
			t.Errorf("%s received %d times", ref, n)
		}
	}

	p.bye(cl)
	// The edge's MSRP session is gone: a SEND on it gets 481.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.Send(ctx, typeIsComposing, []byte("<isComposing/>"))
		var se *msrp.StatusError
		if errors.As(err, &se) && se.Code == 481 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SEND after BYE: %v, want 481", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if in, _, _ := recv.snapshot(); len(in) != 11 {
		t.Errorf("receiver got %d messages after BYE, want 11", len(in))
	}
}

// A gateway that cannot take a message now gets it refused with 408, one
// that rejects it with 403: the phone never sees 200.
func TestSessionGatewayErrors(t *testing.T) {
	recv := newMemReceiver()
	e := startEdge(t, sessionConfig(), recv)
	p := newSIPPhone(t, e)
	cl := p.open()
	s := p.connect(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tc := range []struct {
		fail error
		code int
	}{{fmt.Errorf("bus down: %w", gateway.ErrUnavailable), 408}, {fmt.Errorf("blocked: %w", gateway.ErrRejected), 403}} {
		recv.set(func(r *testReceiver) { r.fail = tc.fail })
		err := s.Send(ctx, sdp.TypeCPIM, []byte(cpimText("m-"+newMessageID(), "hi")))
		var se *msrp.StatusError
		if !errors.As(err, &se) || se.Code != tc.code {
			t.Errorf("gateway error %v: Send returned %v, want MSRP %d", tc.fail, err, tc.code)
		}
	}
	p.bye(cl)
}

func TestSessionRefusals(t *testing.T) {
	t.Run("untrusted", func(t *testing.T) {
		cfg := sessionConfig()
		cfg.Trusted.CIDRs = []string{"192.0.2.0/24"}
		recv := newMemReceiver()
		e := startEdge(t, cfg, recv)
		p := newSIPPhone(t, e)
		p.invite(&call{}, phoneOffer(t).String())
		if code, reason := status(p.final()); code != 403 {
			t.Fatalf("untrusted INVITE answered %d %s, want 403", code, reason)
		}
		p.c.noAnswer(300 * time.Millisecond)
	})
	t.Run("no m=message", func(t *testing.T) {
		e := startEdge(t, sessionConfig(), newMemReceiver())
		p := newSIPPhone(t, e)
		audio := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
		p.invite(&call{}, audio)
		if code, reason := status(p.final()); code != 488 {
			t.Fatalf("INVITE with audio only answered %d %s, want 488", code, reason)
		}
	})
	t.Run("Require timer", func(t *testing.T) {
		e := startEdge(t, sessionConfig(), newMemReceiver())
		p := newSIPPhone(t, e)
		p.invite(&call{}, phoneOffer(t).String(), "Require: timer")
		a := p.final()
		if code, reason := status(a); code != 420 || headerValue(a, "Unsupported") != "timer" {
			t.Fatalf("INVITE with Require: timer answered %d %s, Unsupported %q; want 420 naming timer", code, reason, headerValue(a, "Unsupported"))
		}
	})
	t.Run("no listener", func(t *testing.T) {
		e := startEdge(t, testConfig(), newMemReceiver())
		c := dialRaw(t, "tcp", e.Addr("tcp"))
		c.send(request{method: "INVITE", transport: "TCP", local: c.conn.LocalAddr(), contentType: sdp.ContentType,
			body: phoneOffer(t).String(), extra: []string{"Contact: <sip:+15551230001@127.0.0.1>"}}.String())
		for {
			a := c.answer()
			if code, _ := status(a); code >= 200 {
				if code != 405 {
					t.Fatalf("INVITE without listen.msrp answered %d, want 405", code)
				}
				break
			}
		}
	})
}

// CANCEL before the 200: 200 to the CANCEL, 487 to the INVITE.
func TestSessionCancel(t *testing.T) {
	e := startEdge(t, sessionConfig(), newMemReceiver())
	entered := make(chan struct{}, 1)
	e.mu.Lock()
	e.testHookInvite = func(ctx context.Context) {
		entered <- struct{}{}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
		}
	}
	e.mu.Unlock()
	p := newSIPPhone(t, e)
	cl := &call{}
	p.invite(cl, phoneOffer(t).String())
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("INVITE not handled")
	}
	p.c.send(request{method: "CANCEL", transport: "TCP", local: p.c.conn.LocalAddr(), callID: cl.callID, branch: cl.branch}.String())
	got := map[string]int{}
	for len(got) < 2 {
		a := p.final()
		code, _ := status(a)
		got[headerValue(a, "CSeq")] = code
	}
	if got["1 CANCEL"] != 200 || got["1 INVITE"] != 487 {
		t.Fatalf("answers %v, want 200 to CANCEL and 487 to INVITE", got)
	}
}

// 200 sessions opened, bound and closed leave no goroutine behind.
func TestSessionGoroutines(t *testing.T) {
	e := startEdge(t, sessionConfig(), newMemReceiver())
	p := newSIPPhone(t, e)
	// One session first, so that the SIP and MSRP connections exist.
	cl := p.open()
	p.connect(cl).Close()
	p.bye(cl)
	base := runtime.NumGoroutine()
	for range 200 {
		cl := p.open()
		s := p.connect(cl)
		p.bye(cl)
		s.Close()
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= base+5 {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after 200 sessions, %d before\n%s", n, base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SIPp opens a session over TCP (deploy/sipp/uac_session.xml): INVITE with
// an MSRP offer, 200 with an SDP answer (the scenario checks m=message,
// a=path and a=setup:passive with ereg), ACK, a re-INVITE with the same
// offer, 200, ACK, BYE, 200. The 200s' bodies, read back from SIPp's
// message trace, are one SDP answer, twice, which sip/sdp parses, with the
// edge's MSRP listener in its path.
func TestSIPpSession(t *testing.T) {
	e := startEdge(t, sessionConfig(), newMemReceiver())
	r := sipptest.Start(t, "uac_session.xml", "-t", "t1", "-m", "1", "-trace_msg",
		"-key", "caller", "+15551230001", "-key", "callee", "+15551230002", e.Addr("tcp").String())
	r.Wait(t)
	traces := r.Traces()
	var bodies []string
	for rest := traces; ; {
		i := strings.Index(rest, "SIP/2.0 200 OK")
		if i < 0 {
			break
		}
		rest = rest[i+len("SIP/2.0 200 OK"):]
		end := strings.Index(rest, "\n-----")
		if end < 0 {
			end = len(rest)
		}
		msg := rest[:end]
		j := strings.Index(msg, "v=0")
		if j < 0 || !strings.Contains(msg[:j], "application/sdp") {
			continue // the BYE's 200
		}
		bodies = append(bodies, strings.TrimRight(msg[j:], "\r\n")+"\r\n")
	}
	if len(bodies) != 2 || bodies[0] != bodies[1] {
		t.Fatalf("%d 200s with SDP, want the INVITE's and the re-INVITE's with one answer:\n%s", len(bodies), traces)
	}
	answer, err := sdp.Parse([]byte(bodies[0]))
	if err != nil {
		t.Fatalf("200 SDP: %v\n%s", err, bodies[0])
	}
	m, err := answer.MSRP(0)
	if err != nil {
		t.Fatalf("200 SDP m=message: %v\n%s", err, bodies[0])
	}
	if l := m.Local(); l.Port != e.Addr("msrp").(*net.TCPAddr).Port || m.Setup != sdp.SetupPassive || m.Direction != sdp.SendRecv {
		t.Errorf("answer path %v setup %q direction %q, want the edge's MSRP port, passive, sendrecv", m.Path, m.Setup, m.Direction)
	}
}

// A session whose MSRP side never binds is ended with a BYE from the edge,
// sent on the phone's connection within the dialog: From is the 200's To,
// To the INVITE's From, the CSeq above the INVITE's, and the INVITE's
// Record-Route its Route.
func TestSessionBindTimeout(t *testing.T) {
	e := startEdge(t, sessionConfig(), newMemReceiver())
	e.mu.Lock()
	e.bindTimeout = 200 * time.Millisecond
	e.mu.Unlock()
	p := newSIPPhone(t, e)
	route := "<sip:" + p.c.conn.LocalAddr().String() + ";transport=tcp;lr>"
	cl := p.open("Record-Route: " + route)
	bye := p.c.answer() // the next message on the connection: a request
	if !strings.HasPrefix(bye, "BYE sip:+15551230001@") {
		t.Fatalf("got %q, want a BYE to the phone's Contact", bye)
	}
	if headerValue(bye, "Call-ID") != cl.callID || headerValue(bye, "From") != cl.to ||
		headerValue(bye, "To") != "<sip:+15551230001@ims.test;user=phone>;tag=f1" ||
		headerValue(bye, "CSeq") != "2 BYE" || headerValue(bye, "Route") != route {
		t.Errorf("BYE outside the dialog:\n%s", bye)
	}
	res := "SIP/2.0 200 OK\r\n"
	for _, h := range []string{"Via", "From", "To", "Call-ID", "CSeq"} {
		res += h + ": " + headerValue(bye, h) + "\r\n"
	}
	p.c.send(res + "Content-Length: 0\r\n\r\n")
}

// A large message mode INVITE (cpm.largemsg, sendonly) is accepted as a
// chat one is: recvonly answer, our Contact with the largemsg ICSI, and the
// one message it carries reaches the receiver.
func TestSessionLargeMessage(t *testing.T) {
	recv := newMemReceiver()
	e := startEdge(t, sessionConfig(), recv)
	p := newSIPPhone(t, e)
	local := msrp.URI{Host: "127.0.0.1", Port: 9, SessionID: msrp.NewSessionID(), Transport: "tcp"}
	offer, err := sdp.Offer(sdp.OfferOptions{Mode: sdp.ModeLargeMessage, Path: []msrp.URI{local}, Setup: sdp.SetupActive,
		AcceptTypes: []string{sdp.TypeCPIM}, AcceptWrappedTypes: []string{sdp.TypeText}})
	if err != nil {
		t.Fatal(err)
	}
	cl := &call{offer: offer}
	p.invite(cl, offer.String(), `Accept-Contact: *;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.largemsg"`)
	a := p.final()
	if code, reason := status(a); code != 200 {
		t.Fatalf("INVITE answered %d %s", code, reason)
	}
	if c := headerValue(a, "Contact"); !strings.Contains(c, `+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.largemsg"`) {
		t.Errorf("Contact %q without the largemsg ICSI", c)
	}
	cl.to = headerValue(a, "To")
	_, body, _ := strings.Cut(a, "\r\n\r\n")
	if cl.answer, err = sdp.Parse([]byte(body)); err != nil {
		t.Fatal(err)
	}
	if m, _ := cl.answer.MSRP(0); m.Direction != sdp.RecvOnly {
		t.Errorf("answer direction %q, want recvonly", m.Direction)
	}
	p.c.send(request{method: "ACK", transport: "TCP", local: p.c.conn.LocalAddr(), callID: cl.callID, to: cl.to}.String())
	s := p.connect(cl)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Send(ctx, sdp.TypeCPIM, []byte(cpimText("large-1", strings.Repeat("y", 30000)))); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if in, _, _ := recv.snapshot(); len(in) != 1 || in[0].Ref != "large-1" {
		t.Fatalf("receiver got %+v", in)
	}
	p.bye(cl)
}

// With sessions on, OPTIONS advertises chat and large message mode and
// allows INVITE.
func TestSessionOptions(t *testing.T) {
	recv := newMemReceiver()
	recv.set(func(r *testReceiver) { r.serves["+15551230002"] = true })
	e := startEdge(t, sessionConfig(), recv)
	c := dialRaw(t, "udp", e.Addr("udp"))
	c.send(request{method: "OPTIONS", local: c.conn.LocalAddr()}.String())
	res := c.answer()
	if code, _ := status(res); code != 200 {
		t.Fatalf("OPTIONS: %q", res)
	}
	contact := headerValue(res, "Contact")
	for _, icsi := range []string{icsiMsg, icsiSession, icsiLargeMsg} {
		if !strings.Contains(contact, encodeURN(icsi)) {
			t.Errorf("Contact %q lacks %s", contact, icsi)
		}
	}
	if caps := capabilities([]string{contact}); !caps.Chat || !caps.FileTransfer {
		t.Errorf("Contact %q reads as %+v", contact, caps)
	}
	if allow := headerValue(res, "Allow"); !strings.Contains(allow, "INVITE") || !strings.Contains(allow, "BYE") {
		t.Errorf("Allow %q", allow)
	}
}

// Contents of a session are taken as a MESSAGE's are: an IMDN becomes a
// receipt, an FT-HTTP descriptor a file, isComposing nothing; identities
// are the INVITE's even when CPIM says anonymous; a bare type outside CPIM
// gets 415.
func TestSessionContents(t *testing.T) {
	recv := newMemReceiver()
	e := startEdge(t, sessionConfig(), recv)
	p := newSIPPhone(t, e)
	cl := p.open()
	s := p.connect(cl)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	send := func(contentType, body string) error { return s.Send(ctx, contentType, []byte(body)) }

	imdn := imdnBody(`<imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>orig-9</message-id><datetime>2026-08-08T06:41:00Z</datetime><delivery-notification><status><delivered/></status></delivery-notification></imdn>`)
	if err := send(sdp.TypeCPIM, imdn); err != nil {
		t.Fatalf("IMDN: %v", err)
	}
	ft := `<?xml version="1.0" encoding="UTF-8"?><file xmlns="urn:gsma:params:xml:ns:rcs:rcs:fthttp">` +
		`<file-info type="file"><file-size>123456</file-size><file-name>a.jpg</file-name><content-type>image/jpeg</content-type><data url="https://ft.example/f" until="2026-10-10T00:00:00Z"/></file-info></file>`
	anon := "From: <sip:anonymous@anonymous.invalid>\r\nTo: <sip:anonymous@anonymous.invalid>\r\n" +
		"NS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: ft-9\r\nDateTime: 2026-08-08T06:40:56.000Z\r\n"
	if err := send(sdp.TypeCPIM, cpimWith(anon, "Content-Type: application/vnd.gsma.rcs-ft-http+xml\r\n\r\n"+ft)); err != nil {
		t.Fatalf("FT-HTTP: %v", err)
	}
	isComposing := `<?xml version="1.0" encoding="UTF-8"?><isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state></isComposing>`
	if err := send(sdp.TypeCPIM, cpimWith(cpimHead, "Content-Type: application/im-iscomposing+xml\r\n\r\n"+isComposing)); err != nil {
		t.Fatalf("isComposing in CPIM: %v", err)
	}
	var se *msrp.StatusError
	if err := send("text/plain", "bare"); !errors.As(err, &se) || se.Code != 415 {
		t.Errorf("bare text/plain: %v, want 415", err)
	}

	in, receipts, _ := recv.snapshot()
	if len(receipts) != 1 || receipts[0].Ref != "orig-9" || receipts[0].From != "+15551230001" {
		t.Errorf("receipts %+v, want delivered for orig-9 from +15551230001", receipts)
	}
	if len(in) != 1 || in[0].Ref != "ft-9" || in[0].Parts[0].File == nil || in[0].Parts[0].File.URL != "https://ft.example/f" {
		t.Fatalf("messages %+v, want the file ft-9", in)
	}
	if in[0].From != "+15551230001" || in[0].To != "+15551230002" {
		t.Errorf("file from %s to %s, want the INVITE's +15551230001 to +15551230002", in[0].From, in[0].To)
	}
	p.bye(cl)
}

// When the edge stops, an open session gets a BYE from it, and Run returns
// once the phone answered.
func TestSessionShutdown(t *testing.T) {
	e, err := NewEdge(sessionConfig(), newMemReceiver(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for e.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatal("edge not ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
	p := newSIPPhone(t, e)
	cl := p.open()
	s := p.connect(cl)
	defer s.Close()
	cancel()
	p.answerBye(cl)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return")
	}
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Error("the phone's MSRP session outlived the edge")
	}
}

// A phone's offer in the dialog of an open session: a re-INVITE or an
// UPDATE repeating the session (a refresh, RFC 4028 with the phone as its
// own refresher) gets 200 with the answer it had, byte for byte; a
// re-INVITE without a body gets it as the edge's offer. An offer that
// changes the MSRP endpoint or puts the session on hold, or is not SDP,
// gets 488, and the session carries messages all the same.
func TestSessionReoffer(t *testing.T) {
	recv := newMemReceiver()
	e := startEdge(t, sessionConfig(), recv)
	p := newSIPPhone(t, e)
	cl := p.open()
	s := p.connect(cl)
	offer := cl.offer.String()
	inDialog := func(method, contentType, body string) (int, string, string) {
		t.Helper()
		req := request{method: method, transport: "TCP", local: p.c.conn.LocalAddr(), callID: cl.callID, to: cl.to,
			contentType: contentType, body: body}
		if method == "INVITE" {
			req.extra = []string{"Contact: <sip:+15551230001@" + p.c.conn.LocalAddr().String() + ";transport=tcp>", "Session-Expires: 1800"}
		}
		// Right after the ACK the session may still be being set up: 491,
		// and the phone offers again (RFC 3261 section 14.1).
		var a string
		for try := 0; ; try++ {
			req.branch = ""
			p.c.send(req.String())
			a = p.final()
			if code, _ := status(a); code != 491 || try == 500 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		code, reason := status(a)
		if method == "INVITE" {
			p.c.send(request{method: "ACK", transport: "TCP", local: p.c.conn.LocalAddr(), callID: cl.callID, to: cl.to}.String())
		}
		_, b, _ := strings.Cut(a, "\r\n\r\n")
		if code == 200 && method == "INVITE" && headerValue(a, "Contact") == "" {
			t.Errorf("%s: 200 without Contact", method)
		}
		return code, reason, b
	}
	for _, c := range []struct{ method, body string }{{"INVITE", offer}, {"UPDATE", offer}, {"INVITE", ""}} {
		ct := sdp.ContentType
		if c.body == "" {
			ct = ""
		}
		code, reason, body := inDialog(c.method, ct, c.body)
		if code != 200 {
			t.Errorf("%s (body %d bytes) answered %d %s, want 200", c.method, len(c.body), code, reason)
			continue
		}
		if body != cl.answer.String() {
			t.Errorf("%s: the answer changed:\n%s\nwas\n%s", c.method, body, cl.answer.String())
		}
	}
	hold := strings.Replace(offer, "a=sendrecv", "a=inactive", 1)
	if hold == offer {
		hold += "a=inactive\r\n"
	}
	for what, c := range map[string]struct{ method, ct, body string }{
		"another endpoint": {"INVITE", sdp.ContentType, strings.Replace(offer, "127.0.0.1:9/", "127.0.0.1:19/", 1)},
		"hold":             {"UPDATE", sdp.ContentType, hold},
		"not SDP":          {"UPDATE", "text/plain", "hello"},
		"bad SDP":          {"INVITE", sdp.ContentType, "v=0\r\nm=message\r\n"},
		"no MSRP":          {"UPDATE", sdp.ContentType, strings.Replace(offer, "TCP/MSRP", "TCP/RTP", 1)},
	} {
		if code, reason, _ := inDialog(c.method, c.ct, c.body); code != 488 {
			t.Errorf("%s: %s answered %d %s, want 488", what, c.method, code, reason)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Send(ctx, sdp.TypeCPIM, []byte(cpimText("after-reoffers", "still here"))); err != nil {
		t.Fatalf("Send after the offers: %v", err)
	}
	if in, _, _ := recv.snapshot(); len(in) != 1 || in[0].Ref != "after-reoffers" {
		t.Errorf("receiver got %d messages, want the one sent after the offers", len(in))
	}
	p.bye(cl)
}

// firstInInvite is a chat INVITE body with the first message beside the
// offer, as RCC.07 clients send it: multipart/mixed, boundary b1.
func firstInInvite(offer *sdp.Session, cpim string) string {
	return "--b1\r\nContent-Type: application/sdp\r\n\r\n" + offer.String() +
		"\r\n--b1\r\nContent-Type: message/cpim\r\n\r\n" + cpim + "\r\n--b1--\r\n"
}

// A chat INVITE carrying the first message beside its offer: the message
// reaches the receiver before the 200, the session then carries the
// next one, each once. Refused, the message refuses the INVITE (403, or
// 503 with Retry-After when the bus cannot take it), and so do a CPIM part
// that does not parse (400) and a multipart body without an offer (488).
func TestSessionFirstMessageInInvite(t *testing.T) {
	recv := newMemReceiver()
	e := startEdge(t, sessionConfig(), recv)
	p := newSIPPhone(t, e)
	const multipart = "multipart/mixed;boundary=b1"

	cl := &call{offer: phoneOffer(t)}
	p.inviteAs(cl, multipart, firstInInvite(cl.offer, cpimText("first-1", "first, in the INVITE")))
	a := p.final()
	if code, reason := status(a); code != 200 {
		t.Fatalf("INVITE with the first message answered %d %s, want 200", code, reason)
	}
	if in, _, _ := recv.snapshot(); len(in) != 1 || in[0].Ref != "first-1" || in[0].Parts[0].Text != "first, in the INVITE" ||
		in[0].From != "+15551230001" || in[0].To != "+15551230002" || in[0].ConversationID != "conv-session-1" {
		t.Fatalf("before the 200 the receiver had %+v, want the first message", in)
	}
	cl.to = headerValue(a, "To")
	_, body, _ := strings.Cut(a, "\r\n\r\n")
	var err error
	if cl.answer, err = sdp.Parse([]byte(body)); err != nil {
		t.Fatalf("200 SDP: %v", err)
	}
	p.c.send(request{method: "ACK", transport: "TCP", local: p.c.conn.LocalAddr(), callID: cl.callID, to: cl.to}.String())
	s := p.connect(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Send(ctx, sdp.TypeCPIM, []byte(cpimText("second-1", "second, in the session"))); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if in, _, _ := recv.snapshot(); len(in) != 2 || in[1].Ref != "second-1" {
		t.Errorf("receiver got %d messages, want the first and the second", len(in))
	}
	p.bye(cl)

	for _, c := range []struct {
		name, contentType, body string
		fail                    error
		want                    int
	}{
		{"refused", multipart, firstInInvite(phoneOffer(t), cpimText("first-2", "no")), fmt.Errorf("test: %w", gateway.ErrRejected), 403},
		{"bus down", multipart, firstInInvite(phoneOffer(t), cpimText("first-3", "later")), fmt.Errorf("test: %w", gateway.ErrUnavailable), 503},
		{"CPIM that does not parse", multipart, firstInInvite(phoneOffer(t), "no headers"), nil, 400},
		{"no offer", multipart, "--b1\r\nContent-Type: message/cpim\r\n\r\n" + cpimText("first-4", "x") + "\r\n--b1--\r\n", nil, 488},
		{"no boundary", "multipart/mixed", firstInInvite(phoneOffer(t), cpimText("first-5", "x")), nil, 400},
	} {
		recv.set(func(r *testReceiver) { r.fail = c.fail })
		p.inviteAs(&call{}, c.contentType, c.body)
		a := p.final()
		if code, reason := status(a); code != c.want {
			t.Errorf("%s: INVITE answered %d %s, want %d", c.name, code, reason, c.want)
		} else if code == 503 && headerValue(a, "Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", c.name)
		}
		p.c.send(request{method: "ACK", transport: "TCP", local: p.c.conn.LocalAddr(), callID: headerValue(a, "Call-ID"), to: headerValue(a, "To")}.String())
	}
	// The receiver saw the two refused first messages, and nothing of the
	// INVITEs refused before it.
	var refs []string
	in, _, _ := recv.snapshot()
	for _, m := range in {
		refs = append(refs, m.Ref)
	}
	if fmt.Sprint(refs) != "[first-1 second-1 first-2 first-3]" {
		t.Errorf("the receiver was handed %v", refs)
	}
}

// SIPp opens a chat session with its first message in the INVITE
// (deploy/sipp/uac_session_first_message.xml): the 200 comes with an SDP
// answer, and the message, with its imdn.Message-ID and conversation,
// reached the receiver.
func TestSIPpSessionFirstMessage(t *testing.T) {
	recv := newMemReceiver()
	e := startEdge(t, sessionConfig(), recv)
	r := sipptest.Start(t, "uac_session_first_message.xml", "-t", "t1", "-m", "1",
		"-key", "caller", "+15551230001", "-key", "callee", "+15551230002", "-key", "text", "hello from SIPp, in the INVITE",
		e.Addr("tcp").String())
	r.Wait(t)
	in, _, _ := recv.snapshot()
	if len(in) != 1 || len(in[0].Parts) != 1 || in[0].Parts[0].Text != "hello from SIPp, in the INVITE" ||
		!strings.HasPrefix(in[0].Ref, "sipp-first-") || !strings.HasPrefix(in[0].ConversationID, "sipp-conversation-") {
		t.Fatalf("the receiver got %+v, want SIPp's first message", in)
	}
}

// A session opened over the SIP TLS listener: INVITE, 200 with an SDP
// answer and a Contact for TLS, ACK, a message over MSRP, BYE, every
// request of the dialog on the phone's TLS connection.
func TestSessionOverTLS(t *testing.T) {
	cfg := sessionConfig()
	cfg.Listen.TLS = "127.0.0.1:0"
	var roots *x509.CertPool
	cfg.TLS, roots = gatewayCert(t)
	recv := newMemReceiver()
	e := startEdge(t, cfg, recv)
	conn, err := tls.Dial("tcp", e.Addr("tls").String(), &tls.Config{RootCAs: roots, ServerName: "mimigw.test", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("dial tls: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	p := newSIPPhone(t, e)
	p.c, p.transport = &rawClient{t: t, conn: conn}, "TLS"

	cl := &call{offer: phoneOffer(t)}
	p.invite(cl, cl.offer.String())
	a := p.final()
	if code, reason := status(a); code != 200 {
		t.Fatalf("INVITE over TLS answered %d %s", code, reason)
	}
	if contact := headerValue(a, "Contact"); !strings.Contains(contact, "transport=tls") ||
		!strings.Contains(contact, ":"+strconv.Itoa(e.Addr("tls").(*net.TCPAddr).Port)) {
		t.Errorf("200 Contact %q, want the TLS listener", contact)
	}
	cl.to = headerValue(a, "To")
	_, body, _ := strings.Cut(a, "\r\n\r\n")
	if cl.answer, err = sdp.Parse([]byte(body)); err != nil {
		t.Fatalf("200 SDP: %v", err)
	}
	p.c.send(request{method: "ACK", transport: "TLS", local: conn.LocalAddr(), callID: cl.callID, to: cl.to}.String())
	s := p.connect(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Send(ctx, sdp.TypeCPIM, []byte(cpimText("tls-session-1", "in a session opened over TLS"))); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if in, _, _ := recv.snapshot(); len(in) != 1 || in[0].Ref != "tls-session-1" {
		t.Fatalf("receiver got %+v", in)
	}
	p.bye(cl)
	// The edge's MSRP session is gone: a SEND on it gets 481.
	for {
		err := s.Send(ctx, typeIsComposing, []byte("<isComposing/>"))
		var se *msrp.StatusError
		if errors.As(err, &se) && se.Code == 481 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("SEND after BYE: %v, want 481", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
