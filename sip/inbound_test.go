package sip

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

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

// A retransmission (same branch) gets the same answer, To tag included,
// and the gateway is called once; a copy arriving while the first is being
// handled is absorbed.
func TestRetransmissionSameAnswer(t *testing.T) {
	recv := newTestReceiver(t)
	e := startEdge(t, testConfig(), recv)
	c := dialRaw(t, "udp", e.Addr("udp"))
	msg := request{local: c.conn.LocalAddr(), contentType: "message/cpim", body: cpimText("retrans-1", "once")}.String()

	block := make(chan struct{})
	recv.set(func(r *testReceiver) { r.block = block })
	c.send(msg)
	recv.waitInbound(t, 1)
	c.send(msg) // while the first copy waits on the gateway
	close(block)
	first := c.answer()
	c.noAnswer(200 * time.Millisecond) // the second copy was absorbed
	c.send(msg)                        // after the answer: answered from the cache
	second := c.answer()

	if code, _ := status(first); code != 202 {
		t.Fatalf("first answer %q", first)
	}
	if status1, status2 := headerValue(first, "To"), headerValue(second, "To"); status1 != status2 {
		t.Errorf("To differs: %q vs %q", status1, status2)
	}
	c1, r1 := status(first)
	c2, r2 := status(second)
	if c1 != c2 || r1 != r2 {
		t.Errorf("answers differ: %d %s vs %d %s", c1, r1, c2, r2)
	}
	if in, _, _ := recv.snapshot(); len(in) != 1 {
		t.Fatalf("receiver called %d times, want once", len(in))
	}
	if msgs := recv.fromPhone(t); len(msgs) != 1 {
		t.Fatalf("bus holds %d messages, want 1", len(msgs))
	}
}

// A MESSAGE from an address that is not trusted (and no digest) is refused
// with 403 and never reaches the gateway or the bus.
func TestUntrustedRefused(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			recv := newTestReceiver(t)
			cfg := testConfig()
			cfg.Trusted.CIDRs = []string{"10.0.0.0/8"}
			e := startEdge(t, cfg, recv)
			c := dialRaw(t, network, e.Addr(network))
			c.send(request{local: c.conn.LocalAddr(), transport: strings.ToUpper(network), contentType: "message/cpim",
				body:  cpimText("untrusted-1", "let me in"),
				extra: []string{"P-Asserted-Identity: <sip:+15551230009@ims.test>"}}.String())
			code, reason := status(c.answer())
			if code != 403 || !strings.Contains(reason, "untrusted") {
				t.Fatalf("answer %d %s, want 403 naming the untrusted source", code, reason)
			}
			if in, rc, rv := recv.snapshot(); len(in)+len(rc)+len(rv) != 0 {
				t.Fatalf("the gateway was called: %v %v %v", in, rc, rv)
			}
			if msgs := recv.fromPhone(t); len(msgs) != 0 {
				t.Fatalf("bus holds %v", subjects(msgs))
			}
		})
	}
}

func cpimWith(headers, content string) string { return headers + "\r\n" + content }

const cpimHead = "From: <sip:+15551230001@ims.test>\r\nTo: <sip:+15551230002@mimigw.test>\r\n" +
	"NS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: bad-1\r\nDateTime: 2026-08-08T06:40:56.000Z\r\n"

func imdnBody(xml string) string {
	return cpimWith(cpimHead, "Content-Type: message/imdn+xml\r\nContent-Disposition: notification\r\n\r\n"+xml)
}

