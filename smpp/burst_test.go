package smpp

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/smpp/smsc"
	"github.com/mimigw/mimigw/smpp/wire"
)

// sendAll sends n messages at once, each asking for a receipt, and
// returns the refs the SMSC gave them.
func sendAll(t *testing.T, e *Edge, n int, prefix string) []string {
	t.Helper()
	ctx := context.Background()
	refs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			sent, err := e.SendSMS(ctx, gateway.OutboundSMS{ID: fmt.Sprint(prefix, i), From: "+15551230001", To: "+15551230002",
				Text: fmt.Sprintf("%s %03d", prefix, i), Receipt: true})
			errs[i] = err
			if err == nil && len(sent.Refs) == 1 {
				refs[i] = sent.Refs[0]
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil || refs[i] == "" {
			t.Fatalf("message %d: refs %q, %v", i, refs[i], err)
		}
	}
	return refs
}

// receiptBurst sends n messages, then has the SMSC send all their
// receipts at once, never resending one that was refused; with drop, the
// SMSC closes the connection when half of them are in, and delivers what
// it had not got an answer for after the rebind.
func receiptBurst(t *testing.T, drop bool) {
	const n = 300
	sim, addr := startSim(t, smsc.Config{HoldReceipts: true, NoResend: true, Window: 1000, ResponseTimeout: 20 * time.Second})
	recv := newMemReceiver()
	var handed atomic.Int64
	var dropped atomic.Bool
	recv.receipt = func(ctx context.Context, rc gateway.Receipt) error {
		time.Sleep(2 * time.Millisecond) // as long as a bus write, or longer
		if drop && handed.Add(1) == n/2 && dropped.CompareAndSwap(false, true) {
			sim.Drop()
		}
		return nil
	}
	e, _ := startEdge(t, Config{SMSCs: []SMSCConfig{smscConfig("sim", addr)}}, recv)
	refs := sendAll(t, e, n, "burst")
	want := map[string]bool{}
	for _, r := range refs {
		want[r] = true
	}
	if len(want) != n {
		t.Fatalf("%d distinct refs for %d messages", len(want), n)
	}
	if got := sim.ReleaseReceipts(); got != n {
		t.Fatalf("simulator released %d receipts, want %d", got, n)
	}
	distinct := func(rc []gateway.Receipt) int {
		seen := map[string]bool{}
		for _, r := range rc {
			if want[r.Ref] && r.Source == "sim" && r.Status == gateway.StatusDelivered {
				seen[r.Ref] = true
			}
		}
		return len(seen)
	}
	// Wait until every receipt is either with the gateway or given up by
	// the SMSC, then count.
	waitUntil(t, "every receipt settled at the SMSC", func() bool {
		st := sim.ReceiptStats()
		return st.Taken+st.Lost >= n
	})
	_, rcs := recv.snapshot()
	st := sim.ReceiptStats()
	got := distinct(rcs)
	t.Logf("%d messages, receipts all at once (drop in the middle: %v): %d of %d handed to the gateway (%d calls), SMSC: %d taken, %d refused, %d lost, %d sent again",
		n, drop, got, n, len(rcs), st.Taken, st.Refused, st.Lost, st.Again)
	if got != n || st.Refused != 0 || st.Lost != 0 {
		t.Fatalf("%d of %d receipts handed to the gateway; SMSC: %d refused, %d lost", got, n, st.Refused, st.Lost)
	}
	if drop && !dropped.Load() {
		t.Fatal("the connection was never dropped")
	}
}

// 300 receipts at once from an SMSC that never resends are all
// handed to the gateway; none is refused for want of a handler.
func TestReceiptBurst(t *testing.T) { receiptBurst(t, false) }

// The same with the connection dropped half way: what was not answered
// comes again after the rebind, and nothing is lost.
func TestReceiptBurstWithDrop(t *testing.T) { receiptBurst(t, true) }

