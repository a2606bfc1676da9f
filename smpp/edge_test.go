package smpp

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/mimi/uri"
	"github.com/mimigw/mimigw/smpp/coding"
	"github.com/mimigw/mimigw/smpp/receipt"
	"github.com/mimigw/mimigw/smpp/smsc"
)

func TestSendGSMText(t *testing.T) {
	sim, addr := startSim(t, smsc.Config{Outcome: "none"})
	e, _ := startEdge(t, Config{SMSCs: []SMSCConfig{smscConfig("sim", addr)}}, newMemReceiver())

	text := "hello €[]{} ~|^\\ @£$"
	sent, err := e.SendSMS(context.Background(), gateway.OutboundSMS{ID: "m1", From: "+15551230001", To: "+15551230002", Text: text})
	if err != nil {
		t.Fatal(err)
	}
	if sent.Source != "sim" || len(sent.Refs) != 1 || sent.Refs[0] == "" {
		t.Fatalf("sent %+v", sent)
	}
	got := sim.Received()
	if len(got) != 1 {
		t.Fatalf("simulator got %d submit_sm", len(got))
	}
	s := got[0]
	if s.DataCoding != 0 || s.Text != text || s.DecodeError != "" {
		t.Fatalf("data_coding %#x text %q (%s), want GSM 7-bit %q", s.DataCoding, s.Text, s.DecodeError, text)
	}
	if s.SourceTON != 1 || s.SourceNPI != 1 || s.Source != "15551230001" || s.DestTON != 1 || s.Dest != "15551230002" {
		t.Fatalf("addresses %+v", s)
	}
	// Each extension character costs an escape: 5 of €[]{}, 4 of ~|^\.
	if want := utf8.RuneCountInString(text) + 9; len(s.ShortMessage) != want {
		t.Fatalf("short_message %d octets, want %d (unpacked septets)", len(s.ShortMessage), want)
	}
	if s.MessageID != sent.Refs[0] {
		t.Fatalf("ref %q, simulator id %q", sent.Refs[0], s.MessageID)
	}
}

func TestSendLongUCS2(t *testing.T) {
	sim, addr := startSim(t, smsc.Config{Outcome: "none"})
	e, _ := startEdge(t, Config{SMSCs: []SMSCConfig{smscConfig("sim", addr)}}, newMemReceiver())

	// 2-unit emoji at every position, so that a split by UTF-16 units or
	// bytes would cut a surrogate pair.
	text := strings.Repeat("a😀", 60) + "é"
	sent, err := e.SendSMS(context.Background(), gateway.OutboundSMS{ID: "m2", From: "+15551230001", To: "+15551230002", Text: text})
	if err != nil {
		t.Fatal(err)
	}
	got := sim.Received()
	if len(got) != 3 || len(sent.Refs) != 3 {
		t.Fatalf("%d submit_sm, %d refs, want 3", len(got), len(sent.Refs))
	}
	var joined strings.Builder
	for i, s := range got {
		if s.DataCoding != 8 || s.ESMClass&0x40 == 0 {
			t.Fatalf("segment %d: data_coding %#x esm_class %#x", i+1, s.DataCoding, s.ESMClass)
		}
		// Decoded on its own: no half of a surrogate pair at either end.
		p, err := coding.Decode(s.DataCoding, true, s.ShortMessage, coding.Options{})
		if err != nil || p.HeadLow != 0 || p.TailHigh != 0 {
			t.Fatalf("segment %d does not decode alone: %v %+v", i+1, err, p)
		}
		if p.Concat == nil || int(p.Concat.Seq) != i+1 || p.Concat.Total != 3 {
			t.Fatalf("segment %d concat %+v", i+1, p.Concat)
		}
		joined.WriteString(p.Text)
	}
	if joined.String() != text {
		t.Fatalf("joined %q", joined.String())
	}
}

