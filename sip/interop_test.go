package sip

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/sip/sipptest"
)

// SIPp sends a pager-mode MESSAGE with CPIM; the receiver gets the text,
// sender and Ref, the bus holds it, and SIPp sees 202.
func TestSIPpMessageToReceiver(t *testing.T) {
	for _, tc := range []struct{ transport, flag string }{{"udp", "u1"}, {"tcp", "t1"}} {
		t.Run(tc.transport, func(t *testing.T) {
			recv := newTestReceiver(t)
			e := startEdge(t, testConfig(), recv)
			r := sipptest.Start(t, "uac_message.xml", "-t", tc.flag, "-m", "1",
				"-key", "caller", "+15551230001", "-key", "callee", "+15551230002", "-key", "text", "Hello from SIPp",
				e.Addr(tc.transport).String())
			r.Wait(t)
			in, _, _ := recv.snapshot()
			if len(in) != 1 {
				t.Fatalf("receiver got %d messages, want 1", len(in))
			}
			m := in[0]
			if len(m.Parts) != 1 || m.Parts[0].Text != "Hello from SIPp" {
				t.Errorf("parts %+v, want the text %q", m.Parts, "Hello from SIPp")
			}
			if m.From != "+15551230001" || m.To != "+15551230002" {
				t.Errorf("from %s to %s, want +15551230001 to +15551230002", m.From, m.To)
			}
			if !strings.HasPrefix(m.Ref, "sipp-") || !strings.HasSuffix(m.Ref, "-1") {
				t.Errorf("Ref %q, want the scenario's imdn.Message-ID sipp-<pid>-1", m.Ref)
			}
			if !m.Notify.Delivery || !m.Notify.Display {
				t.Errorf("notify %+v, want delivery and display", m.Notify)
			}
			if msgs := recv.fromPhone(t); len(msgs) != 1 || msgs[0].Subject() != "mimi.from.tel.15551230001" {
				t.Errorf("bus holds %v, want one message on mimi.from.tel.15551230001", subjects(msgs))
			}
		})
	}
}

// sippPhone starts an edge whose outbound proxy is a SIPp UAS playing a
// phone.
func sippPhone(t *testing.T, scenario string, calls int, extra ...string) (*Edge, *testReceiver, *sipptest.Run) {
	t.Helper()
	sipptest.Need(t)
	port := sipptest.FreePort(t, "udp")
	cfg := testConfig()
	cfg.OutboundProxy = "sip:127.0.0.1:" + strconv.Itoa(port) + ";transport=udp"
	recv := newTestReceiver(t)
	e := startEdge(t, cfg, recv)
	args := append([]string{"-t", "u1", "-p", strconv.Itoa(port), "-m", strconv.Itoa(calls)}, extra...)
	r := sipptest.Start(t, scenario, args...)
	r.WaitUDPBound(t, port)
	return e, recv, r
}

func outboundText(ref string) gateway.OutboundRCS {
	return gateway.OutboundRCS{
		ID: "0123", From: "+15551230001", To: "+15551230002", Ref: ref,
		ConversationID: "conv-1", ContributionID: "contrib-1",
		Parts:  []gateway.Part{{Text: "Hello phone"}},
		Notify: gateway.Notifications{Delivery: true},
	}
}