// MO messages from one sender reach the gateway in the order the SMSC sent
// them, however long each takes; another sender's messages and receipts
// do not wait behind them.
func TestMOOrderPerSender(t *testing.T) {
	sim, addr := startSim(t, smsc.Config{Outcome: "none", Window: 100})
	recv := newMemReceiver()
	release := make(chan struct{})
	recv.receive = func(ctx context.Context, m gateway.Inbound) error {
		if m.Parts[0].Text == "a0" {
			<-release // the first of sender a is slow
		}
		return nil
	}
	startEdge(t, Config{SMSCs: []SMSCConfig{smscConfig("sim", addr)}}, recv)
	mo := func(from, text string) *wire.Message {
		return &wire.Message{SourceTON: 1, SourceNPI: 1, Source: from, DestTON: 1, DestNPI: 1, Dest: "15551230001", ShortMessage: []byte(text)}
	}
	var msgs []*wire.Message
	for i := range 20 {
		msgs = append(msgs, mo("15551230002", fmt.Sprint("a", i)), mo("15551230003", fmt.Sprint("b", i)))
	}
	done := make(chan error, 1)
	go func() {
		st, err := sim.Deliver(context.Background(), "", msgs...)
		if err == nil {
			for i, s := range st {
				if s != wire.StatusOK {
					err = fmt.Errorf("deliver_sm %d answered %#x", i, uint32(s))
				}
			}
		}
		done <- err
	}()
	// Sender b's twenty go through while a's first is held.
	recv.waitFor(t, "sender b's messages", func(in []gateway.Inbound, _ []gateway.Receipt) bool {
		n := 0
		for _, m := range in {
			if m.From == "+15551230003" {
				n++
			}
		}
		return n == 20
	})
	in, _ := recv.snapshot()
	for _, m := range in {
		if m.From == "+15551230002" {
			t.Fatalf("%q from sender a overtook a0", m.Parts[0].Text)
		}
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	in, _ = recv.snapshot()
	var a, b []string
	for _, m := range in {
		switch m.From {
		case "+15551230002":
			a = append(a, m.Parts[0].Text)
		case "+15551230003":
			b = append(b, m.Parts[0].Text)
		}
	}
	for i := range 20 {
		if len(a) != 20 || len(b) != 20 || a[i] != fmt.Sprint("a", i) || b[i] != fmt.Sprint("b", i) {
			t.Fatalf("order per sender: a %v, b %v", a, b)
		}
	}
}

func TestOrderKey(t *testing.T) {
	body := func(m *wire.Message) []byte {
		f, err := wire.AppendMessage(nil, wire.DeliverSM, 1, m)
		if err != nil {
			t.Fatal(err)
		}
		return f[wire.HeaderLen:]
	}
	a := body(&wire.Message{SourceTON: 1, SourceNPI: 1, Source: "15551230002", Dest: "1", ShortMessage: []byte("hi")})
	a2 := body(&wire.Message{SourceTON: 1, SourceNPI: 1, Source: "15551230002", Dest: "2", ESMClass: wire.ESMClassUDHI})
	b := body(&wire.Message{SourceTON: 1, SourceNPI: 1, Source: "15551230003", Dest: "1"})
	rc := body(&wire.Message{SourceTON: 1, SourceNPI: 1, Source: "15551230002", Dest: "1", ESMClass: wire.ESMClassReceipt})
	if orderKey(a) == "" || orderKey(a) != orderKey(a2) || orderKey(a) == orderKey(b) {
		t.Fatalf("keys %q %q %q", orderKey(a), orderKey(a2), orderKey(b))
	}
	if orderKey(rc) != "" {
		t.Fatalf("a receipt is ordered: %q", orderKey(rc))
	}
	for i := range len(a) - 1 {
		_ = orderKey(a[:i]) // never panics on a short body
	}
}

// An SMSC that sends more deliver_sm unanswered than its window and the
// margin gets a retry for the excess, at once; the rest wait for the
// gateway and are taken.
func TestDeliverBeyondTheWindow(t *testing.T) {
	sim, addr := startSim(t, smsc.Config{Outcome: "none", Window: 100})
	recv := newMemReceiver()
	release := make(chan struct{})
	recv.receive = func(ctx context.Context, m gateway.Inbound) error {
		<-release
		return nil
	}
	sc := smscConfig("sim", addr)
	sc.DeliverWindow = 4 // held: 4 and a margin of 16
	e, _ := startEdge(t, Config{SMSCs: []SMSCConfig{sc}}, recv)
	var msgs []*wire.Message
	for i := range 30 {
		msgs = append(msgs, &wire.Message{SourceTON: 1, SourceNPI: 1, Source: fmt.Sprint(15551230100 + i), DestTON: 1, DestNPI: 1, Dest: "15551230001", ShortMessage: []byte("x")})
	}
	type answers struct {
		st  []pdu.Status
		err error
	}
	done := make(chan answers, 1)
	go func() {
		st, err := sim.Deliver(context.Background(), "", msgs...)
		done <- answers{st, err}
	}()
	waitUntil(t, "every deliver_sm read", func() bool {
		return testutil.ToFloat64(e.m.pdus.WithLabelValues("sim", "in", "deliver_sm")) == 30
	})
	close(release)
	a := <-done
	if a.err != nil {
		t.Fatal(a.err)
	}
	ok, retry := 0, 0
	for _, s := range a.st {
		switch s {
		case wire.StatusOK:
			ok++
		case wire.StatusTempAppError:
			retry++
		}
	}
	if ok != 20 || retry != 10 {
		t.Fatalf("%d taken, %d asked to retry; want 20 and 10", ok, retry)
	}
}
