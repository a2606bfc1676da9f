package main

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

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
			if f := strings.Fields(out.String()); len(f) != 2 || f[1] != "delivered" {
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
