package sip

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/sip/cpim"
	"github.com/mimigw/mimigw/sip/imdn"
	"github.com/mimigw/mimigw/sip/msrp"
	"github.com/mimigw/mimigw/sip/sdp"
)

// chatPhone is an RCS phone built from sipgo, sip/msrp and sip/sdp that
// the edge reaches as its outbound proxy over TCP: it answers chat
// INVITEs (or refuses them, or never answers), runs their MSRP side,
// takes pager-mode MESSAGEs, answers UPDATE and BYE, and can send BYE and
// MSRP messages of its own.
type chatPhone struct {
	t    testing.TB
	addr string // SIP over TCP
	ua   *sipgo.UserAgent
	srv  *sipgo.Server
	dlgs *sipgo.DialogServerCache
	pool *msrp.Pool
	msrp net.Addr
	// msrps is its MSRP over TLS listener, which presents the certificate
	// whose fingerprint is certFP.
	msrps  net.Addr
	certFP msrp.Fingerprint
	stop   chan struct{}

	// What it does, set before the edge sends.
	inviteCode int // 0: 200; a code: that final answer; -1: 180 and no more; -2: nothing at all
	pagerCode  int // the answer to MESSAGE; 0: 200
	setup      sdp.Setup
	expires    string // Session-Expires of the 200, empty for none
	// fp is the a=fingerprint answering an msrps offer: certFP unless a
	// test has the phone lie; zero, the answer has none.
	fp msrp.Fingerprint
	// handle, when set, decides the answer to each MSRP message (after
	// it was recorded).
	handle func(ctx context.Context, m *msrp.Message) error

	mu      sync.Mutex
	invites []*sip.Request
	calls   []*phoneCall
	pager   []*sip.Request
	updates int
	byes    int // BYEs from the edge
	cancels int // INVITEs the edge CANCELled
	changed chan struct{}
	got     chan phoneMessage
}

// phoneCall is one chat session as the phone sees it.
type phoneCall struct {
	dlg  *sipgo.DialogServerSession
	sess *msrp.Session
}

type phoneMessage struct {
	call *phoneCall
	m    *msrp.Message
}

func newChatPhone(t testing.TB) *chatPhone {
	t.Helper()
	p := &chatPhone{t: t, stop: make(chan struct{}), setup: sdp.SetupPassive,
		changed: make(chan struct{}, 1), got: make(chan phoneMessage, 256)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = l.Addr().String()
	ml, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.msrp = ml.Addr()
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.msrps = tl.Addr()
	cert, fp := selfSigned(t)
	p.certFP, p.fp = fp, fp
	if p.pool, err = msrp.NewPool(msrp.Config{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p.ua, err = sipgo.NewUA(sipgo.WithUserAgent("phone"),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(log)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(log)))
	if err != nil {
		t.Fatal(err)
	}
	if p.srv, err = sipgo.NewServer(p.ua, sipgo.WithServerLogger(log)); err != nil {
		t.Fatal(err)
	}
	cli, err := sipgo.NewClient(p.ua, sipgo.WithClientLogger(log), sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(p.addr)
	n, _ := strconv.Atoi(port)
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "+15551230002", Host: host, Port: n,
		UriParams: sip.HeaderParams{{K: "transport", V: "tcp"}}}}
	p.dlgs = sipgo.NewDialogServerCache(cli, contact)
	p.srv.OnInvite(p.onInvite)
	p.srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { _ = p.dlgs.ReadAck(req, tx) })
	p.srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if err := p.dlgs.ReadBye(req, tx); err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
			return
		}
		p.note(func() { p.byes++ })
	})
	p.srv.OnUpdate(func(req *sip.Request, tx sip.ServerTransaction) {
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		if h := req.GetHeader("Session-Expires"); h != nil {
			res.AppendHeader(sip.NewHeader("Session-Expires", h.Value()))
			res.AppendHeader(sip.NewHeader("Require", "timer"))
		}
		_ = tx.Respond(res)
		p.note(func() { p.updates++ })
	})
	p.srv.OnMessage(func(req *sip.Request, tx sip.ServerTransaction) {
		p.mu.Lock()
		code := p.pagerCode
		p.mu.Unlock()
		if code == 0 {
			code = 200
		}
		// Recorded before the answer: the edge returns on the answer.
		if code < 300 {
			p.note(func() { p.pager = append(p.pager, req) })
		}
		_ = tx.Respond(sip.NewResponseFromRequest(req, code, "Answer", nil))
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 3)
	go func() { _ = p.srv.ServeTCP(l); done <- struct{}{} }()
	go func() { _ = p.pool.Serve(ctx, ml); done <- struct{}{} }()
	go func() { _ = p.pool.ServeTLS(ctx, tl); done <- struct{}{} }()
	t.Cleanup(func() {
		close(p.stop)
		cancel()
		p.pool.Close()
		l.Close()
		p.ua.Close()
		<-done
		<-done
		<-done
	})
	return p
}

// note changes the phone's record and wakes whoever waits on it.
func (p *chatPhone) note(f func()) {
	p.mu.Lock()
	f()
	p.mu.Unlock()
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// wait waits until cond holds on the phone's record.
func (p *chatPhone) wait(what string, cond func(p *chatPhone) bool) {
	p.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		p.mu.Lock()
		ok := cond(p)
		p.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-p.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			p.t.Fatalf("phone: no %s within 20s", what)
		}
	}
}

func (p *chatPhone) set(f func(p *chatPhone)) {
	p.mu.Lock()
	f(p)
	p.mu.Unlock()
}

func (p *chatPhone) counts() (invites, pager, byes, updates int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.invites), len(p.pager), p.byes, p.updates
}