// Bad bodies get a 4xx whose reason names the problem, and nothing reaches
// the gateway. Over TCP, so that a 100 KB header line fits.
func TestBadBodies(t *testing.T) {
	recv := newTestReceiver(t)
	cfg := testConfig()
	cfg.MaxBody = 256 << 10
	e := startEdge(t, cfg, recv)
	c := dialRaw(t, "tcp", e.Addr("tcp"))
	long := strings.Repeat("x", 100<<10)
	cases := []struct {
		name        string
		contentType string
		body        string
		code        int
		reason      string
	}{
		{"cpim without blank line", "message/cpim", cpimHead + "Content-Type: text/plain\r\n\r\nhi", 400, "blank line"},
		{"cpim without content type", "message/cpim", cpimWith(cpimHead, "\r\nhi"), 400, "Content-Type"},
		{"bad NS line", "message/cpim", cpimWith("NS: imdn urn:ietf:params:imdn\r\nimdn.Message-ID: x\r\n", "Content-Type: text/plain\r\n\r\nhi"), 400, "NS"},
		{"bad base64", "message/cpim", cpimWith(cpimHead, "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!"), 400, "Content-Transfer-Encoding"},
		{"100 KB header line", "message/cpim", cpimWith(cpimHead+"X-Long: "+long+"\r\n", "Content-Type: text/plain\r\n\r\nhi"), 400, "too long"},
		{"imdn with DOCTYPE", "message/cpim", imdnBody(`<?xml version="1.0"?><!DOCTYPE imdn [<!ENTITY x "y">]><imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>m</message-id><datetime>2026-08-08T06:41:00Z</datetime><delivery-notification><status><delivered/></status></delivery-notification></imdn>`), 400, "DOCTYPE"},
		{"imdn with only unknown elements", "message/cpim", imdnBody(`<imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>m</message-id><datetime>2026-08-08T06:41:00Z</datetime><surprise-notification/></imdn>`), 400, "missing"},
		{"imdn in the wrong namespace", "message/cpim", imdnBody(`<imdn xmlns="urn:example:not-imdn"><message-id>m</message-id><datetime>2026-08-08T06:41:00Z</datetime><delivery-notification><status><delivered/></status></delivery-notification></imdn>`), 400, "IMDN"},
		{"cpim without message id", "message/cpim", cpimWith("From: <sip:+15551230001@ims.test>\r\n", "Content-Type: text/plain\r\n\r\nhi"), 400, "imdn.Message-ID"},
		{"text not UTF-8", "message/cpim", cpimWith(cpimHead, "Content-Type: text/plain\r\n\r\n\xff\xfe"), 400, "UTF-8"},
		{"ft-http without url", "message/cpim", cpimWith(cpimHead, "Content-Type: application/vnd.gsma.rcs-ft-http+xml\r\n\r\n"+
			`<file xmlns="urn:gsma:params:xml:ns:rcs:rcs:fthttp"><file-info type="file"><file-size>1</file-size><content-type>image/jpeg</content-type></file-info></file>`), 400, "fthttp"},
		{"unsupported media type", "text/html", "<b>hi</b>", 415, "text/html"},
		{"no content type", "", "hello", 400, "Content-Type"},
		{"empty body", "message/cpim", "", 400, "without a body"},
		{"broken recipient list", "multipart/mixed;boundary=b", "--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--\r\n", 400, "recipient"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.send(request{local: c.conn.LocalAddr(), transport: "TCP", contentType: tc.contentType, body: tc.body}.String())
			res := c.answer()
			code, reason := status(res)
			t.Logf("%d %s", code, reason)
			if code != tc.code || !strings.Contains(reason, tc.reason) {
				t.Fatalf("answer %d %q, want %d naming %q", code, reason, tc.code, tc.reason)
			}
			if code == 415 && headerValue(res, "Accept") == "" {
				t.Errorf("415 without Accept")
			}
		})
	}
	if in, rc, rv := recv.snapshot(); len(in)+len(rc)+len(rv) != 0 {
		t.Fatalf("the gateway was called with bad input: %v %v %v", in, rc, rv)
	}
}

// A body over max_body gets 413 over UDP too, where the edge itself
// checks it (over TCP the framer takes it out first, below).
func TestBodyTooLarge(t *testing.T) {
	recv := newTestReceiver(t)
	cfg := testConfig()
	cfg.MaxBody = 2000
	e := startEdge(t, cfg, recv)
	c := dialRaw(t, "udp", e.Addr("udp"))
	c.send(request{local: c.conn.LocalAddr(), contentType: "message/cpim",
		body: cpimText("big-1", strings.Repeat("a", 3000))}.String())
	if code, reason := status(c.answer()); code != 413 {
		t.Fatalf("answer %d %s, want 413", code, reason)
	}
}

