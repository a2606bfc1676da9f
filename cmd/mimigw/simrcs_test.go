package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mimigw/mimigw/sip"
	"github.com/mimigw/mimigw/sip/rcssim"
)

// startDevRCS runs the dev gateway with its RCS phone simulator on free
// ports, the outbound proxy pointing at it as in dev.
func startDevRCS(t *testing.T) *Config {
	t.Helper()
	return startDev(t, func(cfg *Config) {
		r := cfg.RCSSimulator
		r.Listen, r.MSRP, r.HTTP = freeAddr(t), freeAddr(t), freeAddr(t)
		cfg.SIP.OutboundProxy = "sip:" + r.Listen + ";transport=udp"
	})
}

// rcsSimulatorLog is what the RCS simulator's phones received.
func rcsSimulatorLog(t *testing.T, cfg *Config) []rcssim.Received {
	t.Helper()
	resp, err := http.Get("http://" + cfg.RCSSimulator.HTTP + "/messages")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got []rcssim.Received
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	return got
}

// `mimigw send` to a number the dev RCS simulator plays: a 5,000-character
// text, too large for pager mode, arrives by large message mode (INVITE,
// MSRP) whole, a short one by pager mode, and each one's delivered IMDN
// comes back as the status report send waits for. The SMSC gets nothing.
func TestSendToRCSSimulator(t *testing.T) {
	t.Parallel()
	cfg := startDevRCS(t)
	long := strings.Repeat("Large message mode, one SEND. ", 167)[:5000]
	for _, tc := range []struct{ text, mode string }{
		{long, rcssim.ModeLarge},
		{"short: pager mode", rcssim.ModePager},
	} {
		var out, errOut bytes.Buffer
		err := run([]string{"send", "--nats", "nats://" + cfg.Bus.Embedded.Listen, "--timeout", "60s",
			"--to", "+15551230100", tc.text}, &out, &errOut)
		if err != nil {
			t.Fatalf("send (%s): %v\nstdout %s\nstderr %s", tc.mode, err, out.String(), errOut.String())
		}
		if f := strings.Split(strings.TrimSpace(out.String()), "\n"); len(f) != 2 || !strings.HasPrefix(f[0], "id: ") || f[1] != "status: delivered" {
			t.Fatalf("send (%s) printed %q, want the message ID and delivered", tc.mode, out.String())
		}
		var got []rcssim.Received
		for _, r := range rcsSimulatorLog(t, cfg) {
			if r.Text == tc.text {
				got = append(got, r)
			}
		}
		if len(got) != 1 || got[0].Mode != tc.mode || got[0].To != "+15551230100" || got[0].MessageID == "" {
			t.Errorf("the simulator received %+v, want the text once by %s for +15551230100", got, tc.mode)
		}
	}
	if subs := simulatorLog(t, cfg); len(subs) != 0 {
		t.Errorf("delivered by RCS, yet the SMSC got %+v", subs)
	}
	// A number the simulator does not play is not RCS: SMS.
	var out, errOut bytes.Buffer
	if err := run([]string{"send", "--nats", "nats://" + cfg.Bus.Embedded.Listen, "--timeout", "60s",
		"--to", "+15551230002", "by SMS"}, &out, &errOut); err != nil {
		t.Fatalf("send: %v\n%s", err, errOut.String())
	}
	if subs := simulatorLog(t, cfg); len(subs) != 1 || subs[0].Text != "by SMS" {
		t.Errorf("SMSC got %+v, want the text for the number the simulator does not play", subs)
	}
}

// What the simulator's phones send from its hook (`mimigw sim rcs send`)
// reaches the bus: a pager message, a large message and the messages of a
// chat session become MIMI messages from the phone.
func TestRCSSimulatorSendsToGateway(t *testing.T) {
	t.Parallel()
	cfg := startDevRCS(t)
	watch := watchFromPhone(t, cfg)
	long := strings.Repeat("x", 20000)
	for _, tc := range []struct{ mode, text string }{
		{"pager", "hello from a phone"}, {"large", long}, {"chat", "hello in a chat"}, {"chat", "more in the same chat"},
	} {
		simSend(t, cfg, watch, tc.mode, tc.text)
	}
}