func (p *chatPhone) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	p.mu.Lock()
	p.invites = append(p.invites, req)
	code, setup, expires, fp := p.inviteCode, p.setup, p.expires, p.fp
	p.mu.Unlock()
	select {
	case p.changed <- struct{}{}:
	default:
	}
	switch {
	case code == -2:
		select {
		case <-tx.Done():
		case <-p.stop:
		}
		return
	case code == -1:
		_ = tx.Respond(sip.NewResponseFromRequest(req, 180, "Ringing", nil))
		select {
		case <-tx.Done(): // the CANCEL: sipgo answered 487
			if errors.Is(tx.Err(), sip.ErrTransactionCanceled) {
				p.note(func() { p.cancels++ })
			}
		case <-p.stop:
		}
		return
	case code != 0:
		_ = tx.Respond(sip.NewResponseFromRequest(req, code, "Refused", nil))
		return
	}
	refuse := func(why string, err error) {
		p.t.Errorf("phone: %s: %v", why, err)
		_ = tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
	}
	offer, err := sdp.Parse(req.Body())
	if err != nil {
		refuse("offer", err)
		return
	}
	id := msrp.NewSessionID()
	local := msrp.URI{Host: "127.0.0.1", Port: p.msrp.(*net.TCPAddr).Port, SessionID: id, Transport: "tcp"}
	tlsLocal := msrp.URI{Secure: true, Host: "127.0.0.1", Port: p.msrps.(*net.TCPAddr).Port, SessionID: id, Transport: "tcp"}
	announced := fp
	if fp.Hash == "" {
		announced = p.certFP // taken out of the answer below
	}
	answer, err := sdp.Answer(offer, sdp.AnswerOptions{Path: []msrp.URI{local}, TLSPath: []msrp.URI{tlsLocal},
		Fingerprints: []msrp.Fingerprint{announced}, Setup: setup,
		AcceptTypes: []string{sdp.TypeCPIM}, AcceptWrappedTypes: []string{sdp.TypeText, sdp.TypeIMDN}})
	if err != nil {
		refuse("answer", err)
		return
	}
	neg, err := sdp.Negotiate(offer, answer, sdp.Answerer)
	if err != nil {
		refuse("negotiate", err)
		return
	}
	dlg, err := p.dlgs.ReadInvite(req, tx)
	if err != nil {
		refuse("dialog", err)
		return
	}
	call := &phoneCall{dlg: dlg}
	cfg := neg.SessionConfig()
	cfg.Handler = func(ctx context.Context, m *msrp.Message) error {
		p.got <- phoneMessage{call: call, m: m}
		p.mu.Lock()
		handle := p.handle
		p.mu.Unlock()
		if handle != nil {
			return handle(ctx, m)
		}
		return nil
	}
	if call.sess, err = p.pool.NewSession(cfg); err != nil {
		refuse("msrp session", err)
		return
	}
	body := answer.String()
	if fp.Hash == "" {
		body = withoutFingerprint(body)
	}
	res := sip.NewSDPResponseFromRequest(dlg.InviteRequest, []byte(body))
	if expires != "" {
		res.AppendHeader(sip.NewHeader("Session-Expires", expires))
		res.AppendHeader(sip.NewHeader("Require", "timer"))
	}
	p.note(func() { p.calls = append(p.calls, call) })
	if err := dlg.WriteResponse(res); err != nil {
		// sipgo reads each request in a goroutine of its own, so the
		// edge's BYE (at the end of a test, or right after its ACK when
		// the session cannot be set up) may be read before its ACK; the
		// BYE ends the wait before its handler has marked the dialog
		// ended.
		ended := false
		for deadline := time.Now().Add(5 * time.Second); !ended && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			ended = dlg.LoadState() == sip.DialogStateEnded
		}
		if !ended {
			p.t.Errorf("phone: 200 not ACKed: %v", err)
		}
		call.sess.Close()
		return
	}
	if neg.Active {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// With a certificate other than its answer announced, the edge
		// refuses the phone's binding.
		if err := call.sess.Connect(ctx); err != nil && fp.String() == p.certFP.String() {
			p.t.Errorf("phone: MSRP connect: %v", err)
		}
	}
	go func() {
		<-dlg.Context().Done()
		call.sess.Close()
	}()
}

// next is the next MSRP message the phone got, as CPIM.
func (p *chatPhone) next() (*phoneCall, *cpim.Message) {
	p.t.Helper()
	select {
	case pm := <-p.got:
		if pm.m.ContentType != cpim.ContentType {
			p.t.Fatalf("phone got %s in the session", pm.m.ContentType)
		}
		c, err := cpim.Parse(pm.m.Body)
		if err != nil {
			p.t.Fatalf("phone: CPIM: %v", err)
		}
		return pm.call, c
	case <-time.After(20 * time.Second):
		p.t.Fatal("phone: no MSRP message within 20s")
	}
	return nil, nil
}

// chatConfig is sessionConfig with chat sessions toward the phone.
func chatConfig(p *chatPhone) Config {
	c := sessionConfig()
	c.OutboundProxy = "sip:" + p.addr + ";transport=tcp"
	c.Sessions.Outbound = OutboundChat
	c.Sessions.SetupTimeout = 2 * time.Second
	return c
}

// chatText is a message for the phone that advertised chat sessions.
func chatText(ref, conv, text string) gateway.OutboundRCS {
	m := outboundText(ref)
	m.ConversationID = conv
	m.Parts = []gateway.Part{{Text: text}}
	m.ChatSession = true
	return m
}

// openChats is how many chat sessions the edge holds.
func openChats(e *Edge) int {
	e.chats.mu.Lock()
	defer e.chats.mu.Unlock()
	return len(e.chats.byKey)
}

func waitChats(t testing.TB, e *Edge, n int) {
	t.Helper()
	waitExactly(t, "chat sessions open", n, func() int { return openChats(e) })
}

