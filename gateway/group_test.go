package gateway

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/content"
	"github.com/mimigw/mimigw/mimi/uri"
)

// The phone users of one room, as the MIMI side addresses them.
const team = "mimi://desk.example/r/team"

var members = []uri.Number{phone, "+15551230003", "+15551230004"}

// publishForEach publishes m on the subject of each of ns, as the MIMI
// side does for a room's phone users, and checks what the bus says of
// duplicates.
func (h *harness) publishForEach(ns []uri.Number, m *content.Message, channel Channel, wantDup bool) content.MessageID {
	h.t.Helper()
	data, err := m.Encode()
	if err != nil {
		h.t.Fatal(err)
	}
	id := content.ComputeID(m.Extensions.SenderURI, m.Extensions.RoomURI, data, m.Salt)
	for _, n := range ns {
		env := bus.Envelope{ID: id.String(), Sender: m.Extensions.SenderURI, Recipient: n.TelURI(), Room: m.Extensions.RoomURI, Channel: string(channel)}
		dup, err := h.bus.Publish(context.Background(), bus.SubjectToPhone(n), env, data)
		if err != nil || dup != wantDup {
			h.t.Fatalf("publish %s for %s: duplicate %v, %v; want duplicate %v", id, n, dup, err, wantDup)
		}
	}
	return id
}

// bySMS collects one SMS for each of ns, by recipient, and fails on a
// recipient missing or sent twice.
func bySMS(t *testing.T, sms *smsEdge, ns []uri.Number) map[uri.Number]OutboundSMS {
	t.Helper()
	got := map[uri.Number]OutboundSMS{}
	for range ns {
		m := recv(t, sms.calls, "SMS")
		if _, twice := got[m.To]; twice {
			t.Fatalf("two SMS for %s", m.To)
		}
		got[m.To] = m
	}
	if want := slices.Sorted(slices.Values(ns)); !slices.Equal(slices.Sorted(maps.Keys(got)), want) {
		t.Fatalf("SMS went to %v, want %v", slices.Sorted(maps.Keys(got)), want)
	}
	return got
}

// outState reads the state of n's copy of message id.
func (h *harness) outState(id content.MessageID, n uri.Number) outState {
	h.t.Helper()
	var rec outRecord
	if _, err := h.g.rec.get(context.Background(), outKey(copyKey{id: id.String(), to: n}), &rec); err != nil {
		h.t.Fatalf("record of %s for %s: %v", id, n, err)
	}
	return rec.State
}

// A message for a room reaches each of its phone users by SMS, each copy
// with its own record, receipts and report; publishing it again stores
// nothing; a delete published for each reaches each, quoting their copy.
func TestRoomMessageBySMS(t *testing.T) {
	t.Parallel()
	sms := newSMSEdge()
	sms.answer = func(m OutboundSMS) (SMSSent, error) {
		return SMSSent{Source: "smsc1", Refs: []string{m.ID[:8] + "-" + m.To.Digits()}}, nil
	}
	h := newHarness(t, testConfig(), nil, sms)
	reports := map[uri.Number]<-chan *bus.Delivery{}
	for _, n := range members {
		reports[n] = h.watch(n)
	}
	m := content.NewText(alice, team, "lunch at noon", randomSalt())
	id := h.publishForEach(members, m, ChannelSMS, false)
	h.publishForEach(members, m, ChannelSMS, true)
	got := bySMS(t, sms, members)
	for n, s := range got {
		if s.Text != "lunch at noon" || s.ID != id.String() {
			t.Errorf("SMS for %s: %+v", n, s)
		}
	}
	nothing(t, sms.calls, "SMS sent twice")

	// A receipt for the first phone reports for it alone.
	ctx := context.Background()
	first := members[0]
	if err := h.g.Receipt(ctx, Receipt{Channel: ChannelSMS, Source: "smsc1", Ref: id.String()[:8] + "-" + first.Digits(), Status: StatusDelivered}); err != nil {
		t.Fatal(err)
	}
	d := next(t, reports[first])
	if rid, st := statusOf(t, d); rid != id || st != content.Delivered || d.Envelope.Sender != "mimi://gw.example.net/u/"+string(first) {
		t.Errorf("report %s %s from %s", rid, st, d.Envelope.Sender)
	}
	for _, n := range members[1:] {
		nothing(t, reports[n], "report for "+string(n))
		if st := h.outState(id, n); st != outSent {
			t.Errorf("copy for %s is %s after another phone's receipt", n, st)
		}
	}
	for _, n := range members[1:] {
		if err := h.g.Receipt(ctx, Receipt{Channel: ChannelSMS, Source: "smsc1", Ref: id.String()[:8] + "-" + n.Digits(), Status: StatusDelivered}); err != nil {
			t.Fatal(err)
		}
		if rid, st := statusOf(t, next(t, reports[n])); rid != id || st != content.Delivered {
			t.Errorf("report for %s: %s %s", n, rid, st)
		}
	}

	// Traced by its ID, the message shows each phone's copy.
	tr, err := h.g.Trace(ctx, id.String())
	if err != nil {
		t.Fatal(err)
	}
	var traced []uri.Number
	for _, mt := range tr.Messages {
		if mt.ID == id.String() && mt.State == string(outDelivered) {
			traced = append(traced, mt.Phone)
		}
	}
	if slices.Sort(traced); !slices.Equal(traced, members) {
		t.Errorf("trace shows delivered copies for %v, want %v: %+v", traced, members, tr)
	}

	// alice deletes her message: each phone is told, quoting its copy.
	del := &content.Message{Salt: randomSalt(), Replaces: &id, Extensions: m.Extensions, Body: content.NewNullPart(content.Render)}
	h.publishForEach(members, del, ChannelSMS, false)
	for n, s := range bySMS(t, sms, members) {
		if s.Text != `Deleted "lunch at noon"` {
			t.Errorf("delete for %s: %q", n, s.Text)
		}
	}
}

