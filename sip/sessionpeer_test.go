package sip

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipmsg "github.com/emiago/sipgo/sip"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/gateway/identity"
	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/bus/bustest"
	"github.com/mimigw/mimigw/sip/msrp"
	"github.com/mimigw/mimigw/sip/sdp"
)

// Peers for the session benchmarks and the leak tests.
//
// sipgoPhone is a phone built from parts the edge also uses on its own
// side: sipgo's dialog client for INVITE, ACK and BYE, a msrp.Pool as the
// MSRP client (every session to the edge shares the pool's one
// connection), sip/sdp for the offer.
//
// sipLine and msrpLine are a lighter phone written by hand over one SIP
// TCP connection and one MSRP TCP connection, each with one reader
// goroutine whatever the number of sessions it carries: they keep the
// test side of 10,000 idle sessions down to a few strings a session, so
// that what grows is the edge, and they can end a session badly (a
// chunk cut in the middle, a session never bound, a CANCEL).

// phoneWait bounds every wait for an answer from the edge.
const phoneWait = 30 * time.Second

// durableGateway is the production path behind the edge: the real gateway
// storing each message (and, for an RCS message asking for notifications,
// its delivery record) on JetStream with a file store before it returns.
func durableGateway(t testing.TB) (*gateway.Gateway, *bus.Bus) {
	t.Helper()
	srv := bustest.NewServer(t)
	b := srv.Bus(t, bustest.WithConfig(func(c *bus.Config) { c.PublishTimeout = 10 * time.Second }))
	ids, err := identity.New(b.Identity(), identity.Config{Domain: "gw.example.net"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := gateway.DefaultConfig()
	cfg.Channel = gateway.ChannelRCS
	g, err := gateway.New(context.Background(), cfg, b, ids, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	return g, b
}

// sipgoPhone opens chat sessions to an edge over one SIP TCP connection.
type sipgoPhone struct {
	edge  *Edge
	ua    *sipgo.UserAgent
	cli   *sipgo.Client
	dc    *sipgo.DialogClientCache
	pool  *msrp.Pool
	dials *atomic.Int64 // MSRP connections the pool opened
}

func newSipgoPhone(t testing.TB, e *Edge) *sipgoPhone {
	t.Helper()
	var dials atomic.Int64
	var d net.Dialer
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("+15551230001"), sipgo.WithUserAgentHostname("ims.test"))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	pool, err := msrp.NewPool(msrp.Config{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return d.DialContext(ctx, network, addr)
	}})
	if err != nil {
		t.Fatal(err)
	}
	contact := sipmsg.ContactHeader{Address: sipmsg.Uri{Scheme: "sip", User: "+15551230001", Host: "127.0.0.1"}}
	p := &sipgoPhone{edge: e, ua: ua, cli: cli, dc: sipgo.NewDialogClientCache(cli, contact), pool: pool, dials: &dials}
	t.Cleanup(func() {
		pool.Close()
		cli.Close()
		ua.Close()
	})
	return p
}

// sipgoChat is one open chat session of a sipgoPhone.
type sipgoChat struct {
	d *sipgo.DialogClientSession
	s *msrp.Session
}

// open sends an INVITE with an MSRP offer (the phone active), waits for
// the 200, ACKs it and binds the MSRP session.
func (p *sipgoPhone) open(ctx context.Context) (*sipgoChat, error) {
	local := msrp.URI{Host: "127.0.0.1", Port: 9, SessionID: msrp.NewSessionID(), Transport: "tcp"}
	offer, err := sdp.Offer(sdp.OfferOptions{Path: []msrp.URI{local}, Setup: sdp.SetupActive,
		AcceptTypes: []string{sdp.TypeCPIM}, AcceptWrappedTypes: []string{sdp.TypeText, sdp.TypeIMDN}})
	if err != nil {
		return nil, err
	}
	port := p.edge.Addr("tcp").(*net.TCPAddr).Port
	recipient := sipmsg.Uri{Scheme: "sip", User: "+15551230002", Host: "127.0.0.1", Port: port,
		UriParams: sipmsg.HeaderParams{{K: "transport", V: "tcp"}}}
	from := &sipmsg.FromHeader{Address: sipmsg.Uri{Scheme: "sip", User: "+15551230001", Host: "ims.test"}}
	from.Params.Add("tag", sipmsg.GenerateTagN(12))
	d, err := p.dc.Invite(ctx, recipient, offer.Bytes(),
		from,
		sipmsg.NewHeader("Content-Type", sdp.ContentType),
		sipmsg.NewHeader("Accept-Contact", `*;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.session"`),
		sipmsg.NewHeader("Conversation-ID", "conv-bench"))
	if err != nil {
		return nil, fmt.Errorf("INVITE: %w", err)
	}
	if err := d.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		d.Close()
		return nil, fmt.Errorf("INVITE answer: %w", err)
	}
	if err := d.Ack(ctx); err != nil {
		d.Close()
		return nil, fmt.Errorf("ACK: %w", err)
	}
	answer, err := sdp.Parse(d.InviteResponse.Body())
	if err != nil {
		return nil, fmt.Errorf("200 SDP: %w", err)
	}
	neg, err := sdp.Negotiate(offer, answer, sdp.Offerer)
	if err != nil {
		return nil, fmt.Errorf("negotiate: %w", err)
	}
	s, err := p.pool.NewSession(neg.SessionConfig())
	if err != nil {
		return nil, err
	}
	if err := s.Connect(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("MSRP bind: %w", err)
	}
	return &sipgoChat{d: d, s: s}, nil
}

