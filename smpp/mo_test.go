package smpp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/mimi/uri"
	"github.com/mimigw/mimigw/smpp/coding"
	"github.com/mimigw/mimigw/smpp/smsc"
	"github.com/mimigw/mimigw/smpp/wire"
)

func allOK(t testing.TB, st []pdu.Status) {
	t.Helper()
	for i, s := range st {
		if s != wire.StatusOK {
			t.Fatalf("part %d answered %#x, all: %v", i+1, uint32(s), st)
		}
	}
}

func TestMOConcatenated(t *testing.T) {
	long := strings.Repeat("Grüße aus Köln 😀 ", 12) // UCS-2, several parts
	for _, c := range []struct {
		name   string
		concat coding.Concat
		text   string
		order  []int
	}{
		{"single", coding.ConcatUDH8, "hello €[]{}", nil},
		{"udh8 in order", coding.ConcatUDH8, long, nil},
		{"udh16 out of order", coding.ConcatUDH16, long, []int{3, 1, 4, 2}},
		{"sar reversed", coding.ConcatSAR, long, []int{4, 3, 2, 1}},
		{"payload", coding.ConcatPayload, long, nil},
		{"gsm udh8 with escapes", coding.ConcatUDH8, strings.Repeat("{a}", 90), []int{2, 3, 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			sim, addr := startSim(t, smsc.Config{Outcome: "none"})
			recv := newMemReceiver()
			_, published := onGateway(t, recv, gateway.DefaultConfig())
			startEdge(t, Config{SMSCs: []SMSCConfig{smscConfig("sim", addr)}}, recv)
			st, err := sim.InjectMO(context.Background(), smsc.MO{
				From: "+15551230002", To: "+15551230001", Text: c.text, Order: c.order,
				Coding: &coding.Options{Concat: c.concat},
			})
			if err != nil {
				t.Fatal(err)
			}
			allOK(t, st)
			text, incomplete, d := fromPhone(t, published)
			if d.Subject != "mimi.from.tel.15551230002" || d.Envelope.Channel != "sms" || d.Envelope.Recipient != "tel:+15551230001" || incomplete {
				t.Fatalf("published %s %+v incomplete=%v", d.Subject, d.Envelope, incomplete)
			}
			if text != c.text {
				t.Fatalf("text %q, want %q", text, c.text)
			}
			nothingPublished(t, published)
		})
	}
}

// udh8 builds a part of a concatenated GSM text with an 8-bit reference.
func udh8Part(ref, total, seq byte, text string) *wire.Message {
	return &wire.Message{
		SourceTON: 1, SourceNPI: 1, Source: "15551230002",
		DestTON: 1, DestNPI: 1, Dest: "15551230001",
		ESMClass:     wire.ESMClassUDHI,
		ShortMessage: append([]byte{5, 0, 3, ref, total, seq}, text...),
	}
}

func TestMODuplicatesAndParts(t *testing.T) {
	sim, addr := startSim(t, smsc.Config{Outcome: "none"})
	recv := newMemReceiver()
	_, published := onGateway(t, recv, gateway.DefaultConfig())
	startEdge(t, Config{SMSCs: []SMSCConfig{smscConfig("sim", addr)}}, recv)
	ctx := context.Background()

	// Part 2 twice, then 1: one message, every deliver_sm answered OK.
	st, err := sim.Deliver(ctx, "", udh8Part(7, 2, 2, "world"), udh8Part(7, 2, 2, "world"), udh8Part(7, 2, 1, "hello "))
	if err != nil {
		t.Fatal(err)
	}
	allOK(t, st)
	if text, _, _ := fromPhone(t, published); text != "hello world" {
		t.Fatalf("got %q", text)
	}
	// The SMSC delivering a part again after the message is on the bus:
	// answered OK, no second message.
	st, err = sim.Deliver(ctx, "", udh8Part(7, 2, 1, "hello "))
	if err != nil {
		t.Fatal(err)
	}
	allOK(t, st)
	nothingPublished(t, published)
	// The same reference reused for a new message is a new message.
	st, err = sim.Deliver(ctx, "", udh8Part(7, 2, 1, "second "), udh8Part(7, 2, 2, "text"))
	if err != nil {
		t.Fatal(err)
	}
	allOK(t, st)
	if text, _, _ := fromPhone(t, published); text != "second text" {
		t.Fatalf("got %q", text)
	}
}

