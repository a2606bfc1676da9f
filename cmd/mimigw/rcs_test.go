package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mimigw/mimigw/gateway/identity"
	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/content"
	"github.com/mimigw/mimigw/mimi/uri"
	"github.com/mimigw/mimigw/sip/sipptest"
)

// `mimigw send` through the whole dev gateway to a phone that SIPp plays
// behind the outbound proxy (the scenarios of deploy/sipp): an RCS phone
// gets a CPIM MESSAGE and its IMDN comes back as "delivered"; a number
// without RCS gets the text by SMS through the simulator; a phone that
// never reports delivery is sent a revocation and, once the network says
// it is revoked, the SMS. Each ends with the status report `send` waits
// for.
func TestSendToSIPpPhones(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		calls    int // SIP requests the phone answers
		bySMS    bool
		revoked  bool
	}{
		{"uas_rcs_phone.xml", 2, false, false},      // OPTIONS, MESSAGE (+ its IMDN)
		{"uas_not_rcs.xml", 1, true, false},         // OPTIONS: 404
		{"uas_rcs_phone_silent.xml", 3, true, true}, // OPTIONS, MESSAGE, revocation (+ result)
	} {
		t.Run(strings.TrimSuffix(tc.scenario, ".xml"), func(t *testing.T) {
			t.Parallel()
			port := sipptest.FreePort(t, "udp")
			phone := sipptest.Start(t, tc.scenario, "-t", "u1", "-p", strconv.Itoa(port), "-m", strconv.Itoa(tc.calls),
				"-trace_msg", "-trace_logs")
			phone.WaitUDPBound(t, port)
			cfg := startDev(t, func(cfg *Config) {
				cfg.SIP.OutboundProxy = "sip:127.0.0.1:" + strconv.Itoa(port) + ";transport=udp"
				cfg.Gateway.DeliveryTimeout = 300 * time.Millisecond
			})

			var out, errOut bytes.Buffer
			err := run([]string{"send", "--nats", "nats://" + cfg.Bus.Embedded.Listen, "--timeout", "30s",
				"--to", "+15551230002", "Hello phone"}, &out, &errOut)
			if err != nil {
				t.Fatalf("send: %v\nstdout %s\nstderr %s", err, out.String(), errOut.String())
			}
			if f := strings.Split(strings.TrimSpace(out.String()), "\n"); len(f) != 2 || !strings.HasPrefix(f[0], "id: ") || f[1] != "status: delivered" {
				t.Fatalf("send printed %q, want the message ID and delivered", out.String())
			}
			phone.Wait(t)
			traces := phone.Traces()

			gotRCS := strings.Contains(traces, "Content-Type: message/cpim") && strings.Contains(traces, "Hello phone")
			if tc.calls > 1 && !gotRCS {
				t.Errorf("the phone got no CPIM MESSAGE with the text:\n%s", traces)
			}
			if tc.calls == 1 && strings.Contains(traces, "MESSAGE sip:") {
				t.Errorf("a MESSAGE went to a number that is not RCS:\n%s", traces)
			}
			if got := strings.Contains(traces, "REVOKE "); got != tc.revoked {
				t.Errorf("revocation logged by the phone: %v, want %v", got, tc.revoked)
			}
			subs := simulatorLog(t, cfg)
			switch {
			case !tc.bySMS && len(subs) != 0:
				t.Errorf("delivered by RCS, yet the SMSC got %+v", subs)
			case tc.bySMS && (len(subs) != 1 || subs[0].Text != "Hello phone" || subs[0].Dest != "15551230002"):
				t.Errorf("SMSC got %+v, want the text once for 15551230002", subs)
			}
		})
	}
}

// A pager-mode MESSAGE from SIPp (deploy/sipp/uac_message.xml) through the
// whole dev gateway becomes MIMI content on mimi.from.tel.<caller> with the
// text, the caller as sender and the room of the conversation.
func TestSIPpMessageThroughGateway(t *testing.T) {
	t.Parallel()
	cfg := startDev(t, func(cfg *Config) {
		cfg.SIP.OutboundProxy = "sip:" + freeAddr(t) + ";transport=tcp"
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tool := *cfg
	tool.Bus.URL = "nats://" + cfg.Bus.Embedded.Listen
	b, err := openBus(ctx, &tool)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	watch, err := b.WatchFromPhone(ctx, "mimi.from.tel.15551230001")
	if err != nil {
		t.Fatal(err)
	}
	sipptest.Start(t, "uac_message.xml", "-t", "u1", "-m", "1", "-key", "caller", "+15551230001",
		"-key", "callee", "+15551230002", "-key", "text", "Hello from SIPp", cfg.SIP.Listen.UDP).Wait(t)

	var d *bus.Delivery
	select {
	case d = <-watch:
	case <-time.After(10 * time.Second):
		t.Fatal("nothing on mimi.from.tel.15551230001")
	}
	m, err := content.Decode(d.Data)
	if err != nil {
		t.Fatal(err)
	}
	sender := uri.UserURI(cfg.Domain, "+15551230001")
	room := identity.DMRoom(cfg.Domain, "tel:+15551230002", sender)
	if text, _ := m.Text(); text != "Hello from SIPp" || m.Extensions.SenderURI != sender || m.Extensions.RoomURI != room {
		t.Errorf("content: text %q, sender %q, room %q; want sender %q, room %q", text, m.Extensions.SenderURI, m.Extensions.RoomURI, sender, room)
	}
	if d.EnvelopeErr != nil || d.Envelope.Channel != bus.ChannelRCS || d.Envelope.Sender != sender || d.Envelope.Room != room {
		t.Errorf("envelope %+v (%v)", d.Envelope, d.EnvelopeErr)
	}
}
