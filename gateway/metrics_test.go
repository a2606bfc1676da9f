package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/mimigw/mimigw/gateway/identity"
	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/content"
	"github.com/mimigw/mimigw/mimi/uri"
)

// publishAcceptedAt publishes a MIMI text for n as the MIMI side would,
// with Mimi-Accepted at accepted.
func (h *harness) publishAcceptedAt(n uri.Number, text string, channel Channel, accepted time.Time) content.MessageID {
	h.t.Helper()
	room := identity.DMRoom(domain, alice, uri.UserURI(domain, n))
	m := content.NewText(alice, room, text, randomSalt())
	data, err := m.Encode()
	if err != nil {
		h.t.Fatal(err)
	}
	id := content.ComputeID(alice, room, data, m.Salt)
	env := bus.Envelope{ID: id.String(), Sender: alice, Recipient: n.TelURI(), Room: room, Channel: string(channel), Accepted: accepted}
	if _, err := h.bus.Publish(context.Background(), bus.SubjectToPhone(n), env, data); err != nil {
		h.t.Fatal(err)
	}
	return id
}

// deliverySeconds is the count and sum of mimigw_gateway_delivery_seconds
// for channel.
func (h *harness) deliverySeconds(channel Channel) (count uint64, sum float64) {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "mimigw_gateway_delivery_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "channel" && l.GetValue() == string(channel) {
					return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
				}
			}
		}
	}
	return 0, 0
}

// awaitDeliveries waits until channel has n observations (a receipt held
// because it came before the message's record is applied by the sender,
// after the test saw the SMS or RCS message go) and returns their sum.
func (h *harness) awaitDeliveries(channel Channel, n uint64) float64 {
	h.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		got, sum := h.deliverySeconds(channel)
		if got == n {
			return sum
		}
		if got > n || time.Now().After(deadline) {
			h.t.Fatalf("%s: %d observations, want %d", channel, got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An IMDN delivered observes the time since Mimi-Accepted once; the read
// that follows does not observe again.
func TestDeliveryMetricRCS(t *testing.T) {
	t.Parallel()
	rcs := newRCSEdge(Capabilities{Chat: true})
	h := newHarness(t, testConfig(), rcs, newSMSEdge())
	reports := h.watch(phone)
	accepted := time.Now().Add(-3 * time.Second).Truncate(time.Millisecond)
	h.publishAcceptedAt(phone, "timed", ChannelAuto, accepted)
	m := recv(t, rcs.sent, "RCS message")
	if n, _ := h.deliverySeconds(ChannelRCS); n != 0 {
		t.Fatalf("%d observations before any receipt", n)
	}
	ctx := context.Background()
	for _, st := range []Status{StatusDelivered, StatusDelivered, StatusRead} {
		if err := h.g.Receipt(ctx, Receipt{Channel: ChannelRCS, From: phone, Ref: m.Ref, Status: st}); err != nil {
			t.Fatal(err)
		}
	}
	next(t, reports)
	next(t, reports)
	if sum := h.awaitDeliveries(ChannelRCS, 1); sum < 3 || sum > 3+wait.Seconds() {
		t.Errorf("rcs: observed %.3f s; want at least 3 s", sum)
	}
	time.Sleep(100 * time.Millisecond)
	if n, _ := h.deliverySeconds(ChannelRCS); n != 1 {
		t.Errorf("rcs: %d observations after delivered twice and read, want 1", n)
	}
	if n, _ := h.deliverySeconds(ChannelSMS); n != 0 {
		t.Errorf("sms: %d observations", n)
	}
}

// An SMS in two segments is delivered when the receipts of both say
// DELIVRD: one observation, on the second.
func TestDeliveryMetricSMS(t *testing.T) {
	t.Parallel()
	sms := newSMSEdge()
	sms.answer = func(m OutboundSMS) (SMSSent, error) {
		return SMSSent{Source: "smsc1", Refs: []string{"s1", "s2"}}, nil
	}
	h := newHarness(t, testConfig(), nil, sms)
	reports := h.watch(phone)
	h.publishAcceptedAt(phone, "two parts", ChannelSMS, time.Now().Add(-2*time.Second))
	recv(t, sms.calls, "SMS")
	ctx := context.Background()
	if err := h.g.Receipt(ctx, Receipt{Channel: ChannelSMS, Source: "smsc1", Ref: "s1", Status: StatusDelivered}); err != nil {
		t.Fatal(err)
	}
	if n, _ := h.deliverySeconds(ChannelSMS); n != 0 {
		t.Errorf("%d observations after one segment of two", n)
	}
	if err := h.g.Receipt(ctx, Receipt{Channel: ChannelSMS, Source: "smsc1", Ref: "s2", Status: StatusDelivered}); err != nil {
		t.Fatal(err)
	}
	if _, st := statusOf(t, next(t, reports)); st != content.Delivered {
		t.Fatalf("report %s", st)
	}
	if sum := h.awaitDeliveries(ChannelSMS, 1); sum < 2 {
		t.Errorf("sms: observed %.3f s; want at least 2 s", sum)
	}
}

// A message that fails is not observed, and neither is one whose
// delivery is learnt from a revocation that came too late (no receipt
// says when it was delivered).
func TestDeliveryMetricNotDelivered(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.DeliveryTimeout = 200 * time.Millisecond
	rcs := newRCSEdge(Capabilities{Chat: true, Revoke: true})
	h := newHarness(t, cfg, rcs, newSMSEdge())
	reports := h.watch(phone)
	h.sendToPhone(phone, alice, "", "late", ChannelAuto)
	m := recv(t, rcs.sent, "RCS message")
	recv(t, rcs.revoked, "revocation")
	if err := h.g.RevocationResult(context.Background(), RevocationResult{From: phone, Ref: m.Ref, Revoked: false}); err != nil {
		t.Fatal(err)
	}
	if _, st := statusOf(t, next(t, reports)); st != content.Delivered {
		t.Fatalf("report %s", st)
	}
	h.sendToPhone(phone, alice, "", "lost", ChannelAuto)
	m = recv(t, rcs.sent, "second RCS message")
	if err := h.g.Receipt(context.Background(), Receipt{Channel: ChannelRCS, From: phone, Ref: m.Ref, Status: StatusFailed}); err != nil {
		t.Fatal(err)
	}
	if _, st := statusOf(t, next(t, reports)); st != content.Error {
		t.Fatalf("report %s", st)
	}
	time.Sleep(100 * time.Millisecond)
	if n, _ := h.deliverySeconds(ChannelRCS); n != 0 {
		t.Errorf("%d observations, want none", n)
	}
}
