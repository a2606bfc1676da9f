package sip

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"testing"
)

// FuzzServe feeds arbitrary datagrams through the request-handling path of
// the UDP listener (parse, transaction key, trust, body handling, answer
// building) with a receiver that takes everything. It must never panic:
// serve turns a panic into a 500, so a 500 is a failure here.
func FuzzServe(f *testing.F) {
	local := netip.MustParseAddrPort("127.0.0.1:5099")
	for _, r := range []request{
		{contentType: "message/cpim", body: cpimText("seed-1", "Hello")},
		{method: "OPTIONS"},
		{contentType: "message/cpim", body: imdnBody(`<imdn xmlns="urn:ietf:params:xml:ns:imdn"><message-id>m</message-id><datetime>2026-08-08T06:41:00Z</datetime><delivery-notification><status><delivered/></status></delivery-notification></imdn>`)},
		{contentType: "multipart/mixed;boundary=b1", body: "--b1\r\nContent-Type: application/resource-lists+xml\r\nContent-Disposition: recipient-list\r\n\r\n" +
			`<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list><entry uri="tel:+15551230003"/></list></resource-lists>` +
			"\r\n--b1\r\nContent-Type: message/cpim\r\n\r\n" + cpimText("g", "x") + "\r\n--b1--\r\n"},
		{contentType: "application/vnd.gsma.rcsrevoke+xml", body: `<rcsrevoke><Message-ID>x</Message-ID><result>success</result></rcsrevoke>`},
		{contentType: "message/cpim", body: cpimHead + "Content-Type: text/plain\r\n\r\nno blank line"},
		{method: "INVITE"},
	} {
		r.local = netAddr(local)
		f.Add([]byte(r.String()))
	}
	f.Add([]byte("MESSAGE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nContent-Length: 99999\r\n\r\n"))
	f.Add([]byte("garbage"))

	cfg := testConfig()
	e, err := NewEdge(cfg, newMemReceiver(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		f.Fatal(err)
	}
	e.recv.(*testReceiver).serves["+15551230002"] = true
	p := peer{addr: netip.MustParseAddrPort("127.0.0.1:40000"), transport: "UDP"}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := e.parseRequest(data)
		if req == nil {
			return
		}
		req.SetTransport("UDP")
		req.SetSource(p.addr.String())
		if err != nil || req.IsAck() {
			return
		}
		transactionKey(req)
		ans := e.serve(context.Background(), req, p)
		if ans.Status == 500 || ans.Status < 200 || ans.Status > 699 {
			t.Fatalf("answer %d %q to %q", ans.Status, ans.Reason, data)
		}
		res := e.response(req, ans, "tag")
		_ = res.String()
	})
}

type addrString string

func (a addrString) String() string  { return string(a) }
func (a addrString) Network() string { return "udp" }

func netAddr(ap netip.AddrPort) addrString { return addrString(ap.String()) }
