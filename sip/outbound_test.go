package sip

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/sip/sipptest"
)

// tcpPeer plays the IMS core over TCP: it reads requests off one port and
// answers each with the given status, echoing the transaction headers. It
// hands every request it read to got.
type tcpPeer struct {
	l    net.Listener
	code int
	got  chan string
}

func newTCPPeer(t *testing.T, port, code int) *tcpPeer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("listen tcp %d: %v", port, err)
	}
	p := &tcpPeer{l: l, code: code, got: make(chan string, 16)}
	t.Cleanup(func() { l.Close() })
	go p.serve()
	return p
}

func (p *tcpPeer) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			r := textproto.NewReader(bufio.NewReader(c))
			for {
				start, err := r.ReadLine()
				if err != nil {
					return
				}
				h, err := r.ReadMIMEHeader()
				if err != nil {
					return
				}
				n, _ := strconv.Atoi(h.Get("Content-Length"))
				body := make([]byte, n)
				if _, err := io.ReadFull(r.R, body); err != nil {
					return
				}
				p.got <- start + "\r\nVia: " + h.Get("Via") + "\r\n\r\n" + string(body)
				var b strings.Builder
				fmt.Fprintf(&b, "SIP/2.0 %d Whatever\r\n", p.code)
				for _, name := range []string{"Via", "From", "Call-Id", "Cseq"} {
					for _, v := range h.Values(name) {
						fmt.Fprintf(&b, "%s: %s\r\n", name, v)
					}
				}
				fmt.Fprintf(&b, "To: %s;tag=peer\r\nContent-Length: 0\r\n\r\n", h.Get("To"))
				c.Write([]byte(b.String()))
			}
		}()
	}
}

// Over 1300 bytes toward a UDP proxy the MESSAGE goes over TCP to the same
// address; with large_over_tcp off it is not sent and fails with
// gateway.ErrTooLarge (SMS fallback, the number still RCS-capable).
func TestLargeMessageNeverOverUDP(t *testing.T) {
	port := sipptest.FreePort(t, "tcp")
	peer := newTCPPeer(t, port, 202)
	// Nothing listens on the UDP port: a MESSAGE sent there would time out.
	cfg := testConfig()
	cfg.OutboundProxy = "sip:127.0.0.1:" + strconv.Itoa(port) + ";transport=udp"
	e := startEdge(t, cfg, newMemReceiver())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m := outboundText("big-1")
	m.Parts = []gateway.Part{{Text: strings.Repeat("long text ", 200)}}
	if err := e.SendRCS(ctx, m); err != nil {
		t.Fatalf("SendRCS: %v", err)
	}
	select {
	case req := <-peer.got:
		if !strings.HasPrefix(req, "MESSAGE ") || !strings.Contains(req, "SIP/2.0/TCP") || !strings.Contains(req, "imdn.Message-ID: big-1") {
			t.Fatalf("the peer got %.300q", req)
		}
	case <-ctx.Done():
		t.Fatal("nothing arrived over TCP")
	}

	cfg.LargeOverTCP = new(bool)
	e2 := startEdge(t, cfg, newMemReceiver())
	err := e2.SendRCS(ctx, m)
	if !errors.Is(err, gateway.ErrTooLarge) || errors.Is(err, gateway.ErrNotRCS) {
		t.Fatalf("SendRCS with large_over_tcp off = %v, want gateway.ErrTooLarge", err)
	}
	select {
	case req := <-peer.got:
		t.Fatalf("sent anyway: %.200q", req)
	default:
	}
}

