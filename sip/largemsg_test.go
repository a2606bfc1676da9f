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

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/sip/msrp"
	"github.com/mimigw/mimigw/sip/sdp"
	"github.com/mimigw/mimigw/sip/sipptest"
)

// largeText is a message pager mode cannot carry under a max_body of 4 KiB.
func largeText(ref string) gateway.OutboundRCS {
	m := outboundText(ref)
	m.Parts = []gateway.Part{{Text: strings.Repeat("0123456789", 2000)}}
	m.LargeMessage = true
	return m
}

// A 20 KB message to a phone that takes large message mode goes by an
// INVITE and an MSRP session, and arrives whole at the other side (a second
// edge with sessions on, playing the phone).
func TestLargeMessageOutbound(t *testing.T) {
	phoneRecv := newMemReceiver()
	phone := startEdge(t, sessionConfig(), phoneRecv)
	cfg := sessionConfig()
	cfg.MaxBody = 4096
	cfg.OutboundProxy = "sip:" + phone.Addr("tcp").String() + ";transport=tcp"
	e := startEdge(t, cfg, newMemReceiver())
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	m := largeText("large-out-1")
	if err := e.SendRCS(ctx, m); err != nil {
		t.Fatalf("SendRCS: %v", err)
	}
	in, _, _ := phoneRecv.snapshot()
	if len(in) != 1 {
		t.Fatalf("the phone side got %d messages, want 1", len(in))
	}
	got := in[0]
	if got.Ref != "large-out-1" || got.From != m.From || got.To != m.To || len(got.Parts) != 1 || got.Parts[0].Text != m.Parts[0].Text {
		t.Errorf("the phone side got ref %q from %s to %s, %d parts", got.Ref, got.From, got.To, len(got.Parts))
	}
	if got.ConversationID != "conv-1" {
		t.Errorf("Conversation-ID %q", got.ConversationID)
	}

	// Without LargeMessage the same message is too large for RCS.
	m = largeText("large-out-2")
	m.LargeMessage = false
	if err := e.SendRCS(ctx, m); !errors.Is(err, gateway.ErrTooLarge) {
		t.Errorf("SendRCS without large message mode: %v, want ErrTooLarge", err)
	}
}

// A phone that answers the INVITE 488 makes SendRCS fail as a refused
// MESSAGE would, so that the gateway falls back to SMS; without sessions
// the message stays too large.
func TestLargeMessageRefused(t *testing.T) {
	port := sipptest.FreePort(t, "tcp")
	peer := newTCPPeer(t, port, 488)
	cfg := sessionConfig()
	cfg.MaxBody = 4096
	cfg.OutboundProxy = "sip:127.0.0.1:" + strconv.Itoa(port) + ";transport=tcp"
	e := startEdge(t, cfg, newMemReceiver())
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	err := e.SendRCS(ctx, largeText("large-refused"))
	if !errors.Is(err, gateway.ErrRejected) || errors.Is(err, gateway.ErrTooLarge) {
		t.Fatalf("SendRCS: %v, want ErrRejected", err)
	}
	req := <-peer.got
	for _, want := range []string{"INVITE ", "m=message", "a=sendonly", "a=setup:actpass", "a=path:msrp://127.0.0.1:"} {
		if !strings.Contains(req, want) {
			t.Errorf("INVITE lacks %q:\n%s", want, req)
		}
	}

	cfg = testConfig()
	cfg.MaxBody = 4096
	cfg.OutboundProxy = "sip:127.0.0.1:" + strconv.Itoa(port) + ";transport=tcp"
	e = startEdge(t, cfg, newMemReceiver())
	if err := e.SendRCS(ctx, largeText("large-no-sessions")); !errors.Is(err, gateway.ErrTooLarge) {
		t.Errorf("SendRCS without sessions: %v, want ErrTooLarge", err)
	}
}

// activePhone plays a phone that answers a large message INVITE with
// a=setup:active and connects to the gateway's MSRP listener itself once
// the ACK came; it answers BYE 200, as a plain UAS over TCP.
type activePhone struct {
	t    *testing.T
	l    net.Listener
	pool *msrp.Pool
	got  chan *msrp.Message
	byes chan struct{}
}

