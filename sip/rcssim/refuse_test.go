package rcssim

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// rawRequest sends one SIP request over TCP and returns the status line
// of its final answer.
func rawRequest(t *testing.T, addr, method, to, contentType, body string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	local := c.LocalAddr().String()
	req := fmt.Sprintf("%s sip:%s@rcssim.localhost;user=phone SIP/2.0\r\n"+
		"Via: SIP/2.0/TCP %s;branch=z9hG4bK-%d\r\n"+
		"From: <sip:+15551230001@test;user=phone>;tag=a1\r\n"+
		"To: <sip:%s@rcssim.localhost;user=phone>\r\n"+
		"Call-ID: raw-%d@test\r\nCSeq: 1 %s\r\nMax-Forwards: 70\r\n"+
		"Contact: <sip:+15551230001@%s;transport=tcp>\r\n",
		method, to, local, time.Now().UnixNano(), to, time.Now().UnixNano(), method, local)
	if contentType != "" {
		req += "Content-Type: " + contentType + "\r\n"
	}
	req += fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: no answer: %v", method, err)
		}
		if strings.HasPrefix(line, "SIP/2.0 1") || !strings.HasPrefix(line, "SIP/2.0 ") {
			continue
		}
		return strings.TrimSpace(line)
	}
}

// What the simulator refuses, and how: a number it does not play 404, a
// body that is not CPIM 415, CPIM that does not parse 400, an INVITE
// without SDP or with an offer it cannot take 488. It keeps serving.
func TestRefusals(t *testing.T) {
	t.Parallel()
	s := start(t, Config{Numbers: []string{"+15551230100"}, Gateway: "sip:127.0.0.1:9;transport=tcp"})
	addr := s.SIPAddr().String()
	for _, tc := range []struct {
		method, to, ct, body, want string
	}{
		{"OPTIONS", "+15551239999", "", "", "404"},
		{"MESSAGE", "+15551239999", "message/cpim", "x", "404"},
		{"MESSAGE", "+15551230100", "text/plain", "hello", "415"},
		{"MESSAGE", "+15551230100", "message/cpim", "no headers at all", "400"},
		{"INVITE", "+15551230100", "", "", "488"},
		{"INVITE", "+15551230100", "application/sdp", "v=0\r\nnot sdp\r\n", "488"},
		{"INVITE", "+15551230100", "application/sdp",
			"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n", "488"},
		{"BYE", "+15551230100", "", "", "481"},
		{"OPTIONS", "+15551230100", "", "", "200"},
	} {
		got := rawRequest(t, addr, tc.method, tc.to, tc.ct, tc.body)
		if !strings.HasPrefix(got, "SIP/2.0 "+tc.want) {
			t.Errorf("%s to %s (%s %q): %q, want %s", tc.method, tc.to, tc.ct, tc.body, got, tc.want)
		}
	}
	if got := s.Received(); len(got) != 0 {
		t.Errorf("refused requests were logged as received: %+v", got)
	}
}

// A chat INVITE whose multipart body carries the first message beside the
// SDP offer (as RCS clients send it) is answered 200, and the message is
// taken.
func TestFirstMessageInInvite(t *testing.T) {
	t.Parallel()
	s := start(t, Config{Numbers: []string{"+15551230100"}, Gateway: "sip:127.0.0.1:9;transport=tcp", Setup: "passive"})
	offer := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=message 9 TCP/MSRP *\r\na=accept-types:message/cpim\r\na=accept-wrapped-types:text/plain\r\n" +
		"a=path:msrp://127.0.0.1:9/first1;tcp\r\na=setup:active\r\na=sendrecv\r\n"
	msg := "From: <sip:+15551230001@test>\r\nTo: <sip:+15551230100@test>\r\nNS: imdn <urn:ietf:params:imdn>\r\n" +
		"imdn.Message-ID: first-in-invite\r\nDateTime: 2026-12-04T10:00:00.000Z\r\n\r\n" +
		"Content-Type: text/plain;charset=UTF-8\r\n\r\nhello in the INVITE"
	body := "--b1\r\nContent-Type: application/sdp\r\n\r\n" + offer + "\r\n--b1\r\nContent-Type: message/cpim\r\n\r\n" + msg + "\r\n--b1--\r\n"
	if got := rawRequest(t, s.SIPAddr().String(), "INVITE", "+15551230100", "multipart/mixed;boundary=b1", body); !strings.HasPrefix(got, "SIP/2.0 200") {
		t.Fatalf("INVITE: %q, want 200", got)
	}
	got := s.Received()
	if len(got) != 1 || got[0].Mode != ModeChat || got[0].Text != "hello in the INVITE" || got[0].MessageID != "first-in-invite" || got[0].From != "+15551230001" {
		t.Errorf("received %+v", got)
	}
	if got := rawRequest(t, s.SIPAddr().String(), "INVITE", "+15551230100", "multipart/mixed;boundary=b1",
		"--b1\r\nContent-Type: message/cpim\r\n\r\n"+msg+"\r\n--b1--\r\n"); !strings.HasPrefix(got, "SIP/2.0 488") {
		t.Errorf("multipart INVITE without SDP: %q, want 488", got)
	}
}
