package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mimigw/mimigw/mimi/content"
)

// `mimigw trace` prints a message's trace from the bus, labelled: by its
// MIMI ID (key before or after the flags), by the SMSC's message id, and
// by the phone's number; a key that names nothing exits 1 and says why.
func TestTraceCommand(t *testing.T) {
	t.Parallel()
	cfg := startDev(t, func(cfg *Config) {
		cfg.SIP.OutboundProxy = "sip:" + freeAddr(t) + ";transport=tcp" // nobody there: OPTIONS fails, SMS it is
	})
	nats := "nats://" + cfg.Bus.Embedded.Listen
	var out, errOut bytes.Buffer
	if err := run([]string{"send", "--nats", nats, "--to", "+15551230002", "trace me"}, &out, &errOut); err != nil {
		t.Fatalf("send: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	id := sentID(t, out.String())

	trace := func(args ...string) (string, error) {
		t.Helper()
		var out, errOut bytes.Buffer
		err := run(append([]string{"trace"}, args...), &out, &errOut)
		return out.String() + errOut.String(), err
	}
	// The delivered report is published just before the record says so.
	var text string
	deadline := time.Now().Add(20 * time.Second)
	for {
		var err error
		text, err = trace(id, "--nats", nats)
		if err != nil {
			t.Fatalf("trace: %v\n%s", err, text)
		}
		if strings.Contains(text, "status report") || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range []string{
		"trace of " + id + " (looked up as: MIMI message ID)",
		"1 message(s) found",
		"message      " + id,
		"direction    to phone +15551230002",
		"MIMI sender  mimi://" + devDomain + "/u/mimigw-send",
		"channel      sms",
		"state        delivered",
		"  accepted ", "taken from mimi.to.tel.15551230002 for delivery",
		"  OPTIONS ", "query failed, capabilities unknown",
		"  channel ", "  submit_sm_resp ", "ESME_ROK from SMSC",
		"  receipt ", "DELIVRD (delivered): segment 1 of 1",
		"  status report ", "delivered, to mimi://" + devDomain + "/u/mimigw-send on mimi.from.tel.15551230002",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("trace output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "trace me") {
		t.Error("the trace prints the message's text")
	}

	// The SMSC message id the submit_sm_resp gave, flags first.
	var smscID string
	for _, line := range strings.Split(text, "\n") {
		if _, rest, ok := strings.Cut(line, ": message id "); ok {
			smscID, _, _ = strings.Cut(rest, " ")
		}
	}
	if smscID == "" {
		t.Fatalf("no SMSC message id in\n%s", text)
	}
	if text, err := trace("--nats", nats, smscID); err != nil || !strings.Contains(text, "message      "+id) || !strings.Contains(text, "found by     SMSC "+cfg.SMPP.SMSCs[0].Name+" message id "+smscID) {
		t.Errorf("by SMSC id %q: %v\n%s", smscID, err, text)
	}
	if text, err := trace("+15551230002", "--nats", nats); err != nil || !strings.Contains(text, "message      "+id) || !strings.Contains(text, "phone number +15551230002") {
		t.Errorf("by number: %v\n%s", err, text)
	}
	text, err := trace("nothing-here@example.com", "--nats", nats)
	var code exitCode
	if !errors.As(err, &code) || code != 1 || !strings.Contains(text, "0 message(s) found") || !strings.Contains(text, "SIP Call-IDs are not recorded") {
		t.Errorf("unknown key: %v\n%s", err, text)
	}
	var ue usageError
	if _, err := trace("--nats", nats); !errors.As(err, &ue) {
		t.Errorf("no key: %v", err)
	}
	if _, err := trace("a", "b", "--nats", nats); !errors.As(err, &ue) {
		t.Errorf("two keys: %v", err)
	}
}

// sentID is the MIMI message ID `mimigw send` printed, once it printed
// the delivered report.
func sentID(t *testing.T, printed string) string {
	t.Helper()
	var id string
	for _, f := range strings.Fields(printed) {
		if _, err := content.ParseMessageID(f); err == nil {
			id = f
		}
	}
	if id == "" || !strings.Contains(printed, "delivered") {
		t.Fatalf("send printed %q", printed)
	}
	return id
}
