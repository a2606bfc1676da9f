package sip

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mimigw/mimigw/sip/msrp"
	"github.com/mimigw/mimigw/sip/msrp/relaytest"
	"github.com/mimigw/mimigw/sip/sdp"
)

// relayConfig has the edge's sessions go through relay.
func relayConfig(c Config, relay *relaytest.Relay) Config {
	c.Sessions.Relay = "msrp://" + relay.Addr + ";tcp"
	return c
}

// relayFirst reports whether path is the relay's Use-Path, then one URI.
func relayFirst(path []msrp.URI, relay *relaytest.Relay) bool {
	return len(path) == 2 && fmt.Sprintf("%s:%d", path[0].Host, path[0].Port) == relay.Addr
}

// The edge behind a Kamailio msrp relay of its own (sessions.relay): a
// phone opens a session offering passive; the edge's answer puts the
// relay's Use-Path before its own URI, the edge connects through the relay
// to the phone, and the phone's messages reach it through the relay, each
// reported back end to end; the relay logs every frame relayed. When the
// AUTH ends, the next session AUTHs again. A phone
// that insists on connecting (a=setup:active) without a relay of its own
// gets 488: the relay would have no way back to it.
func TestSessionEdgeRelay(t *testing.T) {
	relay := relaytest.Start(t)
	recv := newMemReceiver()
	e := startEdge(t, relayConfig(sessionConfig(), relay), recv)
	p := newSIPPhone(t, e)
	addr := p.servePhoneMSRP(t)
	cl, s := p.openPassive(addr.Port)
	if m, err := cl.answer.MSRP(0); err != nil || !relayFirst(m.Path, relay) {
		t.Fatalf("answer a=path %v (%v), want the relay's Use-Path, then the edge", m.Path, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Connect(ctx); err != nil {
		t.Fatalf("the edge did not bind the phone's session through its relay: %v", err)
	}
	for i := range 3 {
		if err := s.Send(ctx, sdp.TypeCPIM, []byte(cpimText(fmt.Sprintf("relayed-%d", i), "through the edge's relay"))); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	if in, _, _ := recv.snapshot(); len(in) != 3 || in[2].Ref != "relayed-2" {
		t.Fatalf("received %+v, want the three messages", in)
	}
	p.bye(cl)
	if n := relay.CheckClean(t); n < 4 {
		t.Errorf("the relay relayed %d SENDs, want the binding SEND and three messages", n)
	}

	// The AUTH ends (as when the relay's connection is lost): the next
	// session AUTHs again and goes through the relay.
	e.relayMu.Lock()
	ended := e.relay
	e.relayMu.Unlock()
	ended.Close()
	cl, s = p.openPassive(addr.Port)
	if err := s.Connect(ctx); err != nil {
		t.Fatalf("after the AUTH ended: %v", err)
	}
	if err := s.Send(ctx, sdp.TypeCPIM, []byte(cpimText("relayed-again", "after a new AUTH"))); err != nil {
		t.Fatalf("Send after the AUTH ended: %v", err)
	}
	e.relayMu.Lock()
	again := e.relay
	e.relayMu.Unlock()
	if again == ended {
		t.Error("the edge kept the ended AUTH")
	}
	p.bye(cl)

	p.invite(&call{}, phoneOffer(t).String()) // a=setup:active, its own URI alone
	if code, reason := status(p.final()); code != 488 || !strings.Contains(reason, "relay") {
		t.Errorf("an offer of active to the edge behind a relay answered %d %s, want 488", code, reason)
	}
}

// The edge's chat sessions toward a phone through its relay: the offer's
// a=path is the relay's Use-Path, then the edge, with a=setup:active, so
// that the phone listens; the messages reach it through the relay, which
// relays every frame.
func TestChatEdgeRelay(t *testing.T) {
	relay := relaytest.Start(t)
	p := newChatPhone(t)
	e := startEdge(t, relayConfig(chatConfig(p), relay), newMemReceiver())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var calls []*phoneCall
	for i := range 3 {
		if err := e.SendRCS(ctx, chatText(fmt.Sprintf("relay-out-%d", i), "conv-relay", "through the edge's relay")); err != nil {
			t.Fatalf("SendRCS %d: %v", i, err)
		}
		call, got := p.next()
		if got.MessageID() != fmt.Sprintf("relay-out-%d", i) {
			t.Fatalf("phone got %q, want relay-out-%d", got.MessageID(), i)
		}
		calls = append(calls, call)
	}
	if calls[0] != calls[2] {
		t.Error("the messages came in more than one session")
	}
	offer, err := sdp.Parse(calls[0].dlg.InviteRequest.Body())
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := offer.MSRP(0); !relayFirst(m.Path, relay) || m.Setup != sdp.SetupActive {
		t.Errorf("offer a=path %v a=setup %q, want the relay's Use-Path, then the edge, active", m.Path, m.Setup)
	}
	if n := relay.CheckClean(t); n < 4 {
		t.Errorf("the relay relayed %d SENDs, want at least the binding SEND and the three messages", n)
	}
}