// close sends BYE and ends the MSRP session.
func (c *sipgoChat) close(ctx context.Context) error {
	err := c.d.Bye(ctx)
	c.s.Close()
	c.d.Close()
	return err
}

// sipLine is one SIP TCP connection to the edge, written by hand. Its
// reader hands final responses to whoever waits for them (by Call-ID and
// CSeq) and answers the edge's own requests (the BYE of a session it
// ends) with 200.
type sipLine struct {
	c    net.Conn
	wmu  sync.Mutex
	mu   sync.Mutex
	wait map[string]chan string
	byes atomic.Int64 // BYEs the edge sent
	done chan struct{}
}

func dialSIPLine(t testing.TB, e *Edge) *sipLine {
	t.Helper()
	c, err := net.Dial("tcp", e.Addr("tcp").String())
	if err != nil {
		t.Fatal(err)
	}
	l := &sipLine{c: c, wait: map[string]chan string{}, done: make(chan struct{})}
	go l.read()
	t.Cleanup(l.close)
	return l
}

// close drops the connection and waits for the reader.
func (l *sipLine) close() {
	l.c.Close()
	<-l.done
}

func (l *sipLine) write(s string) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	_, err := io.WriteString(l.c, s)
	return err
}

func (l *sipLine) read() {
	defer close(l.done)
	br := bufio.NewReaderSize(l.c, 32<<10)
	for {
		msg, err := readSIP(br)
		if err != nil {
			return
		}
		if strings.HasPrefix(msg, "SIP/2.0 ") {
			if code, _ := status(msg); code < 200 {
				continue
			}
			key := headerValue(msg, "Call-ID") + "|" + headerValue(msg, "CSeq")
			l.mu.Lock()
			ch := l.wait[key]
			delete(l.wait, key)
			l.mu.Unlock()
			if ch != nil {
				ch <- msg
			}
			continue
		}
		if strings.HasPrefix(msg, "BYE ") {
			l.byes.Add(1)
		}
		res := "SIP/2.0 200 OK\r\n"
		for _, h := range []string{"Via", "From", "To", "Call-ID", "CSeq"} {
			res += h + ": " + headerValue(msg, h) + "\r\n"
		}
		if l.write(res+"Content-Length: 0\r\n\r\n") != nil {
			return
		}
	}
}

