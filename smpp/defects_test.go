package smpp

// Each test here shows that one defect of go-smpp's client session does
// not reach the gateway's users.

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/smpp/coding"
	"github.com/mimigw/mimigw/smpp/smsc"
	"github.com/mimigw/mimigw/smpp/wire"
)

// go-smpp matches responses by sequence number alone (its issue #87): a
// deliver_sm that carries the number of an outstanding submit_sm is taken
// for its response and lost. Here the SMSC sends exactly that.
func TestSeqCollisionSubmitAndDeliver(t *testing.T) {
	peer, addr := startRawPeer(t, wire.StatusOK)
	recv := newMemReceiver()
	e, _ := startEdge(t, Config{SMSCs: []SMSCConfig{smscConfig("raw", addr)}}, recv)
	c := peer.accept(t)

	type out struct {
		sent gateway.SMSSent
		err  error
	}
	done := make(chan out, 1)
	go func() {
		s, err := e.SendSMS(context.Background(), gateway.OutboundSMS{ID: "m", From: "+15551230001", To: "+15551230002", Text: "out"})
		done <- out{s, err}
	}()
	h, _ := c.next(t)
	if h.ID != wire.SubmitSM {
		t.Fatalf("got %s, want submit_sm", h.ID)
	}
	seq := h.Seq

	// The SMSC's own deliver_sm with our submit_sm's number.
	mo := &wire.Message{SourceTON: 1, SourceNPI: 1, Source: "15551230002", DestTON: 1, DestNPI: 1, Dest: "15551230001", ShortMessage: []byte("in")}
	f, _ := wire.AppendMessage(nil, wire.DeliverSM, seq, mo)
	c.write(f)
	// A response of the wrong command with that number answers nothing.
	c.write(respFrame(wire.DataSMResp, 0, seq, "bogus"))
	r, _ := c.next(t)
	if r.ID != wire.DeliverSMResp || r.Seq != seq || r.Status != wire.StatusOK {
		t.Fatalf("answer to the deliver_sm: %s seq %d status %#x", r.ID, r.Seq, uint32(r.Status))
	}
	select {
	case o := <-done:
		t.Fatalf("submit completed by something that was not its response: %+v %v", o.sent, o.err)
	default:
	}
	c.write(respFrame(wire.SubmitSMResp, 0, seq, "ID-1"))
	o := <-done
	if o.err != nil || len(o.sent.Refs) != 1 || o.sent.Refs[0] != "ID-1" {
		t.Fatalf("submit: %+v %v", o.sent, o.err)
	}
	in, _ := recv.snapshot()
	if len(in) != 1 || in[0].Parts[0].Text != "in" {
		t.Fatalf("MO: %+v", in)
	}
	c.answerRest()
}

// go-smpp's rate limiter also holds back deliver_sm_resp and
// enquire_link_resp. Here the submit rate is exhausted (a submit_sm is
// waiting for it) while the SMSC sends an MO message and an enquire_link:
// both are answered at once.
func TestRateLimitNeverDelaysAnswers(t *testing.T) {
	sim, addr := startSim(t, smsc.Config{Outcome: "none"})
	recv := newMemReceiver()
	sc := smscConfig("sim", addr)
	sc.Rate = 0.01 // one submit_sm per 100 s after the first
	e, _ := startEdge(t, Config{SMSCs: []SMSCConfig{sc}}, recv)
	ctx := context.Background()
	if _, err := e.SendSMS(ctx, gateway.OutboundSMS{ID: "1", From: "+15551230001", To: "+15551230002", Text: "first"}); err != nil {
		t.Fatal(err)
	}
	waiting, cancel := context.WithCancel(ctx)
	defer cancel()
	second := make(chan error, 1)
	go func() {
		_, err := e.SendSMS(waiting, gateway.OutboundSMS{ID: "2", From: "+15551230001", To: "+15551230002", Text: "second"})
		second <- err
	}()

	st, err := sim.InjectMO(ctx, smsc.MO{From: "+15551230002", To: "+15551230001", Text: "while throttled"})
	if err != nil || st[0] != wire.StatusOK {
		t.Fatalf("deliver_sm answer: %v %v", st, err)
	}
	h, err := sim.SendRaw(ctx, "", wire.AppendHeader(nil, wire.EnquireLink, 0, 4242), 4242)
	if err != nil || h.ID != wire.EnquireLinkResp {
		t.Fatalf("enquire_link answer: %+v %v", h, err)
	}
	select {
	case err := <-second:
		t.Fatalf("the rate-limited submit finished (%v): the answers did not overtake it", err)
	default:
	}
	if n := len(sim.Received()); n != 1 {
		t.Fatalf("simulator got %d submit_sm while the rate allowed one", n)
	}
	cancel()
	if err := <-second; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled submit: %v", err)
	}
}