// By RCS each copy has its own imdn Message-ID: the first phone's IMDN
// settles its copy only, and the other, not delivered in time, is revoked
// and goes by SMS alone.
func TestRoomMessageByRCS(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.DeliveryTimeout = 200 * time.Millisecond
	rcs := newRCSEdge(Capabilities{Chat: true, Revoke: true})
	sms := newSMSEdge()
	h := newHarness(t, cfg, rcs, sms)
	first, second := members[0], members[1]
	// The first phone's IMDN comes before its message is recorded, so it
	// is applied before the delivery timer is set.
	rcs.onSend = func(m OutboundRCS) {
		if m.To == first {
			if err := h.g.Receipt(context.Background(), Receipt{Channel: ChannelRCS, From: first, Ref: m.Ref, Status: StatusDelivered}); err != nil {
				t.Error(err)
			}
		}
	}
	reports := map[uri.Number]<-chan *bus.Delivery{first: h.watch(first), second: h.watch(second)}
	id := h.publishForEach(members[:2], content.NewText(alice, team, "anyone?", randomSalt()), ChannelAuto, false)
	sent := map[uri.Number]OutboundRCS{}
	for range 2 {
		m := recv(t, rcs.sent, "RCS message")
		sent[m.To] = m
	}
	if len(sent) != 2 || sent[first].Ref == sent[second].Ref || sent[first].Ref == "" {
		t.Fatalf("RCS messages %+v: want one for each phone, each with its own imdn Message-ID", sent)
	}
	if rid, st := statusOf(t, next(t, reports[first])); rid != id || st != content.Delivered {
		t.Errorf("report for %s: %s %s", first, rid, st)
	}
	r := recv(t, rcs.revoked, "revocation")
	if r.To != second || r.Ref != sent[second].Ref {
		t.Fatalf("revocation %+v, want the copy for %s", r, second)
	}
	nothing(t, rcs.revoked, "second revocation")
	if err := h.g.RevocationResult(context.Background(), RevocationResult{From: second, Ref: r.Ref, Revoked: true}); err != nil {
		t.Fatal(err)
	}
	s := recv(t, sms.calls, "SMS after revocation")
	if s.To != second || s.Text != "anyone?" {
		t.Errorf("SMS %+v, want the text for %s", s, second)
	}
	nothing(t, sms.calls, "second SMS")
	nothing(t, reports[second], "report before the SMS receipt")
	if st := h.outState(id, first); st != outDelivered {
		t.Errorf("the first phone's copy is %s, want delivered", st)
	}
}

// A record written before copies were kept apart (out.<id>) still counts:
// a message delivered again is not sent twice, and a receipt for its
// network id settles it.
func TestRecordFromBeforeCopies(t *testing.T) {
	t.Parallel()
	sms := newSMSEdge()
	h := newHarness(t, testConfig(), nil, sms)
	reports := h.watch(phone)
	ctx := context.Background()
	m := content.NewText(alice, team, "from the old version", randomSalt())
	data, _ := m.Encode()
	id := content.ComputeID(alice, team, data, m.Salt)
	old := copyKey{id: id.String()}
	rec := &outRecord{ID: id.String(), Sender: alice, Recipient: phone, Room: team, From: string(lentNum), State: outSent, Accepted: time.Now()}
	if err := h.g.sendSMS(ctx, old, rec.From, "from the old version", rec); err != nil {
		t.Fatal(err)
	}
	s := recv(t, sms.calls, "SMS")
	var ref refRecord
	if _, err := h.g.rec.get(ctx, smsRefKey("smsc1", "id-"+id.String()[:8]), &ref); err != nil || ref.copyOf() != old {
		t.Fatalf("ref record %+v, %v: want one naming out.%s", ref, err, id)
	}
	o := &outbound{id: id, msg: m, data: data, sender: alice, room: team, recipient: phone, channel: ChannelSMS}
	if err := h.g.deliver(ctx, o, 2); err != nil {
		t.Fatal(err)
	}
	nothing(t, sms.calls, "second SMS")
	if err := h.g.Receipt(ctx, Receipt{Channel: ChannelSMS, Source: "smsc1", Ref: "id-" + s.ID[:8], Status: StatusDelivered}); err != nil {
		t.Fatal(err)
	}
	if rid, st := statusOf(t, next(t, reports)); rid != id || st != content.Delivered {
		t.Errorf("report %s %s", rid, st)
	}
}

// Timer keys name the copy they are for, or, set before copies were kept
// apart, the message alone.
func TestCopyKeyInTimerKeys(t *testing.T) {
	t.Parallel()
	id := content.ComputeID(alice, team, []byte("x"), randomSalt()).String()
	for _, k := range []copyKey{{id: id, to: phone}, {id: id}} {
		got, err := parseCopyKey(k.String())
		if err != nil || got != k {
			t.Errorf("parseCopyKey(%q) = %+v, %v; want %+v", k.String(), got, err, k)
		}
	}
	for _, bad := range []string{id + ".", id + ".+15551230002", id + ".1555x"} {
		if _, err := parseCopyKey(bad); err == nil {
			t.Errorf("parseCopyKey(%q) took it", bad)
		}
	}
}