// A body far over max_body, beyond what the stream parser would hold, gets
// a 413 too, and the connection stays: the messages queued behind it on
// the same connection, in the same write or the next, are served.
func TestBodyTooLargeKeepsConnection(t *testing.T) {
	recv := newTestReceiver(t)
	cfg := testConfig()
	cfg.MaxBody = 2000
	e := startEdge(t, cfg, recv)
	c := dialRaw(t, "tcp", e.Addr("tcp"))
	big := func() string {
		return request{local: c.conn.LocalAddr(), transport: "TCP", contentType: "message/cpim",
			body: cpimText(newMessageID(), strings.Repeat("a", 200_000))}.String()
	}
	small := func(id string) string {
		return request{local: c.conn.LocalAddr(), transport: "TCP", contentType: "message/cpim", body: cpimText(id, "small")}.String()
	}
	c.send(big() + small("after-1"))
	for i, want := range []int{413, 202} {
		res := c.answer()
		if code, reason := status(res); code != want {
			t.Fatalf("answer %d: %d %s, want %d", i, code, reason, want)
		} else if want == 413 && !strings.Contains(reason, "limit 2000") {
			t.Errorf("413 reason %q does not name the limit", reason)
		}
	}
	c.send(big())
	c.send(small("after-2"))
	for i, want := range []int{413, 202} {
		if code, reason := status(c.answer()); code != want {
			t.Fatalf("second round, answer %d: %d %s, want %d", i, code, reason, want)
		}
	}
	recv.waitInbound(t, 2)
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if len(recv.inbound) != 2 || recv.inbound[0].Ref != "after-1" || recv.inbound[1].Ref != "after-2" {
		t.Errorf("gateway got %+v, want the two small messages only", recv.inbound)
	}
}

// What the gateway returns decides the answer: ErrUnavailable is a 503
// with Retry-After, ErrRejected a 403 naming why.
func TestReceiverOutcomes(t *testing.T) {
	recv := newTestReceiver(t)
	e := startEdge(t, testConfig(), recv)
	c := dialRaw(t, "udp", e.Addr("udp"))
	for _, tc := range []struct {
		err    error
		code   int
		reason string
		retry  string
	}{
		{fmt.Errorf("bus: %w", gateway.ErrUnavailable), 503, "try again", "5"},
		{fmt.Errorf("no route to +15551230002: %w", gateway.ErrRejected), 403, "no route to +15551230002", ""},
	} {
		recv.set(func(r *testReceiver) { r.fail = tc.err })
		c.send(request{local: c.conn.LocalAddr(), contentType: "message/cpim", body: cpimText(newMessageID(), "x")}.String())
		res := c.answer()
		code, reason := status(res)
		if code != tc.code || !strings.Contains(reason, tc.reason) || headerValue(res, "Retry-After") != tc.retry {
			t.Errorf("gateway error %v: answer %d %q Retry-After %q, want %d %q %q", tc.err, code, reason,
				headerValue(res, "Retry-After"), tc.code, tc.reason, tc.retry)
		}
	}
}