func TestMOIncompleteAfterTimeout(t *testing.T) {
	sim, addr := startSim(t, smsc.Config{Outcome: "none"})
	recv := newMemReceiver()
	gcfg := gateway.DefaultConfig()
	gcfg.ReassemblyTimeout = 100 * time.Millisecond
	g, published := onGateway(t, recv, gcfg)
	e, _ := startEdge(t, Config{SMSCs: []SMSCConfig{smscConfig("sim", addr)}}, recv)
	runGateway(t, g, e)
	// Parts 1 and 3 of 3; part 2 never comes. Each is answered once it is
	// stored; after the timeout what arrived goes on, marked incomplete.
	st, err := sim.Deliver(context.Background(), "", udh8Part(9, 3, 3, " end"), udh8Part(9, 3, 1, "start"))
	if err != nil {
		t.Fatal(err)
	}
	allOK(t, st)
	if text, incomplete, _ := fromPhone(t, published); text != "start end" || !incomplete {
		t.Fatalf("got %q incomplete=%v", text, incomplete)
	}
}

func TestMOReceiverAnswers(t *testing.T) {
	sim, addr := startSim(t, smsc.Config{Outcome: "none"})
	recv := newMemReceiver()
	var fail atomic.Pointer[error]
	setFail := func(err error) { fail.Store(&err) }
	setFail(fmt.Errorf("bus: %w", gateway.ErrUnavailable))
	recv.receive = func(ctx context.Context, m gateway.Inbound) error { return *fail.Load() }
	recv.segment = func(ctx context.Context, s gateway.Segment) error { return *fail.Load() }
	startEdge(t, Config{SMSCs: []SMSCConfig{smscConfig("sim", addr)}}, recv)
	ctx := context.Background()

	// Bus down: a retryable error, so the SMSC delivers again.
	st, _ := sim.InjectMO(ctx, smsc.MO{From: "+15551230002", To: "+15551230001", Text: "hi"})
	if len(st) != 1 || st[0] != wire.StatusTempAppError {
		t.Fatalf("bus down: %v, want ESME_RX_T_APPN", st)
	}
	// Parts of a concatenated message that could not be stored get the
	// same answer, and go on when the SMSC delivers them again.
	parts := []*wire.Message{udh8Part(3, 2, 1, "one "), udh8Part(3, 2, 2, "two")}
	st, _ = sim.Deliver(ctx, "", parts...)
	if len(st) != 2 || st[0] != wire.StatusTempAppError || st[1] != wire.StatusTempAppError {
		t.Fatalf("parts with the bus down: %v", st)
	}
	setFail(nil)
	st, _ = sim.Deliver(ctx, "", parts...)
	allOK(t, st)
	recv.mu.Lock()
	segs := append([]gateway.Segment(nil), recv.segments...)
	recv.mu.Unlock()
	slices.SortFunc(segs, func(a, b gateway.Segment) int { return int(a.Seq) - int(b.Seq) })
	want := []gateway.Segment{
		{From: "+15551230002", To: "+15551230001", Ref: 3, Total: 2, Seq: 1, Text: "one "},
		{From: "+15551230002", To: "+15551230001", Ref: 3, Total: 2, Seq: 2, Text: "two"},
	}
	if fmt.Sprint(segs) != fmt.Sprint(want) {
		t.Fatalf("segments %+v, want %+v", segs, want)
	}

	// Refused by the gateway: a permanent error.
	setFail(fmt.Errorf("no such number: %w", gateway.ErrRejected))
	st, _ = sim.InjectMO(ctx, smsc.MO{From: "+15551230002", To: "+15551230009", Text: "hi"})
	if len(st) != 1 || st[0] != wire.StatusInvDstAdr {
		t.Fatalf("rejected: %v, want ESME_RINVDSTADR", st)
	}
	// Larger than the bus can store: a permanent error naming the length.
	setFail(fmt.Errorf("message of 2000000 bytes: %w", gateway.ErrOversize))
	st, _ = sim.InjectMO(ctx, smsc.MO{From: "+15551230002", To: "+15551230009", Text: "hi"})
	if len(st) != 1 || st[0] != wire.StatusInvMsgLen {
		t.Fatalf("too large: %v, want ESME_RINVMSGLEN", st)
	}
}