// readSIP reads one message framed by Content-Length.
func readSIP(br *bufio.Reader) (string, error) {
	var b strings.Builder
	n := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", err
		}
		if line == "\r\n" {
			if b.Len() == 0 {
				continue // keepalive
			}
			b.WriteString(line)
			break
		}
		b.WriteString(line)
		if k, v, ok := strings.Cut(line, ":"); ok {
			if k = strings.TrimSpace(k); strings.EqualFold(k, "Content-Length") || k == "l" {
				n, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
	}
	if n > 0 {
		body := make([]byte, n)
		if _, err := io.ReadFull(br, body); err != nil {
			return "", err
		}
		b.Write(body)
	}
	return b.String(), nil
}

// expect registers interest in the final response for callID and cseq
// ("1 INVITE"); call it before writing the request.
func (l *sipLine) expect(callID, cseq string) chan string {
	ch := make(chan string, 1)
	l.mu.Lock()
	l.wait[callID+"|"+cseq] = ch
	l.mu.Unlock()
	return ch
}

func (l *sipLine) await(ch chan string, what string) (string, error) {
	t := time.NewTimer(phoneWait)
	defer t.Stop()
	select {
	case m := <-ch:
		return m, nil
	case <-l.done:
		return "", fmt.Errorf("%s: SIP connection closed", what)
	case <-t.C:
		return "", fmt.Errorf("%s: no final answer within %v", what, phoneWait)
	}
}

// rawCall is one session of the hand-written phone.
type rawCall struct {
	callID, branch string
	to             string // with the edge's tag
	cfg            msrp.SessionConfig
	offer          *sdp.Session
}

// newCall makes the offer of a session whose MSRP side will be m's
// connection (the phone active).
func newCall(m *msrpLine) (*rawCall, error) {
	a := m.c.LocalAddr().(*net.TCPAddr)
	local := msrp.URI{Host: "127.0.0.1", Port: a.Port, SessionID: msrp.NewSessionID(), Transport: "tcp"}
	offer, err := sdp.Offer(sdp.OfferOptions{Path: []msrp.URI{local}, Setup: sdp.SetupActive,
		AcceptTypes: []string{sdp.TypeCPIM}, AcceptWrappedTypes: []string{sdp.TypeText, sdp.TypeIMDN}})
	if err != nil {
		return nil, err
	}
	return &rawCall{callID: newMessageID(), branch: "z9hG4bK-" + newMessageID(), offer: offer}, nil
}

func (l *sipLine) req(method string, cl *rawCall, branch, to, ct, body string, extra ...string) string {
	return request{method: method, transport: "TCP", local: l.c.LocalAddr(), callID: cl.callID, branch: branch,
		to: to, contentType: ct, body: body, extra: extra}.String()
}

// chatHeaders are an RCS chat INVITE's, the Contact at this line's own
// address: the edge sends its BYE there, on this connection.
func (l *sipLine) chatHeaders() []string {
	return []string{
		`Contact: <sip:+15551230001@` + l.c.LocalAddr().String() + `;transport=tcp>;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.session"`,
		`Accept-Contact: *;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.session"`,
		"Conversation-ID: conv-raw",
	}
}