func newActivePhone(t *testing.T) *activePhone {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := msrp.NewPool(msrp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	p := &activePhone{t: t, l: l, pool: pool, got: make(chan *msrp.Message, 4), byes: make(chan struct{}, 4)}
	t.Cleanup(func() { l.Close(); pool.Close() })
	go p.serve()
	return p
}

func (p *activePhone) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			r := textproto.NewReader(bufio.NewReader(c))
			var sess *msrp.Session // answered, waiting for the ACK
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
				method, _, _ := strings.Cut(start, " ")
				code, sdpBody := 200, ""
				switch method {
				case "ACK":
					// Connect once the gateway confirmed the dialog (a phone
					// that connects as soon as it sent its 200 may race
					// the gateway's session set-up: see sip/doc.go).
					if sess != nil {
						go func(sess *msrp.Session) {
							ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
							defer cancel()
							if err := sess.Connect(ctx); err != nil {
								p.t.Errorf("phone side: connect: %v", err)
							}
						}(sess)
						sess = nil
					}
					continue
				case "BYE":
					p.byes <- struct{}{}
				case "INVITE":
					offer, err := sdp.Parse(body)
					if err != nil {
						code = 488
						break
					}
					local := msrp.URI{Host: "127.0.0.1", Port: 9, SessionID: msrp.NewSessionID(), Transport: "tcp"}
					answer, err := sdp.Answer(offer, sdp.AnswerOptions{Path: []msrp.URI{local}, Setup: sdp.SetupActive})
					if err != nil {
						code = 488
						break
					}
					neg, err := sdp.Negotiate(offer, answer, sdp.Answerer)
					if err != nil || !neg.Active {
						p.t.Errorf("phone side: negotiate %v, active %v", err, neg.Active)
						code = 488
						break
					}
					cfg := neg.SessionConfig()
					cfg.Handler = func(ctx context.Context, m *msrp.Message) error {
						p.got <- m
						return nil
					}
					if sess, err = p.pool.NewSession(cfg); err != nil {
						p.t.Errorf("phone side: session %v", err)
						code = 500
						break
					}
					sdpBody = answer.String()
				}
				var b strings.Builder
				fmt.Fprintf(&b, "SIP/2.0 %d OK\r\n", code)
				for _, name := range []string{"Via", "From", "Call-Id", "Cseq"} {
					for _, v := range h.Values(name) {
						fmt.Fprintf(&b, "%s: %s\r\n", name, v)
					}
				}
				fmt.Fprintf(&b, "To: %s;tag=phone\r\nContact: <sip:%s;transport=tcp>\r\n", h.Get("To"), p.l.Addr())
				if sdpBody != "" {
					fmt.Fprintf(&b, "Content-Type: application/sdp\r\n")
				}
				fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(sdpBody), sdpBody)
				c.Write([]byte(b.String()))
			}
		}()
	}
}

// A phone that answers a=setup:active binds the session itself; the
// gateway waits for it, sends, and ends with BYE.
func TestLargeMessagePhoneActive(t *testing.T) {
	p := newActivePhone(t)
	cfg := sessionConfig()
	cfg.MaxBody = 4096
	cfg.OutboundProxy = "sip:" + p.l.Addr().String() + ";transport=tcp"
	e := startEdge(t, cfg, newMemReceiver())
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	m := largeText("large-active")
	if err := e.SendRCS(ctx, m); err != nil {
		t.Fatalf("SendRCS: %v", err)
	}
	select {
	case got := <-p.got:
		if got.ContentType != "message/cpim" || !strings.Contains(string(got.Body), "imdn.Message-ID: large-active") ||
			!strings.Contains(string(got.Body), m.Parts[0].Text) {
			t.Errorf("the phone got %s of %d bytes", got.ContentType, len(got.Body))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no MSRP message at the phone")
	}
	select {
	case <-p.byes:
	case <-time.After(10 * time.Second):
		t.Fatal("no BYE")
	}
}
