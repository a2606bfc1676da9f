package smpp

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/gateway/identity"
	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/bus/bustest"
	"github.com/mimigw/mimigw/mimi/content"
	"github.com/mimigw/mimigw/mimi/uri"
	"github.com/mimigw/mimigw/smpp/smsc"
)

// gatewayBus is the real gateway on an embedded bus, taking what recv is
// given (MO, parts and receipts), with a pool to lend senders numbers.
func gatewayBus(t *testing.T, recv *memReceiver) (*gateway.Gateway, *bus.Bus) {
	t.Helper()
	b := bustest.New(t)
	ids, err := identity.New(b.Identity(), identity.Config{Domain: "gw.example.net", Pools: []string{"+15559990000-+15559990009"}})
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(context.Background(), gateway.DefaultConfig(), b, ids, testLog(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	recv.receive, recv.segment, recv.receipt = g.Receive, g.ReceiveSegment, g.Receipt
	return g, b
}

// textToPhone publishes a MIMI text for n, as the MIMI side does, to go
// by SMS.
func textToPhone(t *testing.T, b *bus.Bus, n uri.Number, text string) content.MessageID {
	t.Helper()
	sender := "mimi://desk.example/u/alice"
	room := identity.DMRoom("gw.example.net", sender, uri.UserURI("gw.example.net", n))
	m := content.NewText(sender, room, text, content.NewSalt())
	data, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	id := content.ComputeID(sender, room, data, m.Salt)
	env := bus.Envelope{ID: id.String(), Sender: sender, Recipient: n.TelURI(), Room: room, Channel: string(gateway.ChannelSMS), Accepted: time.Now()}
	if _, err := b.Publish(context.Background(), bus.SubjectToPhone(n), env, data); err != nil {
		t.Fatal(err)
	}
	return id
}

// nextReport returns the next status report on reports within d, or
// false.
func nextReport(t *testing.T, reports <-chan *bus.Delivery, d time.Duration) (content.MessageID, content.Status, bool) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case del := <-reports:
			m, err := content.Decode(del.Data)
			if err != nil {
				t.Fatal(err)
			}
			entries, ok, err := m.StatusReport()
			if err != nil || !ok || len(entries) != 1 {
				continue // not a report
			}
			return entries[0].ID, entries[0].Status, true
		case <-timeout:
			return content.MessageID{}, 0, false
		}
	}
}

// The SMSC restarts and issues its message ids from 1 again. The
// second message gets the id the first had; its receipt must reach the
// second message's sender as its status report.
func TestReceiptForAnIDReusedAfterRestart(t *testing.T) {
	sim, addr := startSim(t, smsc.Config{FirstID: 1, HoldReceipts: true})
	recv := newMemReceiver()
	g, b := gatewayBus(t, recv)
	e, _ := startEdge(t, Config{SMSCs: []SMSCConfig{smscConfig("sim", addr)}}, recv)
	runGateway(t, g, e)
	const phone = uri.Number("+15551230002")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reports, err := b.WatchFromPhone(ctx, bus.SubjectFromPhone(phone))
	if err != nil {
		t.Fatal(err)
	}

	first := textToPhone(t, b, phone, "before the restart")
	waitUntil(t, "the first submit_sm", func() bool { return sim.ReceivedCount() == 1 })
	waitUntil(t, "the first receipt held", func() bool { return sim.ReceiptStats().Held == 1 })
	sim.ReleaseReceipts()
	if id, st, ok := nextReport(t, reports, 20*time.Second); !ok || id != first || st != content.Delivered {
		t.Fatalf("first message: report %s %v (%v), want %s delivered", id, st, ok, first)
	}

	sim.Restart()
	waitUntil(t, "the edge bound again", func() bool { all, _ := sim.Bound(); return all == 1 && e.Ready() == nil })
	second := textToPhone(t, b, phone, "after the restart")
	waitUntil(t, "the second receipt held", func() bool { return sim.ReceiptStats().Held == 1 })
	got := sim.Received()
	if len(got) != 2 || got[0].MessageID != got[1].MessageID {
		t.Fatalf("the simulator did not issue the same id twice: %+v", got)
	}
	// The receipt goes only once the gateway has recorded the second
	// message under the id (its ref record, in the deliveries bucket's
	// layout of docs/architecture.md); a receipt faster than that record
	// still finds the first message.
	ref := "ref.sms." + base64.RawURLEncoding.EncodeToString([]byte("sim")) + "." + base64.RawURLEncoding.EncodeToString([]byte(got[1].MessageID))
	waitUntil(t, "the id recorded for the second message", func() bool {
		e, err := b.Deliveries(ref).Get(ctx, ref)
		return err == nil && strings.Contains(string(e.Value()), second.String())
	})
	sim.ReleaseReceipts()
	recv.waitFor(t, "the second receipt handed to the gateway", func(_ []gateway.Inbound, rc []gateway.Receipt) bool { return len(rc) == 2 })
	_, rcs := recv.snapshot()
	if rcs[1].Ref != rcs[0].Ref || rcs[1].Source != "sim" || rcs[1].Status != gateway.StatusDelivered {
		t.Fatalf("receipts handed over: %+v", rcs)
	}
	// The gateway applied the receipt before Receipt returned, and so
	// published any report: a short wait is enough.
	id, st, ok := nextReport(t, reports, 2*time.Second)
	if !ok {
		t.Fatalf("no report for the newest submission %s under the reused SMSC id %s (the first was %s)", second, rcs[1].Ref, first)
	}
	if id != second || st != content.Delivered {
		t.Fatalf("report %s %v, want %s delivered", id, st, second)
	}
}