// open sends the INVITE, waits for the 200 and ACKs it; the MSRP side is
// not bound yet.
func (l *sipLine) open(cl *rawCall) error {
	ch := l.expect(cl.callID, "1 INVITE")
	if err := l.write(l.req("INVITE", cl, cl.branch, "", sdp.ContentType, cl.offer.String(), l.chatHeaders()...)); err != nil {
		return err
	}
	a, err := l.await(ch, "INVITE")
	if err != nil {
		return err
	}
	if code, reason := status(a); code != 200 {
		return fmt.Errorf("INVITE answered %d %s", code, reason)
	}
	// Copies, so that a session held open keeps neither the 200 nor the
	// SDP: the idle-session figures are the edge's.
	cl.to = strings.Clone(headerValue(a, "To"))
	_, body, _ := strings.Cut(a, "\r\n\r\n")
	answer, err := sdp.Parse([]byte(body))
	if err != nil {
		return fmt.Errorf("200 SDP: %w", err)
	}
	neg, err := sdp.Negotiate(cl.offer, answer, sdp.Offerer)
	if err != nil {
		return err
	}
	cfg := neg.SessionConfig()
	cl.cfg = msrp.SessionConfig{Local: cfg.Local, Remote: slices.Clone(cfg.Remote)}
	cl.offer = nil
	return l.write(l.req("ACK", cl, "z9hG4bK-"+newMessageID(), cl.to, "", ""))
}

// bye ends a session from the phone and checks the 200.
func (l *sipLine) bye(cl *rawCall) error {
	ch := l.expect(cl.callID, "1 BYE")
	if err := l.write(l.req("BYE", cl, "z9hG4bK-"+newMessageID(), cl.to, "", "")); err != nil {
		return err
	}
	a, err := l.await(ch, "BYE")
	if err != nil {
		return err
	}
	if code, reason := status(a); code != 200 {
		return fmt.Errorf("BYE answered %d %s", code, reason)
	}
	return nil
}

// cancel sends an INVITE and, once held is closed (the edge has it), a
// CANCEL: 200 to the CANCEL, 487 to the INVITE.
func (l *sipLine) cancel(cl *rawCall, held <-chan struct{}) error {
	inv := l.expect(cl.callID, "1 INVITE")
	can := l.expect(cl.callID, "1 CANCEL")
	if err := l.write(l.req("INVITE", cl, cl.branch, "", sdp.ContentType, cl.offer.String(), l.chatHeaders()...)); err != nil {
		return err
	}
	select {
	case <-held:
	case <-time.After(phoneWait):
		return errors.New("INVITE not held by the edge")
	}
	if err := l.write(l.req("CANCEL", cl, cl.branch, "", "", "")); err != nil {
		return err
	}
	for _, w := range []struct {
		ch   chan string
		what string
		want int
	}{{can, "CANCEL", 200}, {inv, "cancelled INVITE", 487}} {
		a, err := l.await(w.ch, w.what)
		if err != nil {
			return err
		}
		if code, reason := status(a); code != w.want {
			return fmt.Errorf("%s answered %d %s, want %d", w.what, code, reason, w.want)
		}
	}
	return nil
}

// msrpLine is one MSRP TCP connection to the edge, written by hand: one
// reader goroutine hands responses to whoever waits for them by
// transaction ID.
type msrpLine struct {
	c    net.Conn
	wmu  sync.Mutex
	buf  []byte
	mu   sync.Mutex
	wait map[string]chan *msrp.Frame
	done chan struct{}
}

func dialMSRPLine(t testing.TB, e *Edge) *msrpLine {
	t.Helper()
	c, err := net.Dial("tcp", e.Addr("msrp").String())
	if err != nil {
		t.Fatal(err)
	}
	m := &msrpLine{c: c, wait: map[string]chan *msrp.Frame{}, done: make(chan struct{})}
	go m.read()
	t.Cleanup(m.close)
	return m
}

func (m *msrpLine) close() {
	m.c.Close()
	<-m.done
}

func (m *msrpLine) read() {
	defer close(m.done)
	r := msrp.NewReader(m.c, msrp.Limits{})
	for {
		f, err := r.Next()
		var fe *msrp.FrameError
		if errors.As(err, &fe) {
			continue
		}
		if err != nil {
			return
		}
		if f.IsRequest() {
			continue // REPORTs: none asked for
		}
		m.mu.Lock()
		ch := m.wait[f.TID]
		delete(m.wait, f.TID)
		m.mu.Unlock()
		if ch != nil {
			ch <- f
		}
	}
}