// waitExactly waits until f says n.
func waitExactly(t testing.TB, what string, n int, f func() int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for f() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d %s, want %d", f(), what, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Ten messages to one phone in one conversation go in one chat session:
// one INVITE with the chat headers and offer, ten SENDs whose CPIM arrives
// whole and in order, no pager MESSAGE. The phone's IMDN inside the
// session becomes a delivered status report through the bus; another
// conversation gets a session of its own.
func TestChatOutbound(t *testing.T) {
	p := newChatPhone(t)
	recv := newTestReceiver(t)
	e := startEdge(t, chatConfig(p), recv)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var call *phoneCall
	for i := range 10 {
		text := fmt.Sprintf("message %d: %s", i, strings.Repeat("ü", i*700)) // up to ~12 KB: several chunks
		m := chatText(fmt.Sprintf("chat-ref-%d", i), "conv-chat-1", text)
		if err := e.SendRCS(ctx, m); err != nil {
			t.Fatalf("SendRCS %d: %v", i, err)
		}
		c, got := p.next()
		if call == nil {
			call = c
		} else if c != call {
			t.Fatalf("message %d came in another session", i)
		}
		if got.MessageID() != m.Ref || string(got.Body) != text {
			t.Fatalf("message %d arrived as %q with %d bytes, want %q with %d", i, got.MessageID(), len(got.Body), m.Ref, len(text))
		}
		_, from := got.From()
		_, to := got.To()
		if !strings.Contains(from, "+15551230001") || !strings.Contains(to, "+15551230002") {
			t.Errorf("CPIM From %s To %s", from, to)
		}
	}
	invites, pager, _, _ := p.counts()
	if invites != 1 || pager != 0 {
		t.Fatalf("%d INVITEs and %d pager MESSAGEs for 10 messages, want 1 and 0", invites, pager)
	}

	p.mu.Lock()
	inv := p.invites[0]
	p.mu.Unlock()
	for name, want := range map[string]string{
		"Accept-Contact":      "urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.session",
		"Contact":             "urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.session",
		"P-Preferred-Service": "urn:urn-7:3gpp-service.ims.icsi.oma.cpm.session",
		"Conversation-ID":     "conv-chat-1",
		"Contribution-ID":     "contrib-1",
		"Supported":           "timer",
		"Session-Expires":     "1800;refresher=uac",
		"Content-Type":        "application/sdp",
	} {
		h := inv.GetHeader(name)
		if h == nil || !strings.Contains(h.Value(), want) {
			t.Errorf("INVITE %s: %v, want %q", name, h, want)
		}
	}
	if inv.Transport() != "TCP" {
		t.Errorf("INVITE over %s", inv.Transport())
	}
	offer := string(inv.Body())
	for _, want := range []string{"m=message ", " TCP/MSRP *", "a=path:msrp://127.0.0.1:", ";tcp", "a=setup:actpass", "a=sendrecv",
		"a=accept-types:message/cpim application/im-iscomposing+xml",
		"a=accept-wrapped-types:text/plain message/imdn+xml application/vnd.gsma.rcs-ft-http+xml",
		"a=max-size:" + strconv.Itoa(DefaultMaxMessageSize)} {
		if !strings.Contains(offer, want) {
			t.Errorf("offer lacks %q:\n%s", want, offer)
		}
	}

	// The phone reports message 3 delivered inside the session.
	n := imdn.NewDelivered("chat-ref-3", time.Now())
	doc := n.CPIM("sip:+15551230002@mimigw.test", "sip:+15551230001@mimigw.test", newMessageID())
	if err := call.sess.Send(ctx, cpim.ContentType, doc.Bytes()); err != nil {
		t.Fatalf("phone: IMDN in the session: %v", err)
	}
	recv.waitCalls(t, 1)
	_, rc, _ := recv.snapshot()
	if len(rc) != 1 || rc[0].Ref != "chat-ref-3" || rc[0].Status != gateway.StatusDelivered || rc[0].From != "+15551230002" || rc[0].Channel != gateway.ChannelRCS {
		t.Fatalf("receipts %+v, want chat-ref-3 delivered from +15551230002", rc)
	}

	// A reply the phone sends in the session becomes an inbound message of
	// the conversation.
	reply := cpim.New("sip:+15551230002@mimigw.test", "sip:+15551230001@mimigw.test", "phone-reply-1", time.Now(),
		cpim.NotifyPositiveDelivery, "text/plain;charset=UTF-8", []byte("reply in the session"))
	if err := call.sess.Send(ctx, cpim.ContentType, reply.Bytes()); err != nil {
		t.Fatalf("phone: reply in the session: %v", err)
	}
	recv.waitCalls(t, 1)
	in, _, _ := recv.snapshot()
	if len(in) != 1 || in[0].Ref != "phone-reply-1" || in[0].From != "+15551230002" || in[0].To != "+15551230001" ||
		in[0].ConversationID != "conv-chat-1" || len(in[0].Parts) != 1 || in[0].Parts[0].Text != "reply in the session" {
		t.Fatalf("inbound %+v, want the phone's reply in conv-chat-1", in)
	}
	if msgs := recv.fromPhone(t); len(msgs) != 2 {
		t.Errorf("%d entries on the bus, want the receipt and the reply", len(msgs))
	}

	// Another conversation with the same phone: a session of its own.
	if err := e.SendRCS(ctx, chatText("chat-other", "conv-chat-2", "other room")); err != nil {
		t.Fatalf("SendRCS: %v", err)
	}
	if c, got := p.next(); c == call || string(got.Body) != "other room" {
		t.Errorf("the other conversation's message came in the first session, or as %q", got.Body)
	}
	if invites, _, _, _ := p.counts(); invites != 2 {
		t.Errorf("%d INVITEs for two conversations", invites)
	}
	if n := openChats(e); n != 2 {
		t.Errorf("%d chat sessions open, want 2", n)
	}
}

// A phone that refuses the chat INVITE (486, 480) or never answers it
// gets the message by pager mode, and an INVITE left ringing is
// CANCELled; when pager mode fails too, the error is the pager failure's
// kind, for the gateway's SMS fallback.
func TestChatFallsBackToPager(t *testing.T) {
	for _, tc := range []struct {
		name   string
		invite int
	}{{"486", 486}, {"480", 480}, {"ringing only", -1}, {"silent", -2}} {
		t.Run(tc.name, func(t *testing.T) {
			p := newChatPhone(t)
			p.set(func(p *chatPhone) { p.inviteCode = tc.invite })
			e := startEdge(t, chatConfig(p), newMemReceiver())
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			p.sendByPager(ctx, e, chatText("fb-1", "conv-fb", "by pager"))

			p.set(func(p *chatPhone) { p.pagerCode = 480 })
			err := e.SendRCS(ctx, chatText("fb-2", "conv-fb", "nowhere"))
			if !errors.Is(err, gateway.ErrOffline) {
				t.Fatalf("SendRCS with pager mode failing: %v, want ErrOffline", err)
			}
			if !strings.Contains(err.Error(), "chat session") {
				t.Errorf("the error does not say the chat session failed first: %v", err)
			}
			if invites, _, _, _ := p.counts(); invites != 1 {
				t.Errorf("%d INVITEs: a phone that failed a session should get none for a while", invites)
			}
			if tc.invite == -1 {
				// The ringing INVITE is CANCELled, not left to the phone.
				p.wait("CANCEL of the ringing INVITE", func(p *chatPhone) bool { return p.cancels == 1 })
			}
		})
	}
}

// sendByPager has e send m, the first message for the phone, and checks
// that it took one INVITE and went by pager mode, no session left open.
func (p *chatPhone) sendByPager(ctx context.Context, e *Edge, m gateway.OutboundRCS) {
	p.t.Helper()
	if err := e.SendRCS(ctx, m); err != nil {
		p.t.Fatalf("SendRCS: %v", err)
	}
	invites, pager, _, _ := p.counts()
	if invites != 1 || pager != 1 {
		p.t.Fatalf("%d INVITEs, %d pager MESSAGEs; want 1 and 1", invites, pager)
	}
	p.mu.Lock()
	body := string(p.pager[0].Body())
	p.mu.Unlock()
	if !strings.Contains(body, "imdn.Message-ID: "+m.Ref) || !strings.Contains(body, m.Parts[0].Text) {
		p.t.Errorf("pager MESSAGE body:\n%s", body)
	}
	waitChats(p.t, e, 0)
}

// A BYE from the phone ends the session: the next message opens a new one.
// The phone here is the active MSRP side.
func TestChatPhoneBye(t *testing.T) {
	p := newChatPhone(t)
	p.set(func(p *chatPhone) { p.setup = sdp.SetupActive })
	e := startEdge(t, chatConfig(p), newMemReceiver())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.SendRCS(ctx, chatText("bye-1", "conv-bye", "first")); err != nil {
		t.Fatalf("SendRCS: %v", err)
	}
	call, _ := p.next()
	if err := call.dlg.Bye(ctx); err != nil {
		t.Fatalf("phone: BYE: %v", err)
	}
	waitChats(t, e, 0)
	if err := e.SendRCS(ctx, chatText("bye-2", "conv-bye", "second")); err != nil {
		t.Fatalf("SendRCS after BYE: %v", err)
	}
	c2, got := p.next()
	if c2 == call || string(got.Body) != "second" {
		t.Errorf("second message came in the ended session, or as %q", got.Body)
	}
	if invites, pager, _, _ := p.counts(); invites != 2 || pager != 0 {
		t.Errorf("%d INVITEs, %d pager MESSAGEs; want 2 and 0", invites, pager)
	}
}

// An idle session is ended by the edge's BYE; shutdown ends the others.
func TestChatIdleAndShutdown(t *testing.T) {
	p := newChatPhone(t)
	cfg := chatConfig(p)
	cfg.Sessions.IdleTimeout = time.Second
	e := startEdge(t, cfg, newMemReceiver())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.SendRCS(ctx, chatText("idle-1", "conv-idle", "then silence")); err != nil {
		t.Fatalf("SendRCS: %v", err)
	}
	p.next()
	p.wait("BYE after idle_timeout", func(p *chatPhone) bool { return p.byes == 1 })
	waitChats(t, e, 0)

	// Shutdown: a second edge with sessions open, stopped.
	cfg.Sessions.IdleTimeout = time.Hour
	e2, err := NewEdge(cfg, newMemReceiver(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e2.Run(rctx) }()
	defer func() {
		stop()
		<-done
	}()
	for e2.Ready() != nil {
		time.Sleep(5 * time.Millisecond)
	}
	for i := range 3 {
		if err := e2.SendRCS(ctx, chatText("down", fmt.Sprintf("conv-down-%d", i), "open")); err != nil {
			t.Fatalf("SendRCS: %v", err)
		}
		p.next()
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	done <- nil
	p.wait("BYEs at shutdown", func(p *chatPhone) bool { return p.byes == 4 })
}

// When the phone's 200 makes the edge the refresher it sends UPDATE before
// expiry; when the phone is the refresher and does not refresh, the edge
// ends the session with BYE.
func TestChatSessionTimer(t *testing.T) {
	p := newChatPhone(t)
	p.set(func(p *chatPhone) { p.expires = "4;refresher=uac" })
	e := startEdge(t, chatConfig(p), newMemReceiver())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.SendRCS(ctx, chatText("timer-1", "conv-timer-1", "refresh me")); err != nil {
		t.Fatalf("SendRCS: %v", err)
	}
	p.next()
	p.wait("two UPDATEs", func(p *chatPhone) bool { return p.updates >= 2 })
	if _, _, byes, _ := p.counts(); byes != 0 || openChats(e) != 1 {
		t.Errorf("%d BYEs, %d sessions open: the refreshed session should last", byes, openChats(e))
	}

	p.set(func(p *chatPhone) { p.expires = "4;refresher=uas" })
	if err := e.SendRCS(ctx, chatText("timer-2", "conv-timer-2", "do not refresh")); err != nil {
		t.Fatalf("SendRCS: %v", err)
	}
	p.next()
	p.wait("BYE of an unrefreshed session", func(p *chatPhone) bool { return p.byes == 1 })
	waitChats(t, e, 1)
}

// A phone's UPDATE in the dialog of a chat session the edge opened gets
// 200 with the Session-Expires it asked for.
func TestChatPhoneUpdate(t *testing.T) {
	p := newChatPhone(t)
	e := startEdge(t, chatConfig(p), newMemReceiver())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.SendRCS(ctx, chatText("upd-1", "conv-upd", "hello")); err != nil {
		t.Fatalf("SendRCS: %v", err)
	}
	call, _ := p.next()
	req := sip.NewRequest(sip.UPDATE, call.dlg.InviteRequest.Contact().Address)
	req.AppendHeader(sip.NewHeader("Supported", "timer"))
	req.AppendHeader(sip.NewHeader("Session-Expires", "1800;refresher=uac"))
	res, err := call.dlg.Do(ctx, req)
	if err != nil {
		t.Fatalf("phone: UPDATE: %v", err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("UPDATE answered %d", res.StatusCode)
	}
	if h := res.GetHeader("Session-Expires"); h == nil || h.Value() != "1800;refresher=uac" {
		t.Errorf("200 Session-Expires %v", h)
	}
	if h := res.GetHeader("Require"); h == nil || h.Value() != "timer" {
		t.Errorf("200 Require %v", h)
	}
	if openChats(e) != 1 {
		t.Errorf("the session did not survive the UPDATE")
	}
}

// Bounds: past max_outbound a message for a new conversation goes by pager
// mode at once.
func TestChatLimit(t *testing.T) {
	p := newChatPhone(t)
	cfg := chatConfig(p)
	cfg.Sessions.MaxOutbound = 1
	e := startEdge(t, cfg, newMemReceiver())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.SendRCS(ctx, chatText("lim-1", "conv-lim-1", "in a session")); err != nil {
		t.Fatalf("SendRCS: %v", err)
	}
	p.next()
	if err := e.SendRCS(ctx, chatText("lim-2", "conv-lim-2", "by pager")); err != nil {
		t.Fatalf("SendRCS: %v", err)
	}
	if invites, pager, _, _ := p.counts(); invites != 1 || pager != 1 {
		t.Errorf("%d INVITEs, %d pager MESSAGEs; want 1 and 1", invites, pager)
	}
}

// Sessions opened, used and ended by the phone leave no goroutine behind.
func TestChatGoroutines(t *testing.T) {
	p := newChatPhone(t)
	e := startEdge(t, chatConfig(p), newMemReceiver())
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	round := func(i int) {
		if err := e.SendRCS(ctx, chatText(fmt.Sprintf("gr-%d", i), "conv-gr", "hi")); err != nil {
			t.Fatalf("SendRCS %d: %v", i, err)
		}
		call, _ := p.next()
		if err := call.dlg.Bye(ctx); err != nil {
			t.Fatalf("phone: BYE: %v", err)
		}
		waitChats(t, e, 0)
	}
	round(0) // connections up
	base := runtime.NumGoroutine()
	for i := 1; i <= 30; i++ {
		round(i)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= base+5 {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after 30 sessions, %d before\n%s", n, base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSessionExpiresHeader(t *testing.T) {
	for in, want := range map[string]struct {
		refresher string
		interval  time.Duration
	}{
		"1800;refresher=uac":     {"uac", 1800 * time.Second},
		"1800 ; Refresher = UAS": {"uas", 1800 * time.Second},
		"600":                    {"", 600 * time.Second},
		"1":                      {"", 2 * time.Second},
		"abc;refresher=uac":      {"", 0},
		"-5":                     {"", 0},
	} {
		r, d := sessionExpires(sip.NewHeader("Session-Expires", in))
		if r != want.refresher || d != want.interval {
			t.Errorf("sessionExpires(%q) = %q, %s; want %q, %s", in, r, d, want.refresher, want.interval)
		}
	}
}

// A message the phone's MSRP side refuses, or does not answer within
// sessions.send_timeout, goes by pager mode; a refusal keeps the session,
// a timeout ends it (BYE) and the next message opens a new one.
func TestChatSendFailures(t *testing.T) {
	p := newChatPhone(t)
	cfg := chatConfig(p)
	cfg.Sessions.SendTimeout = 500 * time.Millisecond
	e := startEdge(t, cfg, newMemReceiver())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.SendRCS(ctx, chatText("sf-1", "conv-sf", "fine")); err != nil {
		t.Fatalf("SendRCS: %v", err)
	}
	first, _ := p.next()

	p.set(func(p *chatPhone) {
		p.handle = func(context.Context, *msrp.Message) error { return &msrp.StatusError{Code: 415} }
	})
	if err := e.SendRCS(ctx, chatText("sf-2", "conv-sf", "refused in the session")); err != nil {
		t.Fatalf("SendRCS: %v", err)
	}
	p.next()
	if invites, pager, byes, _ := p.counts(); invites != 1 || pager != 1 || byes != 0 || openChats(e) != 1 {
		t.Fatalf("after a 415: %d INVITEs, %d pager, %d BYEs, %d sessions; want 1, 1, 0, 1", invites, pager, byes, openChats(e))
	}

	release := make(chan struct{})
	defer close(release)
	p.set(func(p *chatPhone) {
		p.handle = func(ctx context.Context, _ *msrp.Message) error {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		}
	})
	if err := e.SendRCS(ctx, chatText("sf-3", "conv-sf", "never answered")); err != nil {
		t.Fatalf("SendRCS: %v", err)
	}
	p.next()
	if _, pager, _, _ := p.counts(); pager != 2 {
		t.Fatalf("%d pager MESSAGEs after a SEND without answer, want 2", pager)
	}
	p.wait("BYE of the session whose SEND timed out", func(p *chatPhone) bool { return p.byes == 1 })
	waitChats(t, e, 0)

	p.set(func(p *chatPhone) { p.handle = nil })
	if err := e.SendRCS(ctx, chatText("sf-4", "conv-sf", "new session")); err != nil {
		t.Fatalf("SendRCS: %v", err)
	}
	if c, got := p.next(); c == first || string(got.Body) != "new session" {
		t.Errorf("fourth message in the old session, or as %q", got.Body)
	}
	if invites, pager, _, _ := p.counts(); invites != 2 || pager != 2 {
		t.Errorf("%d INVITEs, %d pager; want 2 and 2", invites, pager)
	}
}

// Messages handed over at once while the session is being opened wait for
// it in its queue: one INVITE, every message in the session; past
// queue_length, the rest go by pager mode at once.
func TestChatConcurrentSends(t *testing.T) {
	p := newChatPhone(t)
	cfg := chatConfig(p)
	cfg.Sessions.QueueLength = 4
	e := startEdge(t, cfg, newMemReceiver())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The phone holds the first message until every send was handed over.
	release := make(chan struct{})
	p.set(func(p *chatPhone) {
		p.handle = func(ctx context.Context, _ *msrp.Message) error {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		}
	})
	const n = 10
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- e.SendRCS(ctx, chatText(fmt.Sprintf("par-%d", i), "conv-par", fmt.Sprintf("parallel %d", i)))
		}()
	}
	// The pager MESSAGEs of the messages the full queue turned away come
	// while the first one is held: at least n-1-queue_length of them.
	p.wait("pager MESSAGEs for a full queue", func(p *chatPhone) bool { return len(p.pager) >= n-1-cfg.Sessions.QueueLength })
	close(release)
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("SendRCS: %v", err)
		}
	}
	invites, pager, _, _ := p.counts()
	if invites != 1 {
		t.Errorf("%d INVITEs for one conversation", invites)
	}
	inSession := len(p.got)
	if inSession+pager != n || inSession < 1 || inSession > cfg.Sessions.QueueLength+1 {
		t.Errorf("%d messages in the session and %d by pager mode, want %d in all, at most %d in the session",
			inSession, pager, n, cfg.Sessions.QueueLength+1)
	}
}

// phoneSessions is how many sessions phones opened the edge may send in.
func phoneSessions(e *Edge) int {
	e.chats.mu.Lock()
	defer e.chats.mu.Unlock()
	return len(e.chats.phones)
}

// phoneReply is a message from the number a phone's session called
// (+15551230002) to that phone, in the session's conversation.
func phoneReply(ref, text string) gateway.OutboundRCS {
	return phoneReplyIn(ref, "conv-session-1", text)
}

// phoneReplyIn is such a message in conversation conv.
func phoneReplyIn(ref, conv, text string) gateway.OutboundRCS {
	m := chatText(ref, conv, text)
	m.From, m.To = "+15551230002", "+15551230001"
	return m
}

// openPhoneSession has a phone open a chat session to the edge, bind its
// MSRP side and send a message in it; what the edge sends in the session
// goes to h.
func openPhoneSession(t *testing.T, e *Edge, recv *testReceiver, h msrp.Handler) (*sipPhone, *call, *msrp.Session) {
	t.Helper()
	sp := newSIPPhone(t, e)
	cl := sp.open()
	s := sp.connectWith(cl, h)
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Send(ctx, sdp.TypeCPIM, []byte(cpimText("phone-1", "hello gateway"))); err != nil {
		t.Fatalf("phone: message in its session: %v", err)
	}
	recv.waitCalls(t, 1)
	// The edge indexes the session once the INVITE's handler is past the
	// ACK, which the MSRP side does not wait for.
	waitExactly(t, "sessions phones opened", 1, func() int { return phoneSessions(e) })
	return sp, cl, s
}

// The gateway's replies to a phone that opened a chat session go in that
// session: no INVITE and no pager MESSAGE reach the phone, each reply is
// accepted on the 200 to its SEND and asks for the IMDNs a pager-mode one
// would, and the phone's IMDN in the session becomes a status report.
// After the phone's BYE the next reply opens a session of the edge's own.
func TestChatInPhoneSession(t *testing.T) {
	p := newChatPhone(t)
	recv := newMemReceiver()
	e := startEdge(t, chatConfig(p), recv)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got := make(chan *msrp.Message, 16)
	sp, cl, s := openPhoneSession(t, e, recv, func(_ context.Context, m *msrp.Message) error {
		got <- m
		return nil
	})

	for i := range 3 {
		m := phoneReply(fmt.Sprintf("reply-%d", i), fmt.Sprintf("reply %d: %s", i, strings.Repeat("ü", i*3000))) // up to two chunks
		if err := e.SendRCS(ctx, m); err != nil {
			t.Fatalf("SendRCS %d: %v", i, err)
		}
		var msg *msrp.Message
		select {
		case msg = <-got:
		default:
			t.Fatalf("reply %d accepted but not in the phone's session", i)
		}
		c, err := cpim.Parse(msg.Body)
		if err != nil {
			t.Fatalf("reply %d: CPIM: %v", i, err)
		}
		if c.MessageID() != m.Ref || string(c.Body) != m.Parts[0].Text {
			t.Fatalf("reply %d arrived as %q with %d bytes", i, c.MessageID(), len(c.Body))
		}
		if !strings.Contains(string(msg.Body), "positive-delivery") {
			t.Errorf("reply %d does not ask for a delivery report:\n%s", i, msg.Body)
		}
	}
	if invites, pager, _, _ := p.counts(); invites != 0 || pager != 0 {
		t.Fatalf("%d INVITEs and %d pager MESSAGEs reached the phone, want none", invites, pager)
	}

	n := imdn.NewDelivered("reply-1", time.Now())
	doc := n.CPIM("sip:+15551230001@ims.test", "sip:+15551230002@mimigw.test", newMessageID())
	if err := s.Send(ctx, cpim.ContentType, doc.Bytes()); err != nil {
		t.Fatalf("phone: IMDN in its session: %v", err)
	}
	recv.waitCalls(t, 1)
	if _, rc, _ := recv.snapshot(); len(rc) != 1 || rc[0].Ref != "reply-1" || rc[0].Status != gateway.StatusDelivered || rc[0].From != "+15551230001" {
		t.Fatalf("receipts %+v, want reply-1 delivered from +15551230001", rc)
	}

	sp.bye(cl)
	waitExactly(t, "sessions phones opened", 0, func() int { return phoneSessions(e) })
	if err := e.SendRCS(ctx, phoneReply("reply-after", "after the BYE")); err != nil {
		t.Fatalf("SendRCS after the BYE: %v", err)
	}
	if _, c := p.next(); c.MessageID() != "reply-after" {
		t.Errorf("the edge's own session carried %q", c.MessageID())
	}
	if invites, pager, _, _ := p.counts(); invites != 1 || pager != 0 {
		t.Errorf("%d INVITEs and %d pager MESSAGEs after the BYE, want 1 and 0", invites, pager)
	}
	if len(got) != 0 {
		t.Errorf("%d messages in the ended session", len(got))
	}
}

// A reply the phone's session does not take (its MSRP side answers 408)
// ends that session with the edge's BYE and goes in a session of the
// edge's own; when that cannot be opened either, by pager mode.
func TestChatPhoneSessionFails(t *testing.T) {
	for _, tc := range []struct {
		name          string
		invite, pager int // what reaches the chat phone
	}{{"own session", 0, 0}, {"pager", 486, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			p := newChatPhone(t)
			p.set(func(p *chatPhone) { p.inviteCode = tc.invite })
			recv := newMemReceiver()
			e := startEdge(t, chatConfig(p), recv)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			sp, cl, _ := openPhoneSession(t, e, recv, func(context.Context, *msrp.Message) error {
				return &msrp.StatusError{Code: 408}
			})
			if err := e.SendRCS(ctx, phoneReply("reply-fb", "elsewhere")); err != nil {
				t.Fatalf("SendRCS: %v", err)
			}
			sp.answerBye(cl)
			invites, pager, _, _ := p.counts()
			if invites != 1 || pager != tc.pager {
				t.Fatalf("%d INVITEs and %d pager MESSAGEs, want 1 and %d", invites, pager, tc.pager)
			}
			if tc.pager == 0 {
				if _, c := p.next(); c.MessageID() != "reply-fb" {
					t.Errorf("the edge's own session carried %q", c.MessageID())
				}
			}
			waitExactly(t, "sessions phones opened", 0, func() int { return phoneSessions(e) })
		})
	}
}

// notifyPhone has the edge report a message of the phone +15551230001 in
// conversation conv delivered.
func notifyPhone(t *testing.T, e *Edge, ref, conv string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n := gateway.Notification{From: "+15551230002", To: "+15551230001", Ref: ref, ConversationID: conv, Status: gateway.StatusDelivered}
	if err := e.Notify(ctx, n); err != nil {
		t.Fatalf("Notify %s: %v", ref, err)
	}
}

// deliveredFor reports whether a CPIM body is an IMDN delivered for ref.
func deliveredFor(body []byte, ref string) bool {
	c, err := cpim.Parse(body)
	if err != nil {
		return false
	}
	n, err := imdn.Parse(c.Body)
	return err == nil && n.MessageID == ref && n.Status == imdn.Delivered
}

// The IMDNs the edge sends a phone about its messages go in the session
// the phone opened for the conversation, or in the edge's own one with the
// phone; with none open, by pager mode, and no session is opened for them.
func TestChatIMDNInSession(t *testing.T) {
	p := newChatPhone(t)
	recv := newMemReceiver()
	e := startEdge(t, chatConfig(p), recv)
	got := make(chan *msrp.Message, 16)
	sp, cl, _ := openPhoneSession(t, e, recv, func(_ context.Context, m *msrp.Message) error {
		got <- m
		return nil
	})

	notifyPhone(t, e, "phone-1", "conv-session-1")
	select {
	case m := <-got:
		if !deliveredFor(m.Body, "phone-1") {
			t.Fatalf("the phone's session carried, for an IMDN:\n%s", m.Body)
		}
	default:
		t.Fatal("IMDN accepted but not in the phone's session")
	}
	if invites, pager, _, _ := p.counts(); invites != 0 || pager != 0 {
		t.Fatalf("%d INVITEs and %d pager MESSAGEs, want none", invites, pager)
	}

	// In the edge's own session with the phone, opened by a reply in
	// another conversation.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.SendRCS(ctx, phoneReplyIn("reply-own", "conv-own", "in our session")); err != nil {
		t.Fatalf("SendRCS: %v", err)
	}
	own, _ := p.next()
	notifyPhone(t, e, "phone-own", "conv-own")
	select {
	case pm := <-p.got:
		if pm.call != own || !deliveredFor(pm.m.Body, "phone-own") {
			t.Fatalf("the edge's session carried, for an IMDN:\n%s", pm.m.Body)
		}
	default:
		t.Fatal("IMDN accepted but not in the edge's session")
	}

	// The phone's session ended: by pager mode.
	sp.bye(cl)
	waitExactly(t, "sessions phones opened", 0, func() int { return phoneSessions(e) })
	notifyPhone(t, e, "phone-2", "conv-session-1")
	invites, pager, _, _ := p.counts()
	if invites != 1 || pager != 1 {
		t.Fatalf("%d INVITEs and %d pager MESSAGEs, want 1 and 1", invites, pager)
	}
	p.mu.Lock()
	body := p.pager[0].Body()
	p.mu.Unlock()
	if !deliveredFor(body, "phone-2") {
		t.Errorf("pager MESSAGE:\n%s", body)
	}
}

