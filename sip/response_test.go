package sip

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/mimigw/mimigw/sip/answers"
)

// TestWriteResponseMatchesSipgo checks the UDP path's answer writer
// against the answer sipgo builds from the same request (response), byte
// for byte: every Via in order with received and rport filled in, Record-
// Route where RFC 3261 table 3 copies it, the To tag, and the headers
// that depend on the answer.
func TestWriteResponseMatchesSipgo(t *testing.T) {
	e, err := NewEdge(testConfig(), newMemReceiver(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	const tail = "From: <sip:+15551230001@ims.test;user=phone>;tag=f1\r\n" +
		"To: <sip:+15551230002@mimigw.test;user=phone>\r\n" +
		"Call-ID: c1@ims.test\r\n"
	tests := []struct {
		name, request, source string
		ans                   answers.Answer
	}{
		{"message accepted", "MESSAGE sip:+15551230002@mimigw.test SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1\r\n" + tail + "CSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
			"127.0.0.1:5060", answers.Answer{Status: 202}},
		{"rport asked, source elsewhere", "MESSAGE sip:+15551230002@mimigw.test SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP pcscf.ims.test:5060;branch=z9hG4bK-2;rport\r\n" +
			"Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK-0;received=10.0.0.8\r\n" + tail + "CSeq: 7 MESSAGE\r\nContent-Length: 0\r\n\r\n",
			"127.0.0.2:40123", answers.Answer{Status: 202}},
		{"received without rport", "MESSAGE sip:+15551230002@mimigw.test SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-3\r\n" + tail + "CSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
			"127.0.0.1:5060", answers.Answer{Status: 503, Reason: "Service Unavailable: try again later", RetryAfter: 5}},
		{"compact form, To tag kept", "MESSAGE sip:+15551230002@mimigw.test SIP/2.0\r\n" +
			"v: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-4\r\n" +
			"f: <sip:+15551230001@ims.test>;tag=a\r\nt: <sip:+15551230002@mimigw.test>;tag=b\r\ni: c4\r\n" +
			"CSeq: 2 MESSAGE\r\nl: 0\r\n\r\n",
			"127.0.0.1:5070", answers.Answer{Status: 403, Reason: "Forbidden: untrusted"}},
		{"record-route on 2xx", "MESSAGE sip:+15551230002@mimigw.test SIP/2.0\r\n" +
			"Record-Route: <sip:scscf.ims.test;lr>\r\nRecord-Route: <sip:pcscf.ims.test;lr>\r\n" +
			"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-5\r\n" + tail + "CSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
			"127.0.0.1:5060", answers.Answer{Status: 202}},
		{"no record-route on 4xx", "MESSAGE sip:+15551230002@mimigw.test SIP/2.0\r\n" +
			"Record-Route: <sip:scscf.ims.test;lr>\r\n" +
			"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-6\r\n" + tail + "CSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
			"127.0.0.1:5060", answers.Answer{Status: 415}},
		{"options", "OPTIONS sip:+15551230002@mimigw.test SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-7\r\n" + tail + "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
			"127.0.0.1:5060", answers.Answer{Status: 200}},
		{"method not allowed", "SUBSCRIBE sip:+15551230002@mimigw.test SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP [::1]:5060;branch=z9hG4bK-8;rport\r\n" + tail + "CSeq: 1 SUBSCRIBE\r\nContent-Length: 0\r\n\r\n",
			"[::1]:5060", answers.Answer{Status: 405}},
		{"extension required", "MESSAGE sip:+15551230002@mimigw.test SIP/2.0\r\n" +
			"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-9\r\nRequire: foo, bar\r\n" + tail + "CSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
			"127.0.0.1:5060", answers.Answer{Status: 420}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parse := func() *sip.Request {
				req, err := e.parseRequest([]byte(tt.request))
				if err != nil {
					t.Fatal(err)
				}
				req.SetTransport("UDP")
				req.SetSource(tt.source)
				return req
			}
			want := e.response(parse(), tt.ans, "t1").String()
			var got bytes.Buffer
			e.writeResponse(&got, parse(), tt.ans, "t1")
			if got.String() != want {
				t.Fatalf("writeResponse wrote\n%s\nsipgo builds\n%s", got.String(), want)
			}
			// And it is an answer a SIP parser reads back.
			msg, err := sip.NewParser().ParseSIP(got.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			res, ok := msg.(*sip.Response)
			if !ok || int(res.StatusCode) != int(tt.ans.Status) || !strings.Contains(res.To().Value(), "tag=") {
				t.Fatalf("read back %v", msg)
			}
		})
	}
}
