package smpp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/bus/bustest"
	"github.com/mimigw/mimigw/smpp/coding"
	"github.com/mimigw/mimigw/smpp/smsc"
	"github.com/mimigw/mimigw/smpp/wire"
)

// busReceiver is a gateway.Receiver that does what the gateway does with
// an SMS at the point that matters to the edge: it returns only once the
// message is stored by JetStream on mimi.from.tel.<digits>. (The gateway
// turns the text into MIMI content first; here the body is the text.)
type busReceiver struct {
	memReceiver
	b *bus.Bus
}

func (r *busReceiver) Receive(ctx context.Context, m gateway.Inbound) error {
	sum := sha256.Sum256([]byte(string(m.From) + "\x00" + string(m.To) + "\x00" + m.Parts[0].Text))
	env := bus.Envelope{ID: hex.EncodeToString(sum[:]), Sender: m.From.TelURI(), Recipient: m.To.TelURI(), Room: "mimi://gw.example/r/sms-test", Channel: bus.ChannelSMS}
	if _, err := r.b.Publish(ctx, bus.SubjectFromPhone(m.From), env, []byte(m.Parts[0].Text)); err != nil {
		if errors.Is(err, bus.ErrUnavailable) {
			return fmt.Errorf("%w: %v", gateway.ErrUnavailable, err)
		}
		return err
	}
	return r.memReceiver.Receive(ctx, m)
}

// TestMOThroughBus: deliver_sm is answered only after JetStream stored the
// message; with the bus down the SMSC gets a retryable error, and the
// message it delivers again after the bus is back is stored once.
func TestMOThroughBus(t *testing.T) {
	srv := bustest.NewServer(t)
	b := srv.Bus(t, bustest.WithConfig(func(c *bus.Config) { c.PublishTimeout = time.Second }))
	// The SMSC waits longer for an answer than the edge gives the bus
	// (mo_timeout), so that it sees the edge's answer whatever the bus
	// does while it is down.
	sim, addr := startSim(t, smsc.Config{Outcome: "none", ResponseTimeout: 10 * time.Second})
	recv := &busReceiver{memReceiver: *newMemReceiver(), b: b}
	startEdge(t, Config{SMSCs: []SMSCConfig{smscConfig("sim", addr)}, MOTimeout: 3 * time.Second}, recv)
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
	if err != nil || string(got.Data) != text || got.Header.Get(bus.HeaderChannel) != "sms" {
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
	if err != nil || string(got.Data) != mo.Text {
		t.Fatalf("stored after the bus came back: %+v %v", got, err)
	}
	info, err := stream.Info(ctx)
	if err != nil || info.State.Msgs != 2 {
		t.Fatalf("stream holds %d messages, want 2: %v", info.State.Msgs, err)
	}
}