func TestMONumbers(t *testing.T) {
	sim, addr := startSim(t, smsc.Config{Outcome: "none"})
	recv := newMemReceiver()
	startEdge(t, Config{SMSCs: []SMSCConfig{smscConfig("sim", addr)}, DefaultRegion: "US"}, recv)
	for _, c := range []struct {
		ton    byte
		source string
		want   uri.Number
		status pdu.Status
	}{
		{tonInternational, "15551230002", "+15551230002", wire.StatusOK},
		{tonNational, "5551230003", "+15551230003", wire.StatusOK},
		{tonUnknown, "15551230004", "+15551230004", wire.StatusOK},
		{tonUnknown, "447700900123", "+447700900123", wire.StatusOK},
		{tonAlphanumeric, "BANK", "", wire.StatusInvSrcAdr},
		{tonInternational, "12", "", wire.StatusInvSrcAdr},
	} {
		m := &wire.Message{SourceTON: c.ton, SourceNPI: 1, Source: c.source, DestTON: 1, DestNPI: 1, Dest: "15551230001", ShortMessage: []byte("x")}
		st, err := sim.Deliver(context.Background(), "", m)
		if err != nil {
			t.Fatal(err)
		}
		if st[0] != c.status {
			t.Fatalf("TON %d %q: status %#x, want %#x", c.ton, c.source, uint32(st[0]), uint32(c.status))
		}
		if c.status != wire.StatusOK {
			continue
		}
		in, _ := recv.snapshot()
		if got := in[len(in)-1].From; got != c.want {
			t.Fatalf("TON %d %q: from %q, want %q", c.ton, c.source, got, c.want)
		}
	}
}