func TestReceiptMatchesSubmit(t *testing.T) {
	for _, c := range []struct {
		name        string
		idForm      receipt.IDForm
		simForm     string
		receiptTLVs bool
		early       bool
		outcome     string
		want        gateway.Status
	}{
		{name: "text hex", idForm: receipt.IDForm{Base: receipt.Hex}, simForm: "hex", outcome: "DELIVRD", want: gateway.StatusDelivered},
		{name: "decimal receipts for hex ids", idForm: receipt.IDForm{Base: receipt.Decimal}, simForm: "decimal", outcome: "UNDELIV", want: gateway.StatusFailed},
		{name: "TLVs", idForm: receipt.IDForm{Base: receipt.Hex}, simForm: "hex", receiptTLVs: true, outcome: "EXPIRED", want: gateway.StatusExpired},
		{name: "receipt before response", idForm: receipt.IDForm{Base: receipt.Hex}, simForm: "hex", early: true, outcome: "DELIVRD", want: gateway.StatusDelivered},
	} {
		t.Run(c.name, func(t *testing.T) {
			sim, addr := startSim(t, smsc.Config{
				ReceiptIDFormat: c.simForm, ReceiptTLVs: c.receiptTLVs, EarlyReceipts: c.early,
				Outcome: c.outcome, ReceiptDelay: time.Millisecond,
			})
			recv := newMemReceiver()
			sc := smscConfig("sim", addr)
			sc.SubmitIDForm, sc.ReceiptIDForm = receipt.IDForm{Base: receipt.Hex}, c.idForm
			e, _ := startEdge(t, Config{SMSCs: []SMSCConfig{sc}}, recv)
			sent, err := e.SendSMS(context.Background(), gateway.OutboundSMS{ID: "m3", From: "+15551230001", To: "+15551230002", Text: "hi", Receipt: true})
			if err != nil {
				t.Fatal(err)
			}
			recv.waitFor(t, "receipt", func(_ []gateway.Inbound, rc []gateway.Receipt) bool { return len(rc) == 1 })
			_, rcs := recv.snapshot()
			r := rcs[0]
			if r.Ref != sent.Refs[0] || r.Source != "sim" || r.Status != c.want || r.From != uri.Number("+15551230002") || r.Channel != gateway.ChannelSMS {
				t.Fatalf("receipt %+v for refs %v (simulator ids %q)", r, sent.Refs, sim.Received()[0].MessageID)
			}
		})
	}
}

// Segments counts as the first SMSC by priority encodes: GSM 7-bit where
// every character has a code (160 alone, 153 a part with an 8-bit header,
// 152 with a 16-bit one, extension characters taking two), else UCS-2 (70,
// 67, surrogate pairs two units); the other SMSCs' coding does not count.
func TestEdgeSegments(t *testing.T) {
	t.Parallel()
	udh16 := smscConfig("udh16", "127.0.0.1:1")
	udh16.Coding.Concat = coding.ConcatUDH16
	second := smscConfig("second", "127.0.0.1:2")
	second.Priority, second.Coding.Concat = 1, coding.ConcatUDH16
	for _, tc := range []struct {
		name  string
		smscs []SMSCConfig
		text  string
		want  int
	}{
		{"empty", nil, "", 1},
		{"short", nil, "hello", 1},
		{"160 GSM", nil, strings.Repeat("a", 160), 1},
		{"161 GSM", nil, strings.Repeat("a", 161), 2},
		{"306 GSM", nil, strings.Repeat("a", 306), 2},
		{"307 GSM", nil, strings.Repeat("a", 307), 3},
		{"extension characters count two", nil, strings.Repeat("€", 80), 1},
		{"81 euro signs", nil, strings.Repeat("€", 81), 2},
		{"70 UCS-2", nil, strings.Repeat("ж", 70), 1},
		{"71 UCS-2", nil, strings.Repeat("ж", 71), 2},
		{"134 UCS-2", nil, strings.Repeat("ж", 134), 2},
		{"135 UCS-2", nil, strings.Repeat("ж", 135), 3},
		{"one emoji makes it UCS-2, two code units each", nil, strings.Repeat("a", 60) + strings.Repeat("😀", 5), 1},
		{"surrogates counted", nil, strings.Repeat("😀", 36), 2},
		{"a 16-bit reference leaves 152 septets a part", []SMSCConfig{udh16}, strings.Repeat("a", 305), 3},
		{"only the first SMSC's coding counts", []SMSCConfig{second, smscConfig("first", "127.0.0.1:3")}, strings.Repeat("a", 305), 2},
		{"invalid UTF-8 counts one", nil, "\xff", 1},
	} {
		smscs := tc.smscs
		if smscs == nil {
			smscs = []SMSCConfig{smscConfig("sim", "127.0.0.1:1")}
		}
		e, err := NewEdge(Config{SMSCs: smscs}, newMemReceiver(), testLog(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Segments(tc.text); got != tc.want {
			t.Errorf("%s: Segments = %d, want %d", tc.name, got, tc.want)
		}
	}
}