// sessionFrame makes f a SEND of the session: paths, a fresh transaction
// ID, a Message-ID and an end-line flag where f has none.
func sessionFrame(cl *rawCall, f *msrp.Frame) *msrp.Frame {
	f.Method = msrp.MethodSEND
	f.ToPath = cl.cfg.Remote
	f.FromPath = []msrp.URI{cl.cfg.Local}
	f.TID = msrp.NewTID()
	if f.MessageID == "" {
		f.MessageID = msrp.NewTID()
	}
	if f.Flag == 0 {
		f.Flag = msrp.FlagEnd
	}
	return f
}

func (m *msrpLine) writeFrame(f *msrp.Frame, cut int) error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	b, err := f.AppendTo(m.buf[:0])
	if err != nil {
		return err
	}
	m.buf = b
	if cut > 0 && cut < len(b) {
		b = b[:cut]
	}
	_, err = m.c.Write(b)
	return err
}

// roundTrip writes a request and returns the code of its response.
func (m *msrpLine) roundTrip(f *msrp.Frame) (int, error) {
	ch := make(chan *msrp.Frame, 1)
	m.mu.Lock()
	m.wait[f.TID] = ch
	m.mu.Unlock()
	if err := m.writeFrame(f, 0); err != nil {
		return 0, err
	}
	t := time.NewTimer(phoneWait)
	defer t.Stop()
	select {
	case res := <-ch:
		return res.Code, nil
	case <-m.done:
		return 0, errors.New("MSRP connection closed")
	case <-t.C:
		return 0, fmt.Errorf("no response to SEND %s within %v", f.TID, phoneWait)
	}
}

// bind sends the empty SEND that binds the connection to the session.
func (m *msrpLine) bind(cl *rawCall) error {
	code, err := m.roundTrip(sessionFrame(cl, &msrp.Frame{}))
	if err == nil && code != 200 {
		err = fmt.Errorf("binding SEND answered %d", code)
	}
	return err
}

// send sends one CPIM message in one chunk and checks the 200.
func (m *msrpLine) send(cl *rawCall, body string) error {
	f := sessionFrame(cl, &msrp.Frame{ContentType: sdp.TypeCPIM, Body: []byte(body),
		ByteRange: msrp.ByteRange{Start: 1, End: int64(len(body)), Total: int64(len(body))}})
	code, err := m.roundTrip(f)
	if err == nil && code != 200 {
		err = fmt.Errorf("SEND answered %d", code)
	}
	return err
}

// sendCut writes the first chunk of a two-chunk message only up to the
// middle of its body: the connection is then in the middle of a frame.
func (m *msrpLine) sendCut(cl *rawCall, body string) error {
	half := len(body) / 2
	f := sessionFrame(cl, &msrp.Frame{ContentType: sdp.TypeCPIM, Body: []byte(body[:half]), Flag: msrp.FlagMore,
		ByteRange: msrp.ByteRange{Start: 1, End: int64(half), Total: int64(len(body))}})
	b, err := f.AppendTo(nil)
	if err != nil {
		return err
	}
	return m.writeFrame(f, len(b)-len(body[:half])/2)
}

// vmRSS is the resident set of this process in bytes, from
// /proc/self/status (VmRSS); 0 where there is no /proc.
func vmRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// heapInUse is the Go heap in use after a collection: the bytes of live
// objects (MemStats.HeapAlloc), not the spans holding them (HeapInuse,
// which keeps partly used spans of freed objects).
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// loadAvg is /proc/loadavg's first three fields, for the log.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// waitGoroutines polls runtime.NumGoroutine until it is back within slack
// of base, failing the test with every stack after wait.
func waitGoroutines(t testing.TB, base, slack int, wait time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		n := runtime.NumGoroutine()
		if n <= base+slack {
			return n
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d at the start (slack %d)\n%s", n, base, slack, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