// TestBadInput sends what no well-formed SMSC would, and checks the SMPP
// answer, a log line, and that the bind keeps working (or reconnects,
// after a length that loses the stream).
func TestBadInput(t *testing.T) {
	sim, addr := startSim(t, smsc.Config{Outcome: "none"})
	recv := newMemReceiver()
	e, logs := startEdgeLog(t, Config{SMSCs: []SMSCConfig{smscConfig("sim", addr)}}, recv)
	ctx := context.Background()

	good := udh8Part(1, 1, 1, "x")
	good.ESMClass, good.ShortMessage = 0, []byte("fine")
	goodFrame, _ := wire.AppendMessage(nil, wire.DeliverSM, 0, good)
	body := goodFrame[wire.HeaderLen:]
	frame := func(id pdu.ID, seq uint32, body []byte) []byte {
		f := wire.AppendHeader(nil, id, 0, seq)
		binary.BigEndian.PutUint32(f[0:4], uint32(wire.HeaderLen+len(body)))
		return append(f, body...)
	}
	raw := []struct {
		name    string
		frame   []byte
		seq     uint32
		wantID  pdu.ID
		wantSt  pdu.Status
		wantLog string
		fatal   bool
	}{
		{"unknown command_id", frame(0x00000777, 1001, nil), 1001, wire.GenericNack, wire.StatusInvCmdID, "command_id", false},
		{"command_length beyond the limit", func() []byte {
			f := frame(wire.DeliverSM, 1002, make([]byte, 20000))
			return f
		}(), 1002, wire.GenericNack, wire.StatusInvCmdLen, "command_length", false},
		{"mandatory fields cut", frame(wire.DeliverSM, 1003, body[:12]), 1003, wire.GenericNack, wire.StatusInvCmdLen, "truncated", false},
		{"truncated TLV", frame(wire.DeliverSM, 1004, append(append([]byte{}, body...), 0x04, 0x24, 0x00, 0x10, 'a')), 1004, wire.DeliverSMResp, wire.StatusInvOptParamStream, "optional parameters", false},
		{"TLV header cut", frame(wire.DeliverSM, 1005, append(append([]byte{}, body...), 0x02, 0x0C)), 1005, wire.DeliverSMResp, wire.StatusInvOptParamStream, "optional parameters", false},
		{"command_length below the header", func() []byte {
			f := frame(wire.DeliverSM, 1006, nil)
			binary.BigEndian.PutUint32(f[0:4], 8)
			return f
		}(), 1006, wire.GenericNack, wire.StatusInvCmdLen, "below the header", true},
	}
	for _, c := range raw {
		t.Run(c.name, func(t *testing.T) {
			waitReady(t, e)
			waitUntil(t, "simulator bound", func() bool { _, rx := sim.Bound(); return rx > 0 })
			binds := sim.Binds()
			h, err := sim.SendRaw(ctx, "", c.frame, c.seq)
			if err != nil {
				t.Fatal(err)
			}
			if h.ID != c.wantID || h.Status != c.wantSt {
				t.Fatalf("answer %s status %#x, want %s %#x", h.ID, uint32(h.Status), c.wantID, uint32(c.wantSt))
			}
			if !logs.has("bad PDU from SMSC", c.wantLog) {
				t.Fatalf("no log line with %q:\n%s", c.wantLog, logs.all())
			}
			if c.fatal {
				// The stream is lost: the edge closes and binds again.
				waitUntil(t, "rebind", func() bool { _, rx := sim.Bound(); return sim.Binds() > binds && rx == 1 && e.Ready() == nil })
			}
			// The bind still carries messages.
			st, err := sim.Deliver(ctx, "", good)
			if err != nil || st[0] != wire.StatusOK {
				t.Fatalf("good deliver_sm after bad input: %v %v", st, err)
			}
		})
	}

	bad := []struct {
		name    string
		m       *wire.Message
		wantLog string
	}{
		{"UDH part 0", udh8Part(5, 3, 0, "x"), "part number 0"},
		{"UDH part above total", udh8Part(5, 3, 4, "x"), "above the total"},
		{"UDH total 0", udh8Part(5, 0, 1, "x"), "total of 0"},
		{"UDH length past the end", &wire.Message{SourceTON: 1, Source: "15551230002", DestTON: 1, Dest: "15551230001", ESMClass: wire.ESMClassUDHI, ShortMessage: []byte{9, 0, 3, 1}}, "past the end"},
		{"SAR part 0", func() *wire.Message {
			m := &wire.Message{SourceTON: 1, Source: "15551230002", DestTON: 1, Dest: "15551230001", ShortMessage: []byte("x")}
			m.SetTLV(wire.TagSarMsgRefNum, []byte{0, 1})
			m.SetTLV(wire.TagSarTotalSegments, []byte{2})
			m.SetTLV(wire.TagSarSegmentSeqnum, []byte{0})
			return m
		}(), "part number 0"},
		{"UCS-2 odd length", &wire.Message{SourceTON: 1, Source: "15551230002", DestTON: 1, Dest: "15551230001", DataCoding: 8, ShortMessage: []byte{0, 'h', 0}}, "data_coding 0x08"},
		{"GSM octet above 0x7F", &wire.Message{SourceTON: 1, Source: "15551230002", DestTON: 1, Dest: "15551230001", DataCoding: 0, ShortMessage: []byte{'h', 0xC3, 0xA9}}, "data_coding 0x00"},
		{"binary data_coding", &wire.Message{SourceTON: 1, Source: "15551230002", DestTON: 1, Dest: "15551230001", DataCoding: 4, ShortMessage: []byte{1, 2}}, "8-bit"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			waitReady(t, e)
			waitUntil(t, "simulator bound", func() bool { _, rx := sim.Bound(); return rx > 0 })
			st, err := sim.Deliver(ctx, "", c.m)
			if err != nil {
				t.Fatal(err)
			}
			if st[0] != wire.StatusPermAppError {
				t.Fatalf("status %#x, want ESME_RX_P_APPN", uint32(st[0]))
			}
			if !logs.has("MO message refused", c.wantLog) {
				t.Fatalf("no log line with %q:\n%s", c.wantLog, logs.all())
			}
		})
	}
	in, _ := recv.snapshot()
	for _, m := range in {
		if m.Parts[0].Text != "fine" {
			t.Fatalf("bad input reached the receiver: %+v", m)
		}
	}
	if errors.Is(e.Ready(), context.Canceled) {
		t.Fatal("unreachable")
	}
}

// An SMSC whose window is smaller than a message's parts waits for the
// answers of the first parts before it sends the rest: each part is
// answered as soon as the gateway has stored it, so the message arrives
// whole.
func TestMOPartsBeyondTheSMSCWindow(t *testing.T) {
	sim, addr := startSim(t, smsc.Config{Outcome: "none", Window: 1})
	recv := newMemReceiver()
	_, published := onGateway(t, recv, gateway.DefaultConfig())
	startEdge(t, Config{SMSCs: []SMSCConfig{smscConfig("sim", addr)}}, recv)
	text := strings.Repeat("part of a long message ", 30) // 5 GSM parts
	st, err := sim.InjectMO(context.Background(), smsc.MO{From: "+15551230002", To: "+15551230001", Text: text})
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 5 {
		t.Fatalf("%d parts", len(st))
	}
	allOK(t, st)
	if got, incomplete, _ := fromPhone(t, published); got != text || incomplete {
		t.Fatalf("got %q incomplete=%v", got, incomplete)
	}
}
