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

// largeText is a message pager mode cannot carry under a max_body of 4 KiB.
func largeText(ref string) gateway.OutboundRCS {
	m := outboundText(ref)
	m.Parts = []gateway.Part{{Text: strings.Repeat("0123456789", 2000)}}
	m.LargeMessage = true
	return m
}

// A 20 KB message to a phone that takes large message mode goes by an
// INVITE and an MSRP session, and arrives whole at the other side (a second
// edge with sessions on, playing the phone).
func TestLargeMessageOutbound(t *testing.T) {
	phoneRecv := newMemReceiver()
	phone := startEdge(t, sessionConfig(), phoneRecv)
	cfg := sessionConfig()
	cfg.MaxBody = 4096
	cfg.OutboundProxy = "sip:" + phone.Addr("tcp").String() + ";transport=tcp"
	e := startEdge(t, cfg, newMemReceiver())
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()

	m := largeText("large-out-1")
	if err := e.SendRCS(ctx, m); err != nil {
		t.Fatalf("SendRCS: %v", err)
	}
	in, _, _ := phoneRecv.snapshot()
	if len(in) != 1 {
		t.Fatalf("the phone side got %d messages, want 1", len(in))
	}
	got := in[0]
	if got.Ref != "large-out-1" || got.From != m.From || got.To != m.To || len(got.Parts) != 1 || got.Parts[0].Text != m.Parts[0].Text {
		t.Errorf("the phone side got ref %q from %s to %s, %d parts", got.Ref, got.From, got.To, len(got.Parts))
	}
	if got.ConversationID != "conv-1" {
		t.Errorf("Conversation-ID %q", got.ConversationID)
	}

	// Without LargeMessage the same message is too large for RCS.
	m = largeText("large-out-2")
	m.LargeMessage = false
	if err := e.SendRCS(ctx, m); !errors.Is(err, gateway.ErrTooLarge) {
		t.Errorf("SendRCS without large message mode: %v, want ErrTooLarge", err)
	}
}

// A phone that answers the INVITE 488 makes SendRCS fail as a refused
// MESSAGE would, so that the gateway falls back to SMS; without sessions
// the message stays too large.
func TestLargeMessageRefused(t *testing.T) {
	port := sipptest.FreePort(t, "tcp")
	peer := newTCPPeer(t, port, 488)
	cfg := sessionConfig()
	cfg.MaxBody = 4096
	cfg.OutboundProxy = "sip:127.0.0.1:" + strconv.Itoa(port) + ";transport=tcp"
	e := startEdge(t, cfg, newMemReceiver())
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	err := e.SendRCS(ctx, largeText("large-refused"))
	if !errors.Is(err, gateway.ErrRejected) || errors.Is(err, gateway.ErrTooLarge) {
		t.Fatalf("SendRCS: %v, want ErrRejected", err)
	}
	req := <-peer.got
	for _, want := range []string{"INVITE ", "m=message", "a=sendonly", "a=setup:actpass", "a=path:msrp://127.0.0.1:"} {
		if !strings.Contains(req, want) {
			t.Errorf("INVITE lacks %q:\n%s", want, req)
		}
	}

	cfg = testConfig()
	cfg.MaxBody = 4096
	cfg.OutboundProxy = "sip:127.0.0.1:" + strconv.Itoa(port) + ";transport=tcp"
	e = startEdge(t, cfg, newMemReceiver())
	if err := e.SendRCS(ctx, largeText("large-no-sessions")); !errors.Is(err, gateway.ErrTooLarge) {
		t.Errorf("SendRCS without sessions: %v, want ErrTooLarge", err)
	}
}