// A phone that ends its session while a reply in it waits for its 200:
// the send gives up at once (not at send_timeout, nor at the 30 s MSRP
// transaction timeout) and the reply goes in a session of the edge's own.
func TestChatPhoneSessionEndsWhileSending(t *testing.T) {
	p := newChatPhone(t)
	cfg := chatConfig(p)
	cfg.Sessions.SendTimeout = 5 * time.Minute
	recv := newMemReceiver()
	e := startEdge(t, cfg, recv)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	held, release := make(chan struct{}, 1), make(chan struct{})
	defer close(release)
	sp, cl, _ := openPhoneSession(t, e, recv, func(ctx context.Context, _ *msrp.Message) error {
		held <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})
	sent := make(chan error, 1)
	go func() { sent <- e.SendRCS(ctx, phoneReply("reply-held", "held")) }()
	select {
	case <-held:
	case <-ctx.Done():
		t.Fatal("the reply did not reach the phone's session")
	}
	sp.bye(cl)
	select {
	case err := <-sent:
		if err != nil {
			t.Fatalf("SendRCS: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("SendRCS still waits on the ended session after 20s")
	}
	if _, c := p.next(); c.MessageID() != "reply-held" {
		t.Errorf("the edge's own session carried %q", c.MessageID())
	}
	if invites, pager, _, _ := p.counts(); invites != 1 || pager != 0 {
		t.Errorf("%d INVITEs and %d pager MESSAGEs, want 1 and 0", invites, pager)
	}
}

// A phone refreshing a chat session the edge opened, by a re-INVITE or an
// UPDATE repeating its answer as an offer, gets 200 with the edge's offer
// restated as an answer: the edge's a=path, its role as negotiated, the
// o= version one up from its offer, the same bytes each time. An offer
// moving the phone's MSRP endpoint gets 488, and the session carries the
// next message.
func TestChatPhoneReoffer(t *testing.T) {
	p := newChatPhone(t)
	e := startEdge(t, chatConfig(p), newMemReceiver())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.SendRCS(ctx, chatText("reo-1", "conv-reo", "hello")); err != nil {
		t.Fatalf("SendRCS: %v", err)
	}
	call, _ := p.next()
	ours, err := sdp.Parse(call.dlg.InviteRequest.Body())
	if err != nil {
		t.Fatal(err)
	}
	theirs := string(call.dlg.InviteResponse.Body())
	offerIn := func(method sip.RequestMethod, body string) *sip.Response {
		t.Helper()
		req := sip.NewRequest(method, call.dlg.InviteRequest.Contact().Address)
		req.AppendHeader(sip.NewHeader("Content-Type", sdp.ContentType))
		req.SetBody([]byte(body))
		res, err := call.dlg.Do(ctx, req)
		if err != nil {
			t.Fatalf("phone: %s: %v", method, err)
		}
		if method == sip.INVITE && res.IsSuccess() {
			if err := call.dlg.WriteRequest(sip.NewRequest(sip.ACK, req.Recipient)); err != nil {
				t.Fatalf("phone: ACK: %v", err)
			}
		}
		return res
	}
	var first []byte
	for _, method := range []sip.RequestMethod{sip.INVITE, sip.UPDATE, sip.INVITE} {
		res := offerIn(method, theirs)
		if res.StatusCode != 200 {
			t.Fatalf("%s repeating the session answered %d %s", method, res.StatusCode, res.Reason)
		}
		if first == nil {
			first = res.Body()
		} else if !bytes.Equal(res.Body(), first) {
			t.Errorf("%s: the answer changed:\n%s\nwas\n%s", method, res.Body(), first)
		}
	}
	ans, err := sdp.Parse(first)
	if err != nil {
		t.Fatalf("answer: %v\n%s", err, first)
	}
	m, err := ans.MSRP(0)
	if err != nil {
		t.Fatal(err)
	}
	om, _ := ours.MSRP(0)
	theirsParsed, _ := sdp.Parse([]byte(theirs))
	neg, err := sdp.Negotiate(ours, theirsParsed, sdp.Offerer)
	if err != nil {
		t.Fatal(err)
	}
	want := sdp.SetupPassive
	if neg.Active {
		want = sdp.SetupActive
	}
	if m.Local() != om.Local() || m.Setup != want {
		t.Errorf("answer path %v setup %q, want %v and %q", m.Path, m.Setup, om.Path, want)
	}
	v, _ := strconv.Atoi(ours.Origin.SessionVersion)
	if ans.Origin.SessionID != ours.Origin.SessionID || ans.Origin.SessionVersion != strconv.Itoa(v+1) {
		t.Errorf("answer o= %s %s, want %s %d", ans.Origin.SessionID, ans.Origin.SessionVersion, ours.Origin.SessionID, v+1)
	}

	moved := strings.Replace(theirs, ";tcp", "x;tcp", 1)
	if res := offerIn(sip.UPDATE, moved); res.StatusCode != 488 {
		t.Errorf("an offer moving the phone's endpoint answered %d, want 488", res.StatusCode)
	}
	if err := e.SendRCS(ctx, chatText("reo-2", "conv-reo", "still here")); err != nil {
		t.Fatalf("SendRCS after the offers: %v", err)
	}
	if again, got := p.next(); again != call || got.MessageID() != "reo-2" {
		t.Errorf("the next message came in another session (%s)", got.MessageID())
	}
}