// The gateway asks a SIPp phone for its capabilities, sends it a message,
// and the phone's IMDN "delivered" comes back to the receiver.
func TestSendRCSToSIPpPhone(t *testing.T) {
	e, recv, r := sippPhone(t, "uas_rcs_phone.xml", 2, "-trace_msg")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	caps, err := e.Capabilities(ctx, "+15551230002")
	if err != nil {
		t.Fatalf("Capabilities: %v", err)
	}
	if want := (gateway.Capabilities{Chat: true, FileTransfer: true, Revoke: true, LargeMessage: true, ChatSession: true}); caps != want {
		t.Fatalf("Capabilities = %+v, want %+v", caps, want)
	}
	if err := e.SendRCS(ctx, outboundText("ref-phone-1")); err != nil {
		t.Fatalf("SendRCS: %v", err)
	}
	recv.waitCalls(t, 1)
	r.Wait(t)
	_, receipts, _ := recv.snapshot()
	if len(receipts) != 1 {
		t.Fatalf("receipts %+v, want one", receipts)
	}
	got := receipts[0]
	if got.Ref != "ref-phone-1" || got.Status != gateway.StatusDelivered || got.From != "+15551230002" || got.Channel != gateway.ChannelRCS {
		t.Fatalf("receipt %+v, want delivered for ref-phone-1 from +15551230002", got)
	}
	traces := r.Traces()
	for _, want := range []string{"MESSAGE sip:+15551230002@mimigw.test;user=phone SIP/2.0", "Content-Type: message/cpim",
		"imdn.Message-ID: ref-phone-1", `Accept-Contact: *;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.msg"`,
		"P-Preferred-Service: urn:urn-7:3gpp-service.ims.icsi.oma.cpm.msg", "Contribution-ID: contrib-1", "Conversation-ID: conv-1",
		"imdn.Disposition-Notification: positive-delivery, negative-delivery", "Hello phone",
		"From: <sip:+15551230001@mimigw.test;user=phone>"} {
		if !strings.Contains(traces, want) {
			t.Errorf("the MESSAGE the phone got lacks %q", want)
		}
	}
}

// A number that is not an RCS user: OPTIONS gives no capabilities and no
// error; a MESSAGE fails with ErrNotRCS.
func TestSendRCSToNotRCS(t *testing.T) {
	e, _, r := sippPhone(t, "uas_not_rcs.xml", 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	caps, err := e.Capabilities(ctx, "+15551230002")
	if err != nil || caps != (gateway.Capabilities{}) {
		t.Fatalf("Capabilities = %+v, %v; want none and no error", caps, err)
	}
	err = e.SendRCS(ctx, outboundText("ref-404"))
	if !errors.Is(err, gateway.ErrNotRCS) {
		t.Fatalf("SendRCS = %v, want ErrNotRCS", err)
	}
	r.Wait(t)
}

// A phone that never reports delivery: the gateway revokes, and the
// revocation MESSAGE (CPIM, application/vnd.gsma.rcsrevoke+xml naming the
// original imdn.Message-ID, with the original Conversation-ID and
// Contribution-ID) reaches the phone, which answers 200.
func TestRevokeToSilentPhone(t *testing.T) {
	e, recv, r := sippPhone(t, "uas_rcs_phone_silent.xml", 3, "-trace_logs", "-trace_msg")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	caps, err := e.Capabilities(ctx, "+15551230002")
	if err != nil || !caps.Revoke {
		t.Fatalf("Capabilities = %+v, %v; want revocation support", caps, err)
	}
	if err := e.SendRCS(ctx, outboundText("ref-silent-1")); err != nil {
		t.Fatalf("SendRCS: %v", err)
	}
	err = e.Revoke(ctx, gateway.Revocation{From: "+15551230001", To: "+15551230002", Ref: "ref-silent-1",
		ConversationID: "conv-1", ContributionID: "contrib-1"})
	if err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	r.Wait(t)
	traces := r.Traces()
	if !strings.Contains(traces, "REVOKE ") {
		t.Fatalf("the phone logged no revocation:\n%s", traces)
	}
	for _, want := range []string{"<Message-ID>ref-silent-1</Message-ID>", "Conversation-ID: conv-1", "Contribution-ID: contrib-1",
		"Content-Type: application/vnd.gsma.rcsrevoke+xml"} {
		if !strings.Contains(traces, want) {
			t.Errorf("the revocation MESSAGE the phone got lacks %q", want)
		}
	}
	recv.waitCalls(t, 1)
	_, receipts, results := recv.snapshot()
	if len(receipts) != 0 {
		t.Errorf("receipts %+v from a phone that sends none", receipts)
	}
	if want := (gateway.RevocationResult{From: "+15551230002", Ref: "ref-silent-1", Revoked: true}); len(results) != 1 || results[0] != want {
		t.Errorf("revocation results %+v, want %+v", results, want)
	}
}
