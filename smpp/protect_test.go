package smpp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/mimi/uri"
	"github.com/mimigw/mimigw/smpp/receipt"
	"github.com/mimigw/mimigw/smpp/smsc"
)

func TestPumpingProtection(t *testing.T) {
	sim, addr := startSim(t, smsc.Config{Outcome: "none"})
	cfg := Config{
		SMSCs: []SMSCConfig{smscConfig("sim", addr)},
		Protection: ProtectionConfig{
			MaxSegments:         3,
			SenderRate:          RateConfig{Count: 5, Per: time.Hour},
			DestinationRate:     RateConfig{Count: 2, Per: time.Hour},
			AllowedDestinations: []string{"+44", "US"},
		},
	}
	e, _ := startEdge(t, cfg, newMemReceiver())
	ctx := context.Background()
	send := func(from, to, text string) error {
		_, err := e.SendSMS(ctx, gateway.OutboundSMS{ID: "p", From: from, To: uri.Number(to), Text: text})
		return err
	}
	refused := func(reason string) float64 { return testutil.ToFloat64(e.m.refused.WithLabelValues(reason)) }

	for _, c := range []struct {
		name, from, to, text, reason string
	}{
		{"country not allowed", "+15551230001", "+33612345678", "hi", refuseCountry},
		{"Caribbean +1 is not US", "+15551230001", "+12642351234", "hi", refuseCountry},
		{"too many segments", "+15551230001", "+447700900001", strings.Repeat("x", 153*3+1), refuseSegments},
		{"bad sender", "not a sender!", "+447700900002", "hi", refuseAddress},
		{"alphanumeric sender too long", "ABCDEFGHIJKL", "+447700900002", "hi", refuseAddress},
	} {
		before := refused(c.reason)
		err := send(c.from, c.to, c.text)
		if !errors.Is(err, gateway.ErrRejected) || !strings.Contains(err.Error(), c.reason) {
			t.Fatalf("%s: %v, want ErrRejected (%s)", c.name, err, c.reason)
		}
		if refused(c.reason) != before+1 {
			t.Fatalf("%s: metric for %s not counted", c.name, c.reason)
		}
	}
	// Allowed: by calling code and by region, and an alphanumeric sender.
	for _, to := range []string{"+447700900010", "+12025550123"} {
		if err := send("MIMI", to, "ok"); err != nil {
			t.Fatalf("to %s: %v", to, err)
		}
	}
	if got := sim.Received(); got[len(got)-1].SourceTON != tonAlphanumeric || got[len(got)-1].Source != "MIMI" {
		t.Fatalf("alphanumeric sender went as %+v", got[len(got)-1])
	}
	// Destination rate: two per hour per destination.
	for i := range 2 {
		if err := send("+15551230001", "+447700900020", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := send("+15551230001", "+447700900020", "third"); !errors.Is(err, gateway.ErrRejected) || !strings.Contains(err.Error(), refuseDestRate) {
		t.Fatalf("third message to one destination: %v", err)
	}
	// Sender rate: +15551230001 has spent 4 of its 5: the message refused
	// for its length, two sent, the one refused for the destination rate
	// (refusals by country come before the rates and spend nothing).
	if err := send("+15551230001", "+447700900030", "one more"); err != nil {
		t.Fatalf("within the sender budget: %v", err)
	}
	if err := send("+15551230001", "+447700900031", "over"); !errors.Is(err, gateway.ErrRejected) || !strings.Contains(err.Error(), refuseSenderRate) {
		t.Fatalf("over the sender rate: %v", err)
	}
	if testutil.ToFloat64(e.m.refused.WithLabelValues(refuseSenderRate)) != 1 || testutil.ToFloat64(e.m.refused.WithLabelValues(refuseDestRate)) != 1 {
		t.Fatal("rate refusals not counted")
	}
}

func TestKeyedLimiterForgetsFullBuckets(t *testing.T) {
	k := newKeyedLimiter(RateConfig{Count: 2, Per: time.Second})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 1000 {
		if !k.allow(fmt.Sprint("key", i), now) {
			t.Fatal("fresh key refused")
		}
	}
	if !k.allow("a", now) || !k.allow("a", now) || k.allow("a", now) {
		t.Fatal("burst of 2 not enforced")
	}
	// Later every bucket is full again and is forgotten at the next sweep.
	later := now.Add(time.Minute)
	k.allow("b", later)
	if n := k.size(); n != 1 {
		t.Fatalf("%d buckets kept after they refilled", n)
	}
	if !k.allow("a", later) {
		t.Fatal("refilled key refused")
	}
}

func TestAddresses(t *testing.T) {
	ton5 := uint8(5)
	for _, c := range []struct {
		from    string
		cfg     SMSCConfig
		want    address
		refused bool
	}{
		{from: "+15551230001", want: address{ton: 1, npi: 1, addr: "15551230001"}},
		{from: "12345", want: address{ton: 0, npi: 1, addr: "12345"}},
		{from: "Bank Ltd", want: address{ton: 5, npi: 0, addr: "Bank Ltd"}},
		{from: "+15551230001", cfg: SMSCConfig{SourceTON: &ton5}, want: address{ton: 5, npi: 1, addr: "15551230001"}},
		{from: "", refused: true},
		{from: "+1555x", refused: true},
		{from: "Grüße€", want: address{ton: 5, npi: 0, addr: "Grüße€"}},
		{from: "中文", refused: true},
		{from: "ABCDEFGHIJKL", refused: true},
	} {
		got, err := sourceAddress(c.from, c.cfg)
		if c.refused {
			if !errors.Is(err, gateway.ErrRejected) {
				t.Fatalf("%q: %v, want refused", c.from, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Fatalf("%q: %+v %v, want %+v", c.from, got, err, c.want)
		}
	}
	if _, err := destAddress("15551230001"); !errors.Is(err, gateway.ErrRejected) {
		t.Fatalf("destination without plus: %v", err)
	}
}

func TestNormalizeIDFallback(t *testing.T) {
	_, addr := startSim(t, smsc.Config{Outcome: "none"})
	e, _ := startEdge(t, Config{SMSCs: []SMSCConfig{smscConfig("sim", addr)}}, newMemReceiver())
	l := e.links[0]
	hex := receipt.IDForm{Base: receipt.Hex}
	if a, b := l.normalize("0000A1B2", hex, "submit_sm_resp"), l.normalize("41394", receipt.IDForm{Base: receipt.Decimal}, "receipt"); a != b {
		t.Fatalf("hex %q and decimal %q differ", a, b)
	}
	// An id not in its form is kept, not guessed at, and counted.
	if got := l.normalize(" XYZ-1 ", hex, "receipt"); got != "XYZ-1" {
		t.Fatalf("bad id normalised to %q", got)
	}
	if testutil.ToFloat64(e.m.badIDs.WithLabelValues("sim", "receipt")) != 1 {
		t.Fatal("bad id not counted")
	}
}

// ReloadProtection changes the guards while running: a country allowed
// now is taken, one dropped is refused; a bad configuration is refused
// and changes nothing.
func TestReloadProtection(t *testing.T) {
	_, addr := startSim(t, smsc.Config{Outcome: "none"})
	e, _ := startEdge(t, Config{SMSCs: []SMSCConfig{smscConfig("sim", addr)},
		Protection: ProtectionConfig{AllowedDestinations: []string{"+44"}}}, newMemReceiver())
	send := func(to string) error {
		_, err := e.SendSMS(context.Background(), gateway.OutboundSMS{ID: "r", From: "+15551230001", To: uri.Number(to), Text: "hi"})
		return err
	}
	if err := send("+33612345678"); !errors.Is(err, gateway.ErrRejected) {
		t.Fatalf("France before the reload: %v, want refused", err)
	}
	if err := e.ReloadProtection(ProtectionConfig{AllowedDestinations: []string{"+33"}}); err != nil {
		t.Fatal(err)
	}
	if err := send("+33612345678"); err != nil {
		t.Errorf("France after the reload: %v", err)
	}
	if err := send("+447700900001"); !errors.Is(err, gateway.ErrRejected) {
		t.Errorf("the UK after the reload: %v, want refused", err)
	}
	if err := e.ReloadProtection(ProtectionConfig{AllowedDestinations: []string{"Narnia"}}); err == nil || !strings.Contains(err.Error(), "allowed_destinations[0]") {
		t.Errorf("bad reload: %v", err)
	}
	if err := send("+33612345678"); err != nil {
		t.Errorf("a refused reload changed the guards: %v", err)
	}
}
