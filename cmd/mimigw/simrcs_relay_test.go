package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/content"
	"github.com/mimigw/mimigw/mimi/uri"
	"github.com/mimigw/mimigw/sip"
	"github.com/mimigw/mimigw/sip/msrp/relaytest"
	"github.com/mimigw/mimigw/sip/rcssim"
)

// startDevRelayedRCS runs the dev gateway with its RCS simulator behind
// Kamailio's msrp relay: the simulator AUTHs to it and every MSRP frame
// between the phones and the gateway crosses it.
func startDevRelayedRCS(t *testing.T, outbound string, more ...func(*Config)) (*Config, *relaytest.Relay) {
	t.Helper()
	relay := relaytest.Start(t)
	return startDev(t, func(cfg *Config) {
		r := cfg.RCSSimulator
		r.Listen, r.MSRP, r.HTTP = freeAddr(t), freeAddr(t), freeAddr(t)
		r.MSRPRelay = "msrp://" + relay.Addr + ";tcp"
		cfg.SIP.OutboundProxy = "sip:" + r.Listen + ";transport=udp"
		cfg.SIP.Sessions.Outbound = outbound
		for _, f := range more {
			f(cfg)
		}
	}), relay
}

// sendDelivered is `mimigw send` of text to to, which must come back
// delivered.
func sendDelivered(t *testing.T, cfg *Config, to, text string) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run([]string{"send", "--nats", "nats://" + cfg.Bus.Embedded.Listen, "--timeout", "60s", "--to", to, text}, &out, &errOut)
	if err != nil {
		t.Fatalf("send: %v\nstdout %s\nstderr %s", err, out.String(), errOut.String())
	}
	if f := strings.Split(strings.TrimSpace(out.String()), "\n"); len(f) != 2 || f[1] != "status: delivered" {
		t.Fatalf("send printed %q, want the message ID and delivered", out.String())
	}
}

// received is what the simulator got with text, as it logged it.
func received(t *testing.T, cfg *Config, text string) []rcssim.Received {
	t.Helper()
	var got []rcssim.Received
	for _, r := range rcsSimulatorLog(t, cfg) {
		if r.Text == text {
			got = append(got, r)
		}
	}
	return got
}

// simSend makes a simulator phone send text to the gateway by mode and
// waits for it on watch; it returns the message's imdn.Message-ID and
// what reached the bus.
func simSend(t *testing.T, cfg *Config, watch <-chan *bus.Delivery, mode, text string) (string, *bus.Delivery) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run([]string{"sim", "rcs", "send", "--http", cfg.RCSSimulator.HTTP, "--from", "+15551230101",
		"--to", "+15551230002", "--mode", mode, text}, &out, &errOut)
	if err != nil || !strings.HasPrefix(out.String(), "message_id: ") {
		t.Fatalf("sim rcs send %s: %v\n%s\n%s", mode, err, out.String(), errOut.String())
	}
	select {
	case d := <-watch:
		m, err := content.Decode(d.Data)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := m.Text(); got != text || d.Envelope.Channel != bus.ChannelRCS {
			t.Fatalf("%s: %d characters by %s arrived, want %d by rcs", mode, len(got), d.Envelope.Channel, len(text))
		}
		id, _, _ := strings.Cut(strings.TrimPrefix(out.String(), "message_id: "), "\n")
		return id, d
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: nothing on mimi.from.tel.15551230101", mode)
	}
	return "", nil
}

// reportDelivered publishes, as the MIMI side, a delivered report of a
// phone's message d to the phone.
func reportDelivered(t *testing.T, cfg *Config, d *bus.Delivery) {
	t.Helper()
	env := d.Envelope
	id, err := content.ParseMessageID(env.ID)
	if err != nil {
		t.Fatal(err)
	}
	report := content.NewStatusReport(env.Recipient, env.Room, []content.StatusEntry{{ID: id, Status: content.Delivered}}, content.NewSalt())
	data, err := report.Encode()
	if err != nil {
		t.Fatal(err)
	}
	tool := *cfg
	tool.Bus.URL = "nats://" + cfg.Bus.Embedded.Listen
	b, err := openBus(context.Background(), &tool)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	phone := uri.Number("+15551230101") // simSend's
	renv := bus.Envelope{ID: content.ComputeID(env.Recipient, env.Room, data, report.Salt).String(), Sender: env.Recipient,
		Recipient: phone.TelURI(), Room: env.Room, Accepted: time.Now()}
	if _, err := b.Publish(context.Background(), bus.SubjectToPhone(phone), renv, data); err != nil {
		t.Fatal(err)
	}
}

func watchFromPhone(t *testing.T, cfg *Config) <-chan *bus.Delivery {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	tool := *cfg
	tool.Bus.URL = "nats://" + cfg.Bus.Embedded.Listen
	b, err := openBus(ctx, &tool)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	watch, err := b.WatchFromPhone(ctx, "mimi.from.tel.15551230101")
	if err != nil {
		t.Fatal(err)
	}
	return watch
}