// An IMDN becomes a receipt; isComposing is counted and answered, and
// nothing reaches the gateway.
func TestNotificationsIn(t *testing.T) {
	recv := newTestReceiver(t)
	reg := prometheus.NewRegistry()
	cfg := testConfig()
	e, err := NewEdge(cfg, recv, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	runEdge(t, e)
	c := dialRaw(t, "udp", e.Addr("udp"))
	for _, tc := range []struct {
		body   string
		status gateway.Status
	}{
		{imdnBody(`<imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>orig-1</message-id><datetime>2026-08-08T06:41:00Z</datetime><delivery-notification><status><delivered/></status><unknown-extension/></delivery-notification></imdn>`), gateway.StatusDelivered},
		{imdnBody(`<imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>orig-1</message-id><datetime>2026-08-08T06:42:00Z</datetime><display-notification><status><displayed/></status></display-notification></imdn>`), gateway.StatusRead},
		{imdnBody(`<imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>orig-2</message-id><datetime>2026-08-08T06:42:00Z</datetime><delivery-notification><status><failed/></status></delivery-notification></imdn>`), gateway.StatusFailed},
	} {
		c.send(request{local: c.conn.LocalAddr(), contentType: "message/cpim", body: tc.body}.String())
		if code, reason := status(c.answer()); code != 200 {
			t.Fatalf("IMDN answered %d %s, want 200", code, reason)
		}
	}
	_, receipts, _ := recv.snapshot()
	want := []gateway.Status{gateway.StatusDelivered, gateway.StatusRead, gateway.StatusFailed}
	if len(receipts) != len(want) {
		t.Fatalf("receipts %+v", receipts)
	}
	for i, r := range receipts {
		if r.Status != want[i] || r.From != "+15551230001" || r.Channel != gateway.ChannelRCS || r.At.IsZero() {
			t.Errorf("receipt %d = %+v, want %v from +15551230001", i, r, want[i])
		}
	}
	if receipts[0].Ref != "orig-1" || receipts[2].Ref != "orig-2" {
		t.Errorf("receipt refs %q %q", receipts[0].Ref, receipts[2].Ref)
	}

	isComposing := `<?xml version="1.0" encoding="UTF-8"?><isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>active</state><contenttype>text/plain</contenttype><refresh>60</refresh></isComposing>`
	c.send(request{local: c.conn.LocalAddr(), contentType: "message/cpim",
		body: cpimWith(cpimHead, "Content-Type: application/im-iscomposing+xml\r\n\r\n"+isComposing)}.String())
	c.send(request{local: c.conn.LocalAddr(), contentType: "application/im-iscomposing+xml", body: isComposing}.String())
	for i := 0; i < 2; i++ {
		if code, reason := status(c.answer()); code != 200 {
			t.Fatalf("isComposing answered %d %s, want 200", code, reason)
		}
	}
	if in, rc, _ := recv.snapshot(); len(in) != 0 || len(rc) != 3 {
		t.Fatalf("isComposing reached the gateway: %v %v", in, rc)
	}
	if got := testutil.ToFloat64(e.m.isComposing); got != 2 {
		t.Fatalf("isComposing counted %v, want 2", got)
	}
}

// runEdge runs an edge built by the test until the test ends.
func runEdge(t *testing.T, e *Edge) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for e.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatal("edge not ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// OPTIONS for a number the gateway serves: 200 with our tags; for another:
// 404; a keep-alive ping without a user: 200.
func TestOptionsIn(t *testing.T) {
	recv := newTestReceiver(t)
	recv.set(func(r *testReceiver) { r.serves["+15551230002"] = true })
	e := startEdge(t, testConfig(), recv)
	c := dialRaw(t, "udp", e.Addr("udp"))

	c.send(request{method: "OPTIONS", local: c.conn.LocalAddr()}.String())
	res := c.answer()
	if code, _ := status(res); code != 200 {
		t.Fatalf("OPTIONS for a served number: %q", res)
	}
	caps := capabilities([]string{headerValue(res, "Contact")})
	if !caps.Chat || !caps.FileTransfer {
		t.Fatalf("our Contact %q advertises %+v", headerValue(res, "Contact"), caps)
	}

	c.send(request{method: "OPTIONS", local: c.conn.LocalAddr(), ruri: "sip:+15551230003@mimigw.test;user=phone",
		to: "<sip:+15551230003@mimigw.test;user=phone>"}.String())
	if code, reason := status(c.answer()); code != 404 {
		t.Fatalf("OPTIONS for a number not served: %d %s", code, reason)
	}

	c.send(request{method: "OPTIONS", local: c.conn.LocalAddr(), ruri: "sip:" + e.Addr("udp").String(), to: "<sip:mimigw.test>"}.String())
	if code, reason := status(c.answer()); code != 200 {
		t.Fatalf("OPTIONS ping: %d %s", code, reason)
	}
}

// Beyond max_in_flight the edge answers 503 at once rather than queueing.
func TestOverloadShed(t *testing.T) {
	recv := newTestReceiver(t)
	cfg := testConfig()
	cfg.MaxInFlight = 1
	cfg.ReceiveConcurrency = 1
	e := startEdge(t, cfg, recv)
	block := make(chan struct{})
	recv.set(func(r *testReceiver) { r.block = block })
	c := dialRaw(t, "udp", e.Addr("udp"))
	c.send(request{local: c.conn.LocalAddr(), contentType: "message/cpim", body: cpimText("first", "1")}.String())
	recv.waitInbound(t, 1)
	c.send(request{local: c.conn.LocalAddr(), contentType: "message/cpim", body: cpimText("second", "2")}.String())
	res := c.answer()
	if code, reason := status(res); code != 503 || !strings.Contains(reason, "overload") || headerValue(res, "Retry-After") == "" {
		t.Fatalf("second while the first is handled: %q", res)
	}
	close(block)
	if code, reason := status(c.answer()); code != 202 {
		t.Fatalf("first: %d %s", code, reason)
	}
}

// One-to-many: each recipient of the list gets the message, with the same
// Ref.
func TestOneToMany(t *testing.T) {
	recv := newTestReceiver(t)
	e := startEdge(t, testConfig(), recv)
	c := dialRaw(t, "udp", e.Addr("udp"))
	list := `<?xml version="1.0" encoding="UTF-8"?><resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists" xmlns:cp="urn:ietf:params:xml:ns:copycontrol"><list>` +
		`<entry uri="tel:+15551230003" cp:copyControl="to"/><entry uri="sip:+15551230004@ims.test;user=phone" cp:copyControl="to"/></list></resource-lists>`
	body := "--b1\r\nContent-Type: application/resource-lists+xml\r\nContent-Disposition: recipient-list\r\n\r\n" + list +
		"\r\n--b1\r\nContent-Type: message/cpim\r\n\r\n" + cpimText("group-1", "to all") + "\r\n--b1--\r\n"
	c.send(request{local: c.conn.LocalAddr(), ruri: "sip:oma-cpm-group@mimigw.test", contentType: "multipart/mixed;boundary=b1",
		body: body, extra: []string{"Require: recipient-list-message"}}.String())
	if code, reason := status(c.answer()); code != 202 {
		t.Fatalf("answer %d %s", code, reason)
	}
	in, _, _ := recv.snapshot()
	if len(in) != 2 || in[0].To != "+15551230003" || in[1].To != "+15551230004" {
		t.Fatalf("fan-out %+v", in)
	}
	for _, m := range in {
		if m.Ref != "group-1" || m.From != "+15551230001" || m.Parts[0].Text != "to all" {
			t.Errorf("copy %+v", m)
		}
	}
}

// Revocation results, both outcomes, in CPIM or bare.
func TestRevocationResultIn(t *testing.T) {
	recv := newTestReceiver(t)
	e := startEdge(t, testConfig(), recv)
	c := dialRaw(t, "udp", e.Addr("udp"))
	ok := `<?xml version="1.0" encoding="UTF-8"?><rcsrevoke xmlns="urn:gsma:params:xml:ns:rcs:rcs:rcsrevoke"><Message-ID>sent-1</Message-ID><result>success</result></rcsrevoke>`
	failed := `<rcsrevoke xmlns="urn:gsma:params:xml:ns:rcs:rcs:rcsrevoke"><Message-ID>sent-2</Message-ID><result>failure</result></rcsrevoke>`
	c.send(request{local: c.conn.LocalAddr(), contentType: "message/cpim",
		body: cpimWith(cpimHead, "Content-Type: application/vnd.gsma.rcsrevoke+xml\r\n\r\n"+ok)}.String())
	c.send(request{local: c.conn.LocalAddr(), contentType: "application/vnd.gsma.rcsrevoke+xml", body: failed}.String())
	for i := 0; i < 2; i++ {
		if code, reason := status(c.answer()); code != 200 {
			t.Fatalf("answer %d %s, want 200", code, reason)
		}
	}
	_, _, rv := recv.snapshot()
	sort.Slice(rv, func(i, j int) bool { return rv[i].Ref < rv[j].Ref })
	want := []gateway.RevocationResult{{From: "+15551230001", Ref: "sent-1", Revoked: true}, {From: "+15551230001", Ref: "sent-2", Revoked: false}}
	if len(rv) != 2 || rv[0] != want[0] || rv[1] != want[1] {
		t.Fatalf("revocation results %+v, want %+v", rv, want)
	}
}

// FT-HTTP becomes a file with its thumbnail; a chatbot body passes through.
func TestFileAndChatbotIn(t *testing.T) {
	recv := newTestReceiver(t)
	e := startEdge(t, testConfig(), recv)
	c := dialRaw(t, "tcp", e.Addr("tcp"))
	ft := `<?xml version="1.0" encoding="UTF-8"?><file xmlns="urn:gsma:params:xml:ns:rcs:rcs:fthttp">` +
		`<file-info type="thumbnail"><file-size>9216</file-size><content-type>image/jpeg</content-type><data url="https://ft.example/t" until="2026-10-10T00:00:00Z"/></file-info>` +
		`<file-info type="file" file-disposition="render"><file-size>123456</file-size><file-name>a.jpg</file-name><content-type>image/jpeg</content-type><data url="https://ft.example/f" until="2026-10-10T00:00:00Z"/></file-info></file>`
	bot := `{"message":{"text":"hi"}}`
	for _, body := range []string{
		cpimWith(strings.Replace(cpimHead, "bad-1", "ft-1", 1), "Content-Type: application/vnd.gsma.rcs-ft-http+xml\r\n\r\n"+ft),
		cpimWith(strings.Replace(cpimHead, "bad-1", "bot-1", 1)+"NS: maap <http://www.gsma.com/rcs/maap/>\r\nmaap.Traffic-Type: advertisement\r\n",
			"Content-Type: application/vnd.gsma.botmessage.v1.0+json\r\n\r\n"+bot),
	} {
		c.send(request{local: c.conn.LocalAddr(), transport: "TCP", contentType: "message/cpim", body: body}.String())
		if code, reason := status(c.answer()); code != 202 {
			t.Fatalf("answer %d %s", code, reason)
		}
	}
	in, _, _ := recv.snapshot()
	if len(in) != 2 {
		t.Fatalf("got %d messages", len(in))
	}
	until := time.Date(2026, 10, 10, 0, 0, 0, 0, time.UTC)
	f := in[0].Parts[0].File
	if f == nil || f.URL != "https://ft.example/f" || f.Name != "a.jpg" || f.Size != 123456 || f.ContentType != "image/jpeg" || !f.Until.Equal(until) ||
		f.Thumbnail == nil || f.Thumbnail.URL != "https://ft.example/t" || f.Thumbnail.Size != 9216 {
		t.Fatalf("file part %+v (thumbnail %+v)", f, f.Thumbnail)
	}
	p := in[1].Parts[0]
	if p.ContentType != "application/vnd.gsma.botmessage.v1.0+json" || string(p.Data) != bot || p.Text != "" {
		t.Fatalf("chatbot part %+v", p)
	}
}

// A request being handled when the edge stops still gets its answer, and
// Run returns once it has.
func TestShutdownAnswersInFlight(t *testing.T) {
	recv := newTestReceiver(t)
	e, err := NewEdge(testConfig(), recv, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	for e.Ready() != nil {
		time.Sleep(5 * time.Millisecond)
	}
	block := make(chan struct{})
	recv.set(func(r *testReceiver) { r.block = block })
	c := dialRaw(t, "udp", e.Addr("udp"))
	c.send(request{local: c.conn.LocalAddr(), contentType: "message/cpim", body: cpimText("late-1", "x")}.String())
	recv.waitInbound(t, 1)
	cancel()
	for e.Ready() == nil {
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) with a request in flight", err)
	default:
	}
	close(block)
	if code, reason := status(c.answer()); code != 202 {
		t.Fatalf("in-flight request answered %d %s, want 202", code, reason)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
}

// Calls into the gateway are capped at receive_concurrency; requests beyond
// wait their turn instead of piling onto the bus.
func TestReceiveConcurrency(t *testing.T) {
	recv := newTestReceiver(t)
	cfg := testConfig()
	cfg.ReceiveConcurrency = 1
	cfg.QueueTimeout = time.Minute
	e := startEdge(t, cfg, recv)
	block := make(chan struct{})
	recv.set(func(r *testReceiver) { r.block = block })
	c := dialRaw(t, "udp", e.Addr("udp"))
	c.send(request{local: c.conn.LocalAddr(), contentType: "message/cpim", body: cpimText("gate-1", "1")}.String())
	c.send(request{local: c.conn.LocalAddr(), contentType: "message/cpim", body: cpimText("gate-2", "2")}.String())
	recv.waitInbound(t, 1)
	c.noAnswer(200 * time.Millisecond)
	if in, _, _ := recv.snapshot(); len(in) != 1 {
		t.Fatalf("%d calls into the gateway at once, want 1", len(in))
	}
	close(block)
	for i := 0; i < 2; i++ {
		if code, reason := status(c.answer()); code != 202 {
			t.Fatalf("answer %d %s", code, reason)
		}
	}
	if in, _, _ := recv.snapshot(); len(in) != 2 {
		t.Fatalf("%d messages, want 2", len(in))
	}
}

// A request that cannot get its turn at the gateway within queue_timeout
// is answered 503 at once.
func TestQueueTimeout(t *testing.T) {
	recv := newTestReceiver(t)
	cfg := testConfig()
	cfg.ReceiveConcurrency = 1
	cfg.QueueTimeout = 50 * time.Millisecond
	e := startEdge(t, cfg, recv)
	block := make(chan struct{})
	defer close(block)
	recv.set(func(r *testReceiver) { r.block = block })
	c := dialRaw(t, "udp", e.Addr("udp"))
	c.send(request{local: c.conn.LocalAddr(), contentType: "message/cpim", body: cpimText("q-1", "1")}.String())
	recv.waitInbound(t, 1)
	c.send(request{local: c.conn.LocalAddr(), contentType: "message/cpim", body: cpimText("q-2", "2")}.String())
	res := c.answer()
	if code, _ := status(res); code != 503 || headerValue(res, "Retry-After") == "" {
		t.Fatalf("queued past queue_timeout: %q", res)
	}
}