// `sim rcs` and `sim rcs send` answer -h with their usage and flags, and
// refuse what they cannot do as usage errors.
func TestSimRCSUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"sim", "-h"}, []string{"smsc", "rcs"}},
		{[]string{"sim", "rcs", "-h"}, []string{"sim rcs [flags]", "-numbers", "-listen", "-msrp", "-gateway", "-setup", "-http"}},
		{[]string{"sim", "rcs", "send", "-h"}, []string{"sim rcs send [flags] TEXT", "-from", "-to", "-mode"}},
	} {
		var out, errOut bytes.Buffer
		if err := run(tc.args, &out, &errOut); exitStatus(err, io.Discard) != 0 {
			t.Errorf("%q: %v", tc.args, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%q: usage does not mention %q:\n%s", tc.args, w, out.String())
			}
		}
	}
	for _, args := range [][]string{
		{"sim", "rcs", "--numbers", "12"},
		{"sim", "rcs", "--setup", "sideways"},
		{"sim", "rcs", "extra"},
		{"sim", "rcs", "send", "--from", "+15551230100", "text"},
	} {
		var out, errOut bytes.Buffer
		var ue usageError
		if err := run(args, &out, &errOut); !errors.As(err, &ue) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}

// In dev the outbound proxy is the RCS simulator, which runs only there:
// moving it alone (MIMIGW_RCS_SIMULATOR_LISTEN) leaves the gateway sending
// elsewhere and the simulator off.
func TestDevRCSSimulatorConfig(t *testing.T) {
	c, err := loadConfig("", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := c.RCSSimulator
	if r == nil || len(r.Numbers) != 1 || r.Numbers[0] != devRCSNumbers || !proxyAt(c.SIP.OutboundProxy, r.Listen) || *c.SIP.LargeOverTCP {
		t.Fatalf("dev: rcs_simulator %+v, outbound proxy %s, large_over_tcp %v", r, c.SIP.OutboundProxy, *c.SIP.LargeOverTCP)
	}
	c, err = loadConfig("", true, []string{"MIMIGW_RCS_SIMULATOR_LISTEN=127.0.0.1:5999", "MIMIGW_RCS_SIMULATOR_DISPLAYED=true"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.RCSSimulator.Displayed || proxyAt(c.SIP.OutboundProxy, c.RCSSimulator.Listen) {
		t.Errorf("moved: %+v, proxy %s", c.RCSSimulator, c.SIP.OutboundProxy)
	}
	for proxy, want := range map[string]bool{
		"sip:127.0.0.1:5070;transport=udp": true, "SIP:127.0.0.1:5070": true,
		"sip:127.0.0.1:5071;transport=udp": false, "sips:127.0.0.1:5070": false,
	} {
		if proxyAt(proxy, "127.0.0.1:5070") != want {
			t.Errorf("proxyAt(%s): %v", proxy, !want)
		}
	}
}

// With sip.sessions.outbound chat, `mimigw send` to a number the dev RCS
// simulator plays goes in a chat session (INVITE cpm.session, MSRP), the
// second message in the same session, each reported delivered by the IMDN
// the simulator sends inside the session. The SMSC gets nothing.
func TestChatToRCSSimulator(t *testing.T) {
	t.Parallel()
	cfg := startDev(t, func(cfg *Config) {
		r := cfg.RCSSimulator
		r.Listen, r.MSRP, r.HTTP = freeAddr(t), freeAddr(t), freeAddr(t)
		cfg.SIP.OutboundProxy = "sip:" + r.Listen + ";transport=udp"
		cfg.SIP.Sessions.Outbound = sip.OutboundChat
	})
	texts := []string{"first in a chat", "second in the same chat"}
	for _, text := range texts {
		var out, errOut bytes.Buffer
		err := run([]string{"send", "--nats", "nats://" + cfg.Bus.Embedded.Listen, "--timeout", "60s",
			"--to", "+15551230100", text}, &out, &errOut)
		if err != nil {
			t.Fatalf("send: %v\nstdout %s\nstderr %s", err, out.String(), errOut.String())
		}
		if f := strings.Split(strings.TrimSpace(out.String()), "\n"); len(f) != 2 || f[1] != "status: delivered" {
			t.Fatalf("send printed %q, want the message ID and delivered", out.String())
		}
	}
	calls := map[string]bool{}
	for i, text := range texts {
		var got []rcssim.Received
		for _, r := range rcsSimulatorLog(t, cfg) {
			if r.Text == text {
				got = append(got, r)
			}
		}
		if len(got) != 1 || got[0].Mode != rcssim.ModeChat || got[0].CallID == "" {
			t.Fatalf("message %d: the simulator received %+v, want it once in a chat session", i, got)
		}
		calls[got[0].CallID] = true
	}
	if len(calls) != 1 {
		t.Errorf("the two messages came in %d sessions, want one reused", len(calls))
	}
	if subs := simulatorLog(t, cfg); len(subs) != 0 {
		t.Errorf("delivered by RCS, yet the SMSC got %+v", subs)
	}
}