// The gateway and `mimigw sim rcs` with Kamailio's msrp relay (RFC 4976)
// between them, the simulator AUTHed to it and its Use-Path in every
// a=path:
//   - a chat session of ten messages each way: the gateway's ten go in one
//     session and each comes back delivered by the IMDN the phone sends
//     inside it; the phone's ten reach the bus intact, and the delivered
//     report the MIMI side gives each reaches the phone as an IMDN;
//   - a 20 KB message each way by large message mode;
//
// and the relay logged every frame as relayed, none refused or lost.
func TestRCSSimulatorThroughKamailioRelay(t *testing.T) {
	t.Parallel()
	t.Run("chat", func(t *testing.T) {
		t.Parallel()
		cfg, relay := startDevRelayedRCS(t, sip.OutboundChat)
		calls := map[string]bool{}
		for i := range 10 {
			text := fmt.Sprintf("gateway to phone through the relay, %d", i)
			sendDelivered(t, cfg, "+15551230100", text)
			got := received(t, cfg, text)
			if len(got) != 1 || got[0].Mode != rcssim.ModeChat {
				t.Fatalf("message %d: the simulator received %+v, want it once in a chat session", i, got)
			}
			calls[got[0].CallID] = true
		}
		if len(calls) != 1 {
			t.Errorf("ten messages came in %d sessions, want one", len(calls))
		}
		// The phone's ten, each answered by a delivered report from the
		// MIMI side, which comes back to the phone as an IMDN through the
		// relay.
		watch := watchFromPhone(t, cfg)
		for i := range 10 {
			id, d := simSend(t, cfg, watch, rcssim.ModeChat, fmt.Sprintf("phone to gateway through the relay, %d", i))
			reportDelivered(t, cfg, d)
			waitIMDN(t, cfg, id, "delivered")
		}
		if subs := simulatorLog(t, cfg); len(subs) != 0 {
			t.Errorf("delivered by RCS, yet the SMSC got %d messages", len(subs))
		}
		// Forty messages, each a SEND: ten texts and their IMDNs either
		// way (the sessions' binding SENDs besides).
		if n := relay.CheckClean(t); n < 40 {
			t.Errorf("the relay relayed %d SENDs, want at least 40", n)
		}
	})
	t.Run("both behind relays", func(t *testing.T) {
		// The gateway behind a Kamailio relay of its own too
		// (sip.sessions.relay): every frame crosses both relays, its
		// To-Path three hops long.
		t.Parallel()
		own := relaytest.Start(t)
		cfg, relay := startDevRelayedRCS(t, sip.OutboundChat, func(cfg *Config) {
			cfg.SIP.Sessions.Relay = "msrp://" + own.Addr + ";tcp"
		})
		for i := range 3 {
			text := fmt.Sprintf("gateway to phone through two relays, %d", i)
			sendDelivered(t, cfg, "+15551230100", text)
			if got := received(t, cfg, text); len(got) != 1 || got[0].Mode != rcssim.ModeChat {
				t.Fatalf("message %d: the simulator received %+v, want it once in a chat session", i, got)
			}
		}
		watch := watchFromPhone(t, cfg)
		for i := range 3 {
			id, d := simSend(t, cfg, watch, rcssim.ModeChat, fmt.Sprintf("phone to gateway through two relays, %d", i))
			reportDelivered(t, cfg, d)
			waitIMDN(t, cfg, id, "delivered")
		}
		for _, r := range []*relaytest.Relay{relay, own} {
			if n := r.CheckClean(t); n < 12 {
				t.Errorf("relay %s relayed %d SENDs, want at least the twelve messages and IMDNs", r.Addr, n)
			}
		}
	})
	t.Run("large message", func(t *testing.T) {
		t.Parallel()
		cfg, relay := startDevRelayedRCS(t, sip.OutboundPager)
		big := strings.Repeat("Twenty kilobytes through an MSRP relay. ", 500)[:20000]
		sendDelivered(t, cfg, "+15551230100", big)
		if got := received(t, cfg, big); len(got) != 1 || got[0].Mode != rcssim.ModeLarge {
			t.Fatalf("the simulator received %d copies of the 20 KB text (%+v), want one by large message mode", len(got), got)
		}
		simSend(t, cfg, watchFromPhone(t, cfg), rcssim.ModeLarge, big)
		if subs := simulatorLog(t, cfg); len(subs) != 0 {
			t.Errorf("delivered by RCS, yet the SMSC got %d messages", len(subs))
		}
		// Two 20 KB messages of two chunks each (binding SENDs and IMDNs
		// besides).
		if n := relay.CheckClean(t); n < 4 {
			t.Errorf("the relay relayed %d SENDs, want at least 4", n)
		}
	})
}

// waitIMDN waits until the simulator logged an IMDN of status about the
// message id.
func waitIMDN(t *testing.T, cfg *Config, id, status string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, r := range rcsSimulatorLog(t, cfg) {
			if r.About == id && r.Notification == status {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s IMDN about %s reached the simulator", status, id)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
