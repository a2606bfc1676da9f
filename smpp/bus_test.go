package smpp

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/gateway/identity"
	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/bus/bustest"
	"github.com/mimigw/mimigw/mimi/content"
	"github.com/mimigw/mimigw/smpp/coding"
	"github.com/mimigw/mimigw/smpp/smsc"
	"github.com/mimigw/mimigw/smpp/wire"
)

// TestMOThroughBus: deliver_sm is answered only after JetStream stored the
// message (through the real gateway); with the bus down the SMSC gets a
// retryable error, and the message it delivers again after the bus is
// back is stored once.
func TestMOThroughBus(t *testing.T) {
	srv := bustest.NewServer(t)
	b := srv.Bus(t, bustest.WithConfig(func(c *bus.Config) { c.PublishTimeout = time.Second }))
	ids, err := identity.New(b.Identity(), identity.Config{Domain: "gw.example.net"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(context.Background(), gateway.DefaultConfig(), b, ids, testLog(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The SMSC waits longer for an answer than the edge gives the bus
	// (mo_timeout), so that it sees the edge's answer whatever the bus
	// does while it is down.
	sim, addr := startSim(t, smsc.Config{Outcome: "none", ResponseTimeout: 10 * time.Second})
	startEdge(t, Config{SMSCs: []SMSCConfig{smscConfig("sim", addr)}, MOTimeout: 3 * time.Second}, g)
	ctx := context.Background()
	text := strings.Repeat("über den Bus 🚌 ", 9) // three UCS-2 parts
	mo := smsc.MO{From: "+15551230002", To: "+15551230001", Text: text, Order: []int{2, 3, 1}, Coding: &coding.Options{Concat: coding.ConcatUDH16}}

	st, err := sim.InjectMO(ctx, mo)
	if err != nil {
		t.Fatal(err)
	}
	allOK(t, st)
	stream, err := b.JetStream().Stream(ctx, bus.DefaultFromPhoneStream)
	if err != nil {
		t.Fatal(err)
	}
	got, err := stream.GetLastMsgForSubject(ctx, "mimi.from.tel.15551230002")
	if err != nil || mimiText(t, got.Data) != text || got.Header.Get(bus.HeaderChannel) != "sms" {
		t.Fatalf("stored %+v %v", got, err)
	}

	srv.Stop()
	mo.Text, mo.Order = "while the bus is down", nil
	st, err = sim.InjectMO(ctx, mo)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[0] != wire.StatusTempAppError {
		t.Fatalf("bus down: answers %v, want ESME_RX_T_APPN", st)
	}
	srv.Start()
	// The SMSC delivers it again once the bus is back.
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err = sim.InjectMO(ctx, mo)
		if err == nil && st[0] == wire.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bus back, answers %v %v", st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	stream, err = b.JetStream().Stream(ctx, bus.DefaultFromPhoneStream)
	if err != nil {
		t.Fatal(err)
	}
	got, err = stream.GetLastMsgForSubject(ctx, "mimi.from.tel.15551230002")
	if err != nil || mimiText(t, got.Data) != mo.Text {
		t.Fatalf("stored after the bus came back: %+v %v", got, err)
	}
	info, err := stream.Info(ctx)
	if err != nil || info.State.Msgs != 2 {
		t.Fatalf("stream holds %d messages, want 2: %v", info.State.Msgs, err)
	}
}

func mimiText(t testing.TB, data []byte) string {
	t.Helper()
	m, err := content.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := m.Text()
	return text
}