// go-smpp runs the handler on its read loop, so a slow handler (a slow
// bus) stalls the reading of submit_sm_resp. Here the receiver blocks on
// an MO message while a message goes out.
func TestSlowReceiverDoesNotBlockResponses(t *testing.T) {
	sim, addr := startSim(t, smsc.Config{Outcome: "none"})
	recv := newMemReceiver()
	entered := make(chan struct{})
	release := make(chan struct{})
	var once atomic.Bool
	recv.receive = func(ctx context.Context, m gateway.Inbound) error {
		if once.CompareAndSwap(false, true) {
			close(entered)
		}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	e, _ := startEdge(t, Config{SMSCs: []SMSCConfig{smscConfig("sim", addr)}}, recv)
	ctx := context.Background()
	moDone := make(chan error, 1)
	go func() {
		st, err := sim.InjectMO(ctx, smsc.MO{From: "+15551230002", To: "+15551230001", Text: "slow"})
		if err == nil && st[0] != wire.StatusOK {
			err = errors.New("MO not answered OK")
		}
		moDone <- err
	}()
	<-entered
	for i := range 20 {
		if _, err := e.SendSMS(ctx, gateway.OutboundSMS{ID: "x", From: "+15551230001", To: "+15551230002", Text: "out " + string(rune('a'+i))}); err != nil {
			t.Fatalf("send %d while the receiver is blocked: %v", i, err)
		}
	}
	h, err := sim.SendRaw(ctx, "", wire.AppendHeader(nil, wire.EnquireLink, 0, 777), 777)
	if err != nil || h.ID != wire.EnquireLinkResp {
		t.Fatalf("enquire_link while the receiver is blocked: %+v %v", h, err)
	}
	select {
	case err := <-moDone:
		t.Fatalf("MO answered before the receiver returned: %v", err)
	default:
	}
	close(release)
	if err := <-moDone; err != nil {
		t.Fatal(err)
	}
}

// go-smpp's SubmitLongMsg splits at fixed byte counts: through surrogate
// pairs and escape sequences. Here the texts put an emoji and a GSM
// extension character astride every segment boundary; each segment must
// decode on its own, and the segments must join to the text.
func TestLongMessageSplitOnCharacters(t *testing.T) {
	sim, addr := startSim(t, smsc.Config{Outcome: "none"})
	e, _ := startEdge(t, Config{SMSCs: []SMSCConfig{smscConfig("sim", addr)}}, newMemReceiver())
	texts := []string{
		strings.Repeat("a", 152) + strings.Repeat("€", 100),      // escape at septet 153
		strings.Repeat("b", 66) + strings.Repeat("😀", 60),        // surrogate pair at unit 67
		strings.Repeat("😀x", 70) + strings.Repeat("{", 10) + "ü", // UCS-2 because of the emoji
	}
	for i, text := range texts {
		before := len(sim.Received())
		sent, err := e.SendSMS(context.Background(), gateway.OutboundSMS{ID: "s", From: "+15551230001", To: "+15551230002", Text: text})
		if err != nil {
			t.Fatalf("text %d: %v", i, err)
		}
		segs := sim.Received()[before:]
		if len(segs) < 2 || len(segs) != len(sent.Refs) {
			t.Fatalf("text %d: %d segments, %d refs", i, len(segs), len(sent.Refs))
		}
		var joined strings.Builder
		for j, s := range segs {
			p, err := coding.Decode(s.DataCoding, s.ESMClass&wire.ESMClassUDHI != 0, s.ShortMessage, coding.Options{})
			if err != nil || p.HeadLow != 0 || p.TailHigh != 0 || !utf8.ValidString(p.Text) {
				t.Fatalf("text %d segment %d does not stand alone: %v %+v", i, j+1, err, p)
			}
			if s.DataCoding == 0 && s.ShortMessage[len(s.ShortMessage)-1] == 0x1B {
				t.Fatalf("text %d segment %d ends in an escape", i, j+1)
			}
			joined.WriteString(p.Text)
		}
		if joined.String() != text {
			t.Fatalf("text %d joined differs", i)
		}
	}
}

// go-smpp's receiver reassembly indexes its parts by the UDH part number
// and panics on part 0 or a part above the total. Here those parts come
// in (the bind must stay up and answer each with an error status), among
// good parts of the same reference.
func TestBadUDHPartNumbers(t *testing.T) {
	sim, addr := startSim(t, smsc.Config{Outcome: "none"})
	recv := newMemReceiver()
	_, published := onGateway(t, recv, gateway.DefaultConfig())
	startEdge(t, Config{SMSCs: []SMSCConfig{smscConfig("sim", addr)}}, recv)
	ctx := context.Background()
	st, err := sim.Deliver(ctx, "",
		udh8Part(42, 2, 1, "good "),
		udh8Part(42, 2, 0, "zero"),
		udh8Part(42, 2, 3, "three"),
		udh8Part(42, 2, 255, "high"),
		udh8Part(42, 2, 2, "end"),
	)
	if err != nil {
		t.Fatal(err)
	}
	want := []uint32{0, uint32(wire.StatusPermAppError), uint32(wire.StatusPermAppError), uint32(wire.StatusPermAppError), 0}
	for i := range want {
		if uint32(st[i]) != want[i] {
			t.Fatalf("answers %v, want %v", st, want)
		}
	}
	if text, incomplete, _ := fromPhone(t, published); text != "good end" || incomplete {
		t.Fatalf("got %q incomplete=%v", text, incomplete)
	}
}

// go-smpp's pdutext encoders return their input unchanged when it cannot
// be encoded, so UTF-8 bytes go out labelled GSM 7-bit. Here texts in many
// scripts go out; each must read back exactly from its data_coding, and
// text that is not UTF-8 must be refused, not sent.
func TestEncodersNeverPassInputThrough(t *testing.T) {
	sim, addr := startSim(t, smsc.Config{Outcome: "none"})
	sc := smscConfig("sim", addr)
	sc.Coding.UseLatin1 = true
	e, _ := startEdge(t, Config{SMSCs: []SMSCConfig{sc}}, newMemReceiver())
	ctx := context.Background()
	for _, c := range []struct {
		text string
		dc   byte
	}{
		{"plain GSM €", 0x00},
		{"Latin-1 only: ¿Qué tal? ñ ç ô", 0x03},
		{"Привет, мир", 0x08},
		{"漢字かな交じり文", 0x08},
		{"emoji 👍🏽 and ZWJ 👩‍👩‍👧", 0x08},
		{"mixed € and ô and Ж", 0x08},
	} {
		before := len(sim.Received())
		if _, err := e.SendSMS(ctx, gateway.OutboundSMS{ID: "e", From: "+15551230001", To: "+15551230002", Text: c.text}); err != nil {
			t.Fatalf("%q: %v", c.text, err)
		}
		segs := sim.Received()[before:]
		var joined strings.Builder
		for _, s := range segs {
			if s.DataCoding != c.dc {
				t.Fatalf("%q went as data_coding %#x, want %#x", c.text, s.DataCoding, c.dc)
			}
			if s.DecodeError != "" {
				t.Fatalf("%q: %s", c.text, s.DecodeError)
			}
			joined.WriteString(s.Text)
		}
		if joined.String() != c.text {
			t.Fatalf("%q read back as %q", c.text, joined.String())
		}
	}
	before := len(sim.Received())
	_, err := e.SendSMS(ctx, gateway.OutboundSMS{ID: "bad", From: "+15551230001", To: "+15551230002", Text: "broken \xff\xfe utf-8"})
	if !errors.Is(err, gateway.ErrRejected) {
		t.Fatalf("invalid UTF-8: %v, want ErrRejected", err)
	}
	if n := len(sim.Received()) - before; n != 0 {
		t.Fatalf("invalid UTF-8 text was submitted (%d submit_sm)", n)
	}
}
