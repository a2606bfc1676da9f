package sip

import (
	"testing"
	"time"

	"github.com/mimigw/mimigw/sip/msrp"
	"github.com/mimigw/mimigw/sip/sdp"
)

// sendCode sends one CPIM message in cl's session and returns the code
// of the response.
func sendCode(m *msrpLine, cl *rawCall, body string) (int, error) {
	return m.roundTrip(sessionFrame(cl, &msrp.Frame{ContentType: sdp.TypeCPIM, Body: []byte(body),
		ByteRange: msrp.ByteRange{Start: 1, End: int64(len(body)), Total: int64(len(body))}}))
}

// Sessions phones open end after sessions.idle_timeout (1s here) without
// a message either way: of two sessions opened and bound together, the
// one left idle gets the edge's BYE and its MSRP session is gone (a SEND
// in it gets 481), while the other, carrying a message every 100 ms
// meanwhile, is kept: a message in it still gets 200 and the phone's BYE
// ends it. The edge sent no other BYE.
func TestSessionIdleTimeout(t *testing.T) {
	cfg := sessionConfig()
	cfg.Sessions.IdleTimeout = time.Second
	e := startEdge(t, cfg, newMemReceiver())
	sl, m := dialSIPLine(t, e), dialMSRPLine(t, e)
	calls, err := openBound(sl, m, 2, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	idle, busy := calls[0], calls[1]
	deadline := time.Now().Add(phoneWait)
	for i := 0; sl.byes.Load() == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("no BYE for the idle session within %v", phoneWait)
		}
		if err := m.send(busy, cpimText("busy-"+string(rune('a'+i%26)), "still here")); err != nil {
			t.Fatalf("message %d in the busy session: %v", i, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// endSession closes the MSRP session before it sends the BYE.
	if code, err := sendCode(m, idle, cpimText("idle-1", "too late")); err != nil || code != 481 {
		t.Errorf("SEND in the idle session after its BYE: %d (%v), want 481", code, err)
	}
	if err := m.send(busy, cpimText("busy-last", "still here")); err != nil {
		t.Fatalf("the busy session: %v", err)
	}
	if err := sl.bye(busy); err != nil {
		t.Fatalf("the busy session: %v", err)
	}
	if n := sl.byes.Load(); n != 1 {
		t.Errorf("%d BYEs from the edge, want the idle session's only", n)
	}
	waitExactly(t, "sessions phones opened", 0, func() int { return int(e.inbound.Load()) })
}

// Past sessions.max_inbound sessions phones opened (2 here), an INVITE
// gets 503 with Retry-After, and nothing of it is kept; once a session
// ended, a new one is taken.
func TestSessionMaxInbound(t *testing.T) {
	cfg := sessionConfig()
	cfg.Sessions.MaxInbound = 2
	e := startEdge(t, cfg, newMemReceiver())
	sl, m := dialSIPLine(t, e), dialMSRPLine(t, e)
	calls, err := openBound(sl, m, 2, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := newCall(m)
	if err != nil {
		t.Fatal(err)
	}
	ch := sl.expect(cl.callID, "1 INVITE")
	if err := sl.write(sl.req("INVITE", cl, cl.branch, "", sdp.ContentType, cl.offer.String(), sl.chatHeaders()...)); err != nil {
		t.Fatal(err)
	}
	a, err := sl.await(ch, "INVITE")
	if err != nil {
		t.Fatal(err)
	}
	if code, reason := status(a); code != 503 || headerValue(a, "Retry-After") == "" {
		t.Fatalf("INVITE past max_inbound answered %d %s (Retry-After %q), want 503 with Retry-After",
			code, reason, headerValue(a, "Retry-After"))
	}
	if n := e.inbound.Load(); n != 2 {
		t.Errorf("%d sessions counted after the refusal, want 2", n)
	}
	if err := sl.bye(calls[0]); err != nil {
		t.Fatal(err)
	}
	waitExactly(t, "sessions phones opened", 1, func() int { return int(e.inbound.Load()) })
	more, err := openBound(sl, m, 1, 1, true)
	if err != nil {
		t.Fatalf("a session once one ended: %v", err)
	}
	for _, cl := range []*rawCall{calls[1], more[0]} {
		if err := sl.bye(cl); err != nil {
			t.Fatal(err)
		}
	}
	if n := sl.byes.Load(); n != 0 {
		t.Errorf("%d BYEs from the edge, want none", n)
	}
}
