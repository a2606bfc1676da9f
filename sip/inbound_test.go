package sip

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/mimigw/mimigw/gateway"
)

func TestMessageOverUDPReachesBus(t *testing.T) {
	recv := newTestReceiver(t)
	e := startEdge(t, testConfig(), recv)
	c := dialRaw(t, "udp", e.Addr("udp"))
	c.send(request{local: c.conn.LocalAddr(), contentType: "message/cpim", body: cpimText("Msg2BCqcBUWKA", "Hello"),
		extra: []string{"Conversation-ID: conv-1"}}.String())
	res := c.answer()
	if code, reason := status(res); code != 202 {
		t.Fatalf("answer %d %s, want 202", code, reason)
	}
	in, _, _ := recv.snapshot()
	if len(in) != 1 {
		t.Fatalf("receiver got %d messages, want 1", len(in))
	}
	got := in[0]
	want := gateway.Inbound{Channel: gateway.ChannelRCS, From: "+15551230001", To: "+15551230002", Ref: "Msg2BCqcBUWKA",
		Parts: []gateway.Part{{Text: "Hello"}}, Notify: gateway.Notifications{Delivery: true, Display: true},
		ConversationID: "conv-1", Sent: time.Date(2026, 8, 8, 6, 40, 56, 0, time.UTC)}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Fatalf("receiver got\n%s\nwant\n%s", gb, wb)
	}
	msgs := recv.fromPhone(t)
	if len(msgs) != 1 || msgs[0].Subject() != "mimi.from.tel.15551230001" {
		t.Fatalf("bus holds %d messages (first on %v), want one on mimi.from.tel.15551230001", len(msgs), subjects(msgs))
	}
}
