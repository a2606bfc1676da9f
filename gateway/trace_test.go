package gateway

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mimigw/mimigw/mimi/content"
)

// traced renders a message's steps one a line, "name | detail | time".
func traced(mt MessageTrace) string {
	var b strings.Builder
	for _, s := range mt.Steps {
		fmt.Fprintf(&b, "%s | %s | %s\n", s.Name, s.Detail, s.When())
	}
	return b.String()
}

// traceUntil traces key until done accepts the result: a report is
// published just before the record that mentions it is written.
func traceUntil(t *testing.T, g *Gateway, key string, done func(*Trace) bool) *Trace {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		tr, err := g.Trace(context.Background(), key)
		if err != nil {
			t.Fatalf("trace %s: %v", key, err)
		}
		if done(tr) {
			return tr
		}
		if time.Now().After(deadline) {
			for _, m := range tr.Messages {
				t.Logf("%s %s\n%s", m.ID, m.State, traced(m))
			}
			t.Fatalf("trace %s never got there: %+v", key, tr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func stateIs(st string) func(*Trace) bool {
	return func(tr *Trace) bool { return len(tr.Messages) == 1 && tr.Messages[0].State == st }
}

// wantSteps checks that the steps hold each line fragment, in order.
func wantSteps(t *testing.T, mt MessageTrace, fragments ...string) {
	t.Helper()
	text := traced(mt)
	rest := text
	for _, f := range fragments {
		i := strings.Index(rest, f)
		if i < 0 {
			t.Errorf("trace lacks %q (in order):\n%s", f, text)
			return
		}
		rest = rest[i+len(f):]
	}
}

// A message to a phone that is not an RCS user, by its MIMI ID and by
// the SMSC message id of a segment: accepted, the OPTIONS answer, SMS,
// both submit_sm_resp, both receipts, the report.
func TestTraceSMS(t *testing.T) {
	t.Parallel()
	rcs := newRCSEdge(Capabilities{})
	sms := newSMSEdge()
	sms.answer = func(m OutboundSMS) (SMSSent, error) {
		return SMSSent{Source: "smsc1", Refs: []string{"00A1", "a2"}}, nil
	}
	h := newHarness(t, testConfig(), rcs, sms)
	reports := h.watch(phone)
	id := h.sendToPhone(phone, alice, "", "two segments", ChannelAuto)
	recv(t, sms.calls, "SMS")
	tr := traceUntil(t, h.g, id.String(), stateIs("sent"))
	if tr.As[0] != "MIMI message ID" || tr.Messages[0].Direction != "to phone" || tr.Messages[0].Phone != phone || tr.Messages[0].Channel != ChannelSMS {
		t.Errorf("trace %+v", tr)
	}
	ctx := context.Background()
	for _, ref := range []string{"00A1", "a2"} {
		if err := h.g.Receipt(ctx, Receipt{Channel: ChannelSMS, Source: "smsc1", Ref: ref, Status: StatusDelivered}); err != nil {
			t.Fatal(err)
		}
	}
	if rid, st := statusOf(t, next(t, reports)); rid != id || st != content.Delivered {
		t.Fatalf("report %s %s", rid, st)
	}
	tr = traceUntil(t, h.g, id.String(), stateIs("delivered"))
	mt := tr.Messages[0]
	wantSteps(t, mt,
		"accepted | taken from mimi.to.tel.15551230002 for delivery: from "+alice,
		"channel asked: auto",
		"OPTIONS | asked now: RCS chat no, file transfer no, revocation no | 20",
		"channel | sms |",
		"submit_sm_resp | ESME_ROK from SMSC smsc1: message id 00A1 (segment 1 of 2) | 20",
		"submit_sm_resp | ESME_ROK from SMSC smsc1: message id a2 (segment 2 of 2) | 20",
		"receipt | DELIVRD (delivered): segment 1 of 2 | 20",
		"receipt | DELIVRD (delivered): segment 2 of 2 | 20",
		"status report | delivered, to "+alice+" on mimi.from.tel.15551230002 | 20",
		"state | delivered | \n",
	)
	if strings.Contains(traced(mt), "two segments") {
		t.Error("the trace shows the message's text")
	}

	// The SMSC message id, in another spelling, finds the same message.
	for _, key := range []string{"00A1", "a2", " A2 "} {
		tr, err := h.g.Trace(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if len(tr.Messages) != 1 || tr.Messages[0].ID != id.String() || !strings.Contains(tr.Messages[0].FoundBy, "SMSC smsc1 message id") {
			t.Errorf("by SMSC id %q: %+v", key, tr)
		}
	}
}

// An RCS message found by its imdn Message-ID, and one that fell back to
// SMS after a SIP 404.
func TestTraceRCS(t *testing.T) {
	t.Parallel()
	rcs := newRCSEdge(Capabilities{Chat: true})
	h := newHarness(t, testConfig(), rcs, newSMSEdge())
	ctx := context.Background()
	id := h.sendToPhone(phone, alice, "", "hi", ChannelAuto)
	m := recv(t, rcs.sent, "RCS message")
	if err := h.g.Receipt(ctx, Receipt{Channel: ChannelRCS, From: phone, Ref: m.Ref, Status: StatusDelivered}); err != nil {
		t.Fatal(err)
	}
	tr := traceUntil(t, h.g, m.Ref, stateIs("delivered"))
	if tr.Messages[0].ID != id.String() || !strings.Contains(tr.Messages[0].FoundBy, "imdn Message-ID") {
		t.Errorf("by imdn Message-ID: %+v", tr)
	}
	wantSteps(t, tr.Messages[0],
		"accepted |", "OPTIONS | asked now: RCS chat yes", "channel | rcs |",
		"SIP answer | 2xx: accepted by the network (final code not recorded); imdn.Message-ID "+m.Ref+" | 20",
		"IMDN | delivered | 20", "status report | delivered", "state | delivered")

	rcs.mu.Lock()
	rcs.sendErr = fmt.Errorf("SIP 404 Not Found: %w", ErrNotRCS)
	rcs.mu.Unlock()
	other := phone[:len(phone)-1] + "9"
	id = h.sendToPhone(other, alice, "", "fallback", ChannelAuto)
	recv(t, h.sms.calls, "SMS")
	tr = traceUntil(t, h.g, id.String(), stateIs("sent"))
	wantSteps(t, tr.Messages[0], "OPTIONS | asked now: RCS chat yes", "channel | rcs, then sms |",
		"fallback | RCS failed (not_rcs: SIP 404 Not Found: not reachable by RCS): sent by SMS |", "submit_sm_resp | ESME_ROK")
}

// By number: what the phone sent and the messages sent to it that were
// reported on; keys that name nothing say so.
func TestTraceByNumberAndUnknown(t *testing.T) {
	t.Parallel()
	rcs := newRCSEdge(Capabilities{Chat: true})
	h := newHarness(t, testConfig(), rcs, newSMSEdge())
	ctx := context.Background()
	reports := h.watch(phone)
	out := h.sendToPhone(phone, alice, "", "to the phone", ChannelAuto)
	m := recv(t, rcs.sent, "RCS message")
	if err := h.g.Receipt(ctx, Receipt{Channel: ChannelRCS, From: phone, Ref: m.Ref, Status: StatusDelivered}); err != nil {
		t.Fatal(err)
	}
	next(t, reports) // the report
	in := Inbound{Channel: ChannelRCS, From: phone, To: m.From, Ref: "Msg-from-phone-1", Notify: Notifications{Delivery: true}, Parts: []Part{{Text: "reply"}}}
	if err := h.g.Receive(ctx, in); err != nil {
		t.Fatal(err)
	}
	inID := next(t, reports).Envelope.ID

	tr := traceUntil(t, h.g, "+1 555 123 0002", func(tr *Trace) bool { return len(tr.Messages) == 2 && tr.Messages[1].State == "delivered" })
	if tr.Messages[0].ID != inID || tr.Messages[0].Direction != "from phone" || tr.Messages[1].ID != out.String() {
		t.Errorf("by number, latest first: %+v", tr.Messages)
	}
	wantSteps(t, tr.Messages[0], "accepted | from +15551230002 to "+string(m.From)+" by rcs, stored on mimi.from.tel.15551230002; imdn.Message-ID Msg-from-phone-1 | 20",
		"notifications asked | delivery |")
	if !strings.Contains(strings.Join(tr.Notes, " "), "latest 20 messages on mimi.from.tel.15551230002") {
		t.Errorf("notes %q", tr.Notes)
	}
	// The phone's own imdn Message-ID and a Call-ID are not indexed.
	for _, key := range []string{"Msg-from-phone-1", "a84b4c76e66710@pc33.example.com", strings.Repeat("ab", 32)} {
		tr, err := h.g.Trace(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if len(tr.Messages) != 0 || len(tr.Notes) == 0 {
			t.Errorf("%q: %+v", key, tr)
		}
	}
	if _, err := h.g.Trace(ctx, "  "); err == nil {
		t.Error("an empty key is traced")
	}
}

// An RCS message revoked for want of an IMDN and sent by SMS: the RCS
// attempt's 2xx stays in the trace, before the revocation and the SMS.
func TestTraceRevokedThenSMS(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.DeliveryTimeout = 200 * time.Millisecond
	rcs := newRCSEdge(Capabilities{Chat: true, Revoke: true})
	h := newHarness(t, cfg, rcs, newSMSEdge())
	ctx := context.Background()
	id := h.sendToPhone(phone, alice, "", "are you there?", ChannelAuto)
	m := recv(t, rcs.sent, "RCS message")
	recv(t, rcs.revoked, "revocation")
	traceUntil(t, h.g, id.String(), stateIs("revoking"))
	if err := h.g.RevocationResult(ctx, RevocationResult{From: phone, Ref: m.Ref, Revoked: true}); err != nil {
		t.Fatal(err)
	}
	recv(t, h.sms.calls, "SMS after revocation")
	tr := traceUntil(t, h.g, id.String(), func(tr *Trace) bool {
		return len(tr.Messages) == 1 && tr.Messages[0].Channel == ChannelSMS
	})
	wantSteps(t, tr.Messages[0], "OPTIONS | asked now: RCS chat yes, file transfer no, revocation yes",
		"channel | rcs, then sms after revocation |", "SIP answer | 2xx", "revocation | requested: no IMDN delivered in time | 20",
		"revocation | revoked by the network; going by SMS | 20", "submit_sm_resp | ESME_ROK from SMSC smsc1", "state | sent")
}