// A TCP outbound proxy gets the UP headers and the CPIM body; an FT-HTTP
// file goes as a descriptor; Notify sends an IMDN with a new message id.
func TestOutboundOverTCP(t *testing.T) {
	port := sipptest.FreePort(t, "tcp")
	peer := newTCPPeer(t, port, 202)
	cfg := testConfig()
	cfg.OutboundProxy = "sip:127.0.0.1:" + strconv.Itoa(port) + ";transport=tcp"
	cfg.URIForm = "tel"
	e := startEdge(t, cfg, newMemReceiver())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	file := outboundText("file-1")
	file.Parts = []gateway.Part{{File: &gateway.File{URL: "https://ft.example/f", Name: "a.jpg", ContentType: "image/jpeg", Size: 123,
		Thumbnail: &gateway.File{URL: "https://ft.example/t", ContentType: "image/jpeg", Size: 9}}}}
	if err := e.SendRCS(ctx, file); err != nil {
		t.Fatalf("SendRCS: %v", err)
	}
	req := <-peer.got
	for _, want := range []string{"MESSAGE tel:+15551230002 SIP/2.0", "imdn.Message-ID: file-1",
		"Content-Type: application/vnd.gsma.rcs-ft-http+xml", "https://ft.example/f", "https://ft.example/t",
		"imdn.Disposition-Notification: positive-delivery, negative-delivery"} {
		if !strings.Contains(req, want) {
			t.Errorf("MESSAGE lacks %q:\n%s", want, req)
		}
	}

	err := e.Notify(ctx, gateway.Notification{From: "+15551230002", To: "+15551230001", Ref: "orig-9", Status: gateway.StatusRead})
	if err != nil {
		t.Fatalf("Notify: %v", err)
	}
	req = <-peer.got
	for _, want := range []string{"Content-Type: message/imdn+xml", "Content-Disposition: notification",
		"<message-id>orig-9</message-id>", "<displayed/>"} {
		if !strings.Contains(req, want) {
			t.Errorf("IMDN lacks %q:\n%s", want, req)
		}
	}
	if strings.Contains(req, "imdn.Message-ID: orig-9") {
		t.Errorf("the IMDN reuses the original's message id:\n%s", req)
	}
}

func TestAnswerErrors(t *testing.T) {
	for _, tc := range []struct {
		code int
		want error
	}{
		{404, gateway.ErrNotRCS}, {410, gateway.ErrNotRCS}, {604, gateway.ErrNotRCS},
		{408, gateway.ErrOffline}, {480, gateway.ErrOffline},
		{403, gateway.ErrRejected}, {488, gateway.ErrRejected}, {603, gateway.ErrRejected}, {302, gateway.ErrRejected},
		{500, gateway.ErrUnavailable}, {503, gateway.ErrUnavailable},
	} {
		res := sip.NewResponse(tc.code, "Reason\r\nInjected: x")
		err := answerError(res)
		if !errors.Is(err, tc.want) {
			t.Errorf("%d: %v, want %v", tc.code, err, tc.want)
		}
		if strings.ContainsAny(err.Error(), "\r\n") {
			t.Errorf("%d: error carries control characters: %q", tc.code, err)
		}
	}
}

func TestContentRules(t *testing.T) {
	e := &Edge{}
	ct, body, err := e.content([]gateway.Part{{Text: "a"}, {Text: "b"}})
	if err != nil || ct != "text/plain;charset=UTF-8" || string(body) != "a\nb" {
		t.Errorf("texts: %q %q %v", ct, body, err)
	}
	ct, body, err = e.content([]gateway.Part{{ContentType: "application/vnd.gsma.botmessage.v1.0+json", Data: []byte("{}")}})
	if err != nil || ct != "application/vnd.gsma.botmessage.v1.0+json" || string(body) != "{}" {
		t.Errorf("data: %q %q %v", ct, body, err)
	}
	for _, parts := range [][]gateway.Part{nil, {{Text: "a"}, {File: &gateway.File{URL: "https://x", ContentType: "a/b"}}}, {{Data: []byte("x")}}} {
		if _, _, err := e.content(parts); !errors.Is(err, gateway.ErrRejected) {
			t.Errorf("parts %+v: %v, want ErrRejected", parts, err)
		}
	}
}

// No answer within timeouts.request: SendRCS gives ErrOffline,
// Capabilities an error wrapping ErrUnavailable.
func TestNoAnswer(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0") // takes requests, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	cfg := testConfig()
	cfg.OutboundProxy = "sip:" + pc.LocalAddr().String() + ";transport=udp"
	cfg.Timeouts.Request = 300 * time.Millisecond
	e := startEdge(t, cfg, newMemReceiver())
	ctx := context.Background()
	if err := e.SendRCS(ctx, outboundText("lost-1")); !errors.Is(err, gateway.ErrOffline) {
		t.Errorf("SendRCS = %v, want ErrOffline", err)
	}
	if _, err := e.Capabilities(ctx, "+15551230002"); !errors.Is(err, gateway.ErrUnavailable) || errors.Is(err, gateway.ErrOffline) {
		t.Errorf("Capabilities = %v, want ErrUnavailable", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := e.SendRCS(cctx, outboundText("lost-2")); !errors.Is(err, context.Canceled) {
		t.Errorf("SendRCS with a cancelled context = %v, want context.Canceled", err)
	}
}
