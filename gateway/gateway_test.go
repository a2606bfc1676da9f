package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mimigw/mimigw/gateway/identity"
	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/bus/bustest"
	"github.com/mimigw/mimigw/mimi/content"
	"github.com/mimigw/mimigw/mimi/uri"
)

const (
	domain  = "gw.example.net"
	alice   = "mimi://desk.example/u/alice"
	phone   = uri.Number("+15551230002")
	lentNum = uri.Number("+15559990000")
	wait    = 20 * time.Second // failure bound only
)

// smsEdge plays the SMS edge: it records what it is asked to send and
// answers as told.
type smsEdge struct {
	mu     sync.Mutex
	sent   []OutboundSMS
	answer func(OutboundSMS) (SMSSent, error)
	calls  chan OutboundSMS
}

func newSMSEdge() *smsEdge {
	e := &smsEdge{calls: make(chan OutboundSMS, 100)}
	e.answer = func(m OutboundSMS) (SMSSent, error) {
		return SMSSent{Source: "smsc1", Refs: []string{fmt.Sprintf("id-%s", m.ID[:8])}}, nil
	}
	return e
}

func (e *smsEdge) Segments(text string) int { return asciiSegments(text) }

// asciiSegments is what an SMS edge with GSM 7-bit and 8-bit concatenation
// headers counts for ASCII text: 160 characters alone, 153 a part.
func asciiSegments(text string) int {
	if len(text) <= 160 {
		return 1
	}
	return (len(text) + 152) / 153
}

func (e *smsEdge) SendSMS(ctx context.Context, m OutboundSMS) (SMSSent, error) {
	e.mu.Lock()
	e.sent = append(e.sent, m)
	answer := e.answer
	e.mu.Unlock()
	e.calls <- m
	return answer(m)
}

// rcsEdge plays the RCS edge.
type rcsEdge struct {
	mu       sync.Mutex
	caps     Capabilities
	capsErr  error
	sendErr  error
	sent     chan OutboundRCS
	notified chan Notification
	revoked  chan Revocation
	probes   int
	// onSend, when set, sees each message the edge takes, before the
	// gateway hears it was taken.
	onSend func(OutboundRCS)
}

func newRCSEdge(caps Capabilities) *rcsEdge {
	return &rcsEdge{caps: caps, sent: make(chan OutboundRCS, 100), notified: make(chan Notification, 100), revoked: make(chan Revocation, 100)}
}

func (e *rcsEdge) Capabilities(ctx context.Context, n uri.Number) (Capabilities, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.probes++
	return e.caps, e.capsErr
}

func (e *rcsEdge) SendRCS(ctx context.Context, m OutboundRCS) error {
	e.mu.Lock()
	err := e.sendErr
	e.mu.Unlock()
	if errors.Is(err, ErrTooLarge) && m.LargeMessage {
		// The large-message path: what pager mode cannot carry goes by
		// an MSRP session to a phone that advertised it.
		err = nil
	}
	if err == nil {
		if e.onSend != nil {
			e.onSend(m)
		}
		e.sent <- m
	}
	return err
}

func (e *rcsEdge) Notify(ctx context.Context, n Notification) error {
	e.notified <- n
	return nil
}

func (e *rcsEdge) Revoke(ctx context.Context, r Revocation) error {
	e.revoked <- r
	return nil
}

type harness struct {
	t   *testing.T
	bus *bus.Bus
	g   *Gateway
	sms *smsEdge
	rcs *rcsEdge
	reg *prometheus.Registry
}

func newHarness(t *testing.T, cfg Config, rcs *rcsEdge, sms *smsEdge) *harness {
	t.Helper()
	b := bustest.New(t, bustest.WithConfig(func(c *bus.Config) {
		c.Backoff = []time.Duration{50 * time.Millisecond}
		c.MaxDeliver = 3
	}))
	ids := mustIdentity(t, b)
	reg := prometheus.NewRegistry()
	g, err := New(context.Background(), cfg, b, ids, bustest.Logger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	if rcs != nil {
		g.UseRCS(rcs)
	}
	if sms != nil {
		g.UseSMS(sms)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return &harness{t: t, bus: b, g: g, sms: sms, rcs: rcs, reg: reg}
}

func mustIdentity(t testing.TB, b *bus.Bus) *identity.Store {
	t.Helper()
	ids, err := identity.New(b.Identity(), identity.Config{Domain: domain, Pools: []string{"+15559990000-+15559990001"}})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func testConfig() Config {
	c := DefaultConfig()
	c.Workers = 8
	c.TimerWorkers = 2
	return c
}

// watch follows mimi.from.tel.<n>.
func (h *harness) watch(n uri.Number) <-chan *bus.Delivery {
	ctx, cancel := context.WithCancel(context.Background())
	h.t.Cleanup(cancel)
	ch, err := h.bus.WatchFromPhone(ctx, bus.SubjectFromPhone(n))
	if err != nil {
		h.t.Fatal(err)
	}
	return ch
}

func next(t *testing.T, ch <-chan *bus.Delivery) *bus.Delivery {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(wait):
		t.Fatal("nothing arrived on the bus")
		return nil
	}
}

func nothing[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %s: %+v", what, v)
	case <-time.After(300 * time.Millisecond):
	}
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatalf("no %s", what)
		var zero T
		return zero
	}
}

// sendToPhone publishes a MIMI text for n as the MIMI side would.
func (h *harness) sendToPhone(n uri.Number, sender, room, text string, channel Channel) content.MessageID {
	h.t.Helper()
	if room == "" {
		room = identity.DMRoom(domain, sender, uri.UserURI(domain, n))
	}
	m := content.NewText(sender, room, text, randomSalt())
	return h.publishToPhone(n, m, channel)
}

func (h *harness) publishToPhone(n uri.Number, m *content.Message, channel Channel) content.MessageID {
	h.t.Helper()
	data, err := m.Encode()
	if err != nil {
		h.t.Fatal(err)
	}
	id := content.ComputeID(m.Extensions.SenderURI, m.Extensions.RoomURI, data, m.Salt)
	env := bus.Envelope{ID: id.String(), Sender: m.Extensions.SenderURI, Recipient: n.TelURI(), Room: m.Extensions.RoomURI, Channel: string(channel), Accepted: time.Now()}
	if _, err := h.bus.Publish(context.Background(), bus.SubjectToPhone(n), env, data); err != nil {
		h.t.Fatal(err)
	}
	return id
}

// statusOf decodes a status report from the bus.
func statusOf(t *testing.T, d *bus.Delivery) (content.MessageID, content.Status) {
	t.Helper()
	m, err := content.Decode(d.Data)
	if err != nil {
		t.Fatal(err)
	}
	entries, ok, err := m.StatusReport()
	if err != nil || !ok || len(entries) != 1 {
		t.Fatalf("not a status report of one entry: %v %v %+v", ok, err, entries)
	}
	return entries[0].ID, entries[0].Status
}

func TestInboundSMSToLentNumber(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testConfig(), nil, newSMSEdge())
	ctx := context.Background()
	lent, err := h.g.Identity().Lend(ctx, alice, phone)
	if err != nil {
		t.Fatal(err)
	}
	ch := h.watch(phone)
	if err := h.g.Receive(ctx, Inbound{Channel: ChannelSMS, From: phone, To: lent, Parts: []Part{{Text: "hello €"}}}); err != nil {
		t.Fatal(err)
	}
	d := next(t, ch)
	m, err := content.Decode(d.Data)
	if err != nil {
		t.Fatal(err)
	}
	wantRoom := identity.DMRoom(domain, alice, "mimi://gw.example.net/u/+15551230002")
	if d.Envelope.Sender != "mimi://gw.example.net/u/+15551230002" || d.Envelope.Recipient != alice || d.Envelope.Channel != "sms" || d.Envelope.Room != wantRoom {
		t.Errorf("envelope %+v", d.Envelope)
	}
	if m.Extensions.SenderURI != d.Envelope.Sender || m.Extensions.RoomURI != wantRoom || string(m.Body.Content) != "hello €" || m.Body.ContentType != content.TypePlain {
		t.Errorf("content %+v", m)
	}
	if id, _ := m.ID(); id.String() != d.Envelope.ID {
		t.Errorf("Mimi-Id %s, content ID %s", d.Envelope.ID, id)
	}
}

func TestInboundRejectsUnknownLentNumber(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testConfig(), nil, newSMSEdge())
	ch := h.watch(phone)
	err := h.g.Receive(context.Background(), Inbound{Channel: ChannelSMS, From: phone, To: lentNum, Parts: []Part{{Text: "who?"}}})
	if !errors.Is(err, ErrRejected) {
		t.Fatalf("to an unbound lent number: %v, want ErrRejected", err)
	}
	nothing(t, ch, "message on the bus")
}

func TestInboundResentOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testConfig(), newRCSEdge(Capabilities{Chat: true}), nil)
	ch := h.watch(phone)
	in := Inbound{Channel: ChannelRCS, From: phone, To: "+15551239999", Ref: "Msg2BCqcBUWKA", Parts: []Part{{Text: "once"}}}
	for i := 0; i < 3; i++ {
		if err := h.g.Receive(context.Background(), in); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	d := next(t, ch)
	if d.Envelope.Recipient != "tel:+15551239999" {
		t.Errorf("recipient %q", d.Envelope.Recipient)
	}
	nothing(t, ch, "second copy")
	if got := testutil.ToFloat64(h.g.m.inbound.WithLabelValues("rcs", "duplicate")); got != 2 {
		t.Errorf("duplicates counted: %v, want 2", got)
	}
}

func TestInboundBusDown(t *testing.T) {
	t.Parallel()
	srv := bustest.NewServer(t)
	b := srv.Bus(t)
	ids, err := identity.New(b.Identity(), identity.Config{Domain: domain})
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(context.Background(), testConfig(), b, ids, bustest.Logger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err = g.Receive(ctx, Inbound{Channel: ChannelSMS, From: phone, To: "+15551239999", Parts: []Part{{Text: "x"}}})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("bus down: %v, want ErrUnavailable", err)
	}
}

// A message from a phone larger than the bus can store is refused, never
// answered as a failure to retry, and nothing of it is written; one just
// under the limit is stored.
func TestInboundTooLarge(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testConfig(), newRCSEdge(Capabilities{Chat: true}), nil)
	ctx := context.Background()
	limit := int(h.bus.MaxPayload())
	if limit <= 0 {
		t.Fatalf("max payload %d", limit)
	}
	// Over the limit as it is; then fitting as encoded, but not with the
	// envelope's headers (the bus's own check).
	for i, size := range []int{limit + 1, limit - 300} {
		in := Inbound{Channel: ChannelRCS, From: phone, To: "+15551239999", Ref: fmt.Sprintf("big-%d", i),
			ConversationID: "conv-big", Parts: []Part{{Text: strings.Repeat("x", size)}}}
		err := h.g.Receive(ctx, in)
		if !errors.Is(err, ErrOversize) || !errors.Is(err, ErrRejected) || errors.Is(err, ErrUnavailable) {
			t.Errorf("%d bytes of text: %v, want ErrOversize (a refusal), not ErrUnavailable", size, err)
		}
	}
	stored := func() uint64 { t.Helper(); return bustest.FromPhoneCount(t, h.bus) }
	if n := stored(); n != 0 {
		t.Errorf("from-phone stream holds %d after refusals, want 0", n)
	}
	if got := testutil.ToFloat64(h.g.m.inbound.WithLabelValues("rcs", "rejected")); got != 2 {
		t.Errorf("rejected counted: %v, want 2", got)
	}
	ch := h.watch(phone)
	under := strings.Repeat("y", limit-64<<10)
	if err := h.g.Receive(ctx, Inbound{Channel: ChannelRCS, From: phone, To: "+15551239999", Ref: "under", Parts: []Part{{Text: under}}}); err != nil {
		t.Fatalf("%d bytes of text: %v", len(under), err)
	}
	m, err := content.Decode(next(t, ch).Data)
	if err != nil || string(m.Body.Content) != under {
		t.Errorf("message under the limit: %v, %d bytes of content", err, len(m.Body.Content))
	}
	if n := stored(); n != 1 {
		t.Errorf("from-phone stream holds %d, want 1", n)
	}
}

// What a failed publish of a message from a phone tells the edge: only
// trouble of the moment is worth a retry.
func TestPublishErrorKinds(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want error
	}{
		{fmt.Errorf("bus: publish x: %w: nats: maximum payload exceeded", bus.ErrTooLarge), ErrOversize},
		{errors.Join(fmt.Errorf("bus: %w", bus.ErrTooLarge), fmt.Errorf("bus: record: %w", bus.ErrUnavailable)), ErrOversize},
		{fmt.Errorf("bus: publish x: %w: timeout", bus.ErrUnavailable), ErrUnavailable},
		{fmt.Errorf("bus: publish x: %w", bus.ErrClosed), ErrUnavailable},
		{context.DeadlineExceeded, ErrUnavailable},
		{fmt.Errorf("bus: publish x: %w", bus.ErrBadEnvelope), ErrRejected},
		{fmt.Errorf("bus: publish x: %w", bus.ErrBadSubject), ErrRejected},
	} {
		if got := publishError(tt.err); got != tt.want {
			t.Errorf("%v: %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestOutboundRCSDelivered(t *testing.T) {
	t.Parallel()
	rcs := newRCSEdge(Capabilities{Chat: true, Revoke: true})
	h := newHarness(t, testConfig(), rcs, newSMSEdge())
	reports := h.watch(phone)
	id := h.sendToPhone(phone, alice, "mimi://desk.example/r/team", "hi there", ChannelAuto)
	m := recv(t, rcs.sent, "RCS message")
	if m.To != phone || m.Parts[0].Text != "hi there" || !m.Notify.Delivery || m.Ref == "" || m.ConversationID == "" {
		t.Fatalf("RCS message %+v", m)
	}
	if !h.g.Identity().InPool(m.From) {
		t.Errorf("sent from %s, not a lent number", m.From)
	}
	if err := h.g.Receipt(context.Background(), Receipt{Channel: ChannelRCS, From: phone, Ref: m.Ref, Status: StatusDelivered}); err != nil {
		t.Fatal(err)
	}
	d := next(t, reports)
	if rid, st := statusOf(t, d); rid != id || st != content.Delivered {
		t.Errorf("report %s %s", rid, st)
	}
	if d.Envelope.Recipient != alice || d.Envelope.Room != "mimi://desk.example/r/team" || d.Envelope.Sender != "mimi://gw.example.net/u/+15551230002" {
		t.Errorf("report envelope %+v", d.Envelope)
	}
	// Read after delivered is reported; delivered again is not.
	for _, st := range []Status{StatusRead, StatusDelivered} {
		if err := h.g.Receipt(context.Background(), Receipt{Channel: ChannelRCS, From: phone, Ref: m.Ref, Status: st}); err != nil {
			t.Fatal(err)
		}
	}
	if _, st := statusOf(t, next(t, reports)); st != content.Read {
		t.Errorf("second report %s, want read", st)
	}
	nothing(t, reports, "report")
	nothing(t, h.sms.calls, "SMS")
}

func TestOutboundNotRCSGoesBySMS(t *testing.T) {
	t.Parallel()
	rcs := newRCSEdge(Capabilities{Chat: true})
	rcs.sendErr = fmt.Errorf("SIP 404: %w", ErrNotRCS)
	sms := newSMSEdge()
	sms.answer = func(m OutboundSMS) (SMSSent, error) {
		return SMSSent{Source: "smsc1", Refs: []string{"a1", "a2"}}, nil
	}
	h := newHarness(t, testConfig(), rcs, sms)
	reports := h.watch(phone)
	id := h.sendToPhone(phone, alice, "", "two segments", ChannelAuto)
	m := recv(t, sms.calls, "SMS")
	if m.To != phone || m.Text != "two segments" || !m.Receipt {
		t.Fatalf("SMS %+v", m)
	}
	ctx := context.Background()
	if err := h.g.Receipt(ctx, Receipt{Channel: ChannelSMS, Source: "smsc1", Ref: "a2", Status: StatusDelivered}); err != nil {
		t.Fatal(err)
	}
	nothing(t, reports, "report after one of two segments")
	if err := h.g.Receipt(ctx, Receipt{Channel: ChannelSMS, Source: "smsc1", Ref: "a1", Status: StatusDelivered}); err != nil {
		t.Fatal(err)
	}
	if rid, st := statusOf(t, next(t, reports)); rid != id || st != content.Delivered {
		t.Errorf("report %s %s", rid, st)
	}
	// The 404 is remembered: the next message goes by SMS without trying RCS.
	h.sendToPhone(phone, alice, "", "again", ChannelAuto)
	recv(t, sms.calls, "second SMS")
	rcs.mu.Lock()
	probes := rcs.probes
	rcs.mu.Unlock()
	if probes != 1 {
		t.Errorf("%d capability queries, want 1", probes)
	}
	if got := testutil.ToFloat64(h.g.m.fallbacks.WithLabelValues("not_rcs")); got != 1 {
		t.Errorf("fallbacks counted %v", got)
	}
}

// A receipt that arrives before the gateway has recorded the message it
// names (a fast SMSC) is held and applied.
func TestReceiptBeforeRecord(t *testing.T) {
	t.Parallel()
	sms := newSMSEdge()
	var g *Gateway
	sms.answer = func(m OutboundSMS) (SMSSent, error) {
		err := g.Receipt(context.Background(), Receipt{Channel: ChannelSMS, Source: "smsc1", Ref: "early-1", Status: StatusDelivered})
		return SMSSent{Source: "smsc1", Refs: []string{"early-1"}}, err
	}
	h := newHarness(t, testConfig(), nil, sms)
	g = h.g
	reports := h.watch(phone)
	id := h.sendToPhone(phone, alice, "", "fast", ChannelSMS)
	if rid, st := statusOf(t, next(t, reports)); rid != id || st != content.Delivered {
		t.Errorf("report %s %s", rid, st)
	}
}

// An SMSC that restarted gives out message ids again: the receipt for a
// reused id belongs to the newest message sent under it, which gets its
// report; the first message is not told twice.
func TestReceiptForReusedID(t *testing.T) {
	t.Parallel()
	sms := newSMSEdge()
	sms.answer = func(m OutboundSMS) (SMSSent, error) {
		return SMSSent{Source: "smsc1", Refs: []string{"1"}}, nil
	}
	h := newHarness(t, testConfig(), nil, sms)
	reports := h.watch(phone)
	ctx := context.Background()
	first := h.sendToPhone(phone, alice, "", "before the restart", ChannelSMS)
	recv(t, sms.calls, "first SMS")
	if err := h.g.Receipt(ctx, Receipt{Channel: ChannelSMS, Source: "smsc1", Ref: "1", Status: StatusDelivered}); err != nil {
		t.Fatal(err)
	}
	if rid, st := statusOf(t, next(t, reports)); rid != first || st != content.Delivered {
		t.Fatalf("first report %s %s", rid, st)
	}
	second := h.sendToPhone(phone, alice, "", "after the restart", ChannelSMS)
	recv(t, sms.calls, "second SMS")
	// The record of the second message is written before its ack; wait
	// for it to own the id.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var r refRecord
		if _, err := h.g.rec.get(ctx, smsRefKey("smsc1", "1"), &r); err == nil && r.ID == second.String() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the reused id never came to name the second message")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := h.g.Receipt(ctx, Receipt{Channel: ChannelSMS, Source: "smsc1", Ref: "1", Status: StatusDelivered}); err != nil {
		t.Fatal(err)
	}
	if rid, st := statusOf(t, next(t, reports)); rid != second || st != content.Delivered {
		t.Errorf("report for the reused id: %s %s, want %s delivered", rid, st, second)
	}
	if got := testutil.ToFloat64(h.g.m.receipts.WithLabelValues("sms", "id_reused")); got != 1 {
		t.Errorf("id_reused counted %v, want 1", got)
	}
}

func TestRevocationThenSMS(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.DeliveryTimeout = 200 * time.Millisecond
	rcs := newRCSEdge(Capabilities{Chat: true, Revoke: true})
	sms := newSMSEdge()
	h := newHarness(t, cfg, rcs, sms)
	reports := h.watch(phone)
	id := h.sendToPhone(phone, alice, "", "are you there?", ChannelAuto)
	m := recv(t, rcs.sent, "RCS message")
	r := recv(t, rcs.revoked, "revocation")
	if r.Ref != m.Ref || r.To != phone || r.From != m.From || r.ConversationID != m.ConversationID {
		t.Fatalf("revocation %+v of %+v", r, m)
	}
	nothing(t, sms.calls, "SMS before the revocation result")
	if err := h.g.RevocationResult(context.Background(), RevocationResult{From: phone, Ref: m.Ref, Revoked: true}); err != nil {
		t.Fatal(err)
	}
	s := recv(t, sms.calls, "SMS after revocation")
	if s.Text != "are you there?" || s.From != string(m.From) {
		t.Errorf("SMS %+v", s)
	}
	if err := h.g.Receipt(context.Background(), Receipt{Channel: ChannelSMS, Source: "smsc1", Ref: "id-" + id.String()[:8], Status: StatusDelivered}); err != nil {
		t.Fatal(err)
	}
	if rid, st := statusOf(t, next(t, reports)); rid != id || st != content.Delivered {
		t.Errorf("report %s %s", rid, st)
	}
}

func TestRevocationTooLate(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.DeliveryTimeout = 200 * time.Millisecond
	rcs := newRCSEdge(Capabilities{Chat: true, Revoke: true})
	sms := newSMSEdge()
	h := newHarness(t, cfg, rcs, sms)
	reports := h.watch(phone)
	id := h.sendToPhone(phone, alice, "", "late", ChannelAuto)
	m := recv(t, rcs.sent, "RCS message")
	recv(t, rcs.revoked, "revocation")
	if err := h.g.RevocationResult(context.Background(), RevocationResult{From: phone, Ref: m.Ref, Revoked: false}); err != nil {
		t.Fatal(err)
	}
	if rid, st := statusOf(t, next(t, reports)); rid != id || st != content.Delivered {
		t.Errorf("report %s %s", rid, st)
	}
	nothing(t, sms.calls, "SMS")
}

// A message past the delivery timeout toward a phone that cannot revoke
// ends as gateway.unrevocable says: by SMS as well (and its receipt's
// report), reported expired, or left waiting for the IMDN.
func TestUnrevocablePolicy(t *testing.T) {
	t.Parallel()
	for _, policy := range []string{UnrevocableSMS, UnrevocableExpire, UnrevocableWait} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			cfg.DeliveryTimeout = 100 * time.Millisecond
			cfg.Unrevocable = policy
			rcs := newRCSEdge(Capabilities{Chat: true})
			h := newHarness(t, cfg, rcs, newSMSEdge())
			reports := h.watch(phone)
			id := h.sendToPhone(phone, alice, "", "x", ChannelAuto)
			recv(t, rcs.sent, "RCS message")
			nothing(t, rcs.revoked, "revocation toward a phone that does not support it")
			switch policy {
			case UnrevocableSMS:
				s := recv(t, h.sms.calls, "SMS as well")
				if s.Text != "x" {
					t.Errorf("SMS %+v", s)
				}
				if err := h.g.Receipt(context.Background(), Receipt{Channel: ChannelSMS, Source: "smsc1", Ref: "id-" + id.String()[:8], Status: StatusDelivered}); err != nil {
					t.Fatal(err)
				}
				if rid, st := statusOf(t, next(t, reports)); rid != id || st != content.Delivered {
					t.Errorf("report %s %s", rid, st)
				}
			case UnrevocableExpire:
				if rid, st := statusOf(t, next(t, reports)); rid != id || st != content.Expired {
					t.Errorf("report %s %s, want expired", rid, st)
				}
				nothing(t, h.sms.calls, "SMS")
			case UnrevocableWait:
				nothing(t, h.sms.calls, "SMS")
				nothing(t, reports, "report")
			}
		})
	}
}

// A revocation whose result never comes ends by the policy too, after
// gateway.revocation_timeout: here by SMS.
func TestRevocationWithoutResult(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.DeliveryTimeout = 100 * time.Millisecond
	cfg.RevocationTimeout = 200 * time.Millisecond
	rcs := newRCSEdge(Capabilities{Chat: true, Revoke: true})
	h := newHarness(t, cfg, rcs, newSMSEdge())
	h.sendToPhone(phone, alice, "", "anyone?", ChannelAuto)
	recv(t, rcs.sent, "RCS message")
	recv(t, rcs.revoked, "revocation")
	if s := recv(t, h.sms.calls, "SMS after the revocation went unanswered"); s.Text != "anyone?" {
		t.Errorf("SMS %+v", s)
	}
	if got := testutil.ToFloat64(h.g.m.revocations.WithLabelValues("no_result")); got != 1 {
		t.Errorf("no_result counted %v", got)
	}
}

func TestFailuresBecomeErrorReports(t *testing.T) {
	t.Parallel()
	sms := newSMSEdge()
	sms.answer = func(m OutboundSMS) (SMSSent, error) {
		if m.Text == "pump" {
			return SMSSent{}, fmt.Errorf("rate limit per destination: %w", ErrRejected)
		}
		return SMSSent{}, errors.New("SMSC not bound")
	}
	h := newHarness(t, testConfig(), nil, sms)
	reports := h.watch(phone)

	// Refused by the SMS side: reported at once.
	id := h.sendToPhone(phone, alice, "", "pump", ChannelAuto)
	if rid, st := statusOf(t, next(t, reports)); rid != id || st != content.Error {
		t.Errorf("refused: report %s %s", rid, st)
	}
	// Failing every time: reported after the last attempt (MaxDeliver 3).
	id = h.sendToPhone(phone, alice, "", "retry", ChannelAuto)
	if rid, st := statusOf(t, next(t, reports)); rid != id || st != content.Error {
		t.Errorf("retries exhausted: report %s %s", rid, st)
	}
	sms.mu.Lock()
	tries := 0
	for _, m := range sms.sent {
		if m.Text == "retry" {
			tries++
		}
	}
	sms.mu.Unlock()
	if tries != 3 {
		t.Errorf("%d tries, want 3", tries)
	}
	// Pool exhausted: the pool holds two numbers, a third user gets none.
	if _, err := h.g.Identity().Lend(context.Background(), "mimi://desk.example/u/b", phone); err != nil {
		t.Fatal(err)
	}
	id = h.sendToPhone(phone, "mimi://desk.example/u/d", "", "no number", ChannelAuto)
	if rid, st := statusOf(t, next(t, reports)); rid != id || st != content.Error {
		t.Errorf("pool exhausted: report %s %s", rid, st)
	}
}

func TestBadContentReported(t *testing.T) {
	t.Parallel()
	sms := newSMSEdge()
	h := newHarness(t, testConfig(), nil, sms)
	reports := h.watch(phone)
	// A message whose Mimi-Id is not its content's ID.
	m := content.NewText(alice, "mimi://desk.example/r/team", "spoofed", randomSalt())
	data, _ := m.Encode()
	var wrong content.MessageID
	wrong[0], wrong[1] = 1, 2
	env := bus.Envelope{ID: wrong.String(), Sender: alice, Recipient: phone.TelURI(), Room: "mimi://desk.example/r/team", Accepted: time.Now()}
	if _, err := h.bus.Publish(context.Background(), bus.SubjectToPhone(phone), env, data); err != nil {
		t.Fatal(err)
	}
	if rid, st := statusOf(t, next(t, reports)); rid != wrong || st != content.Error {
		t.Errorf("report %s %s", rid, st)
	}
	// Garbage content.
	env.ID = "01" + wrong.String()[2:62] + "ff"
	if _, err := h.bus.Publish(context.Background(), bus.SubjectToPhone(phone), env, []byte{0x87, 0x01}); err != nil {
		t.Fatal(err)
	}
	if rid, st := statusOf(t, next(t, reports)); rid.String() != env.ID || st != content.Error {
		t.Errorf("report %s %s", rid, st)
	}
	nothing(t, sms.calls, "SMS")
}

func TestDeliveredOnceOnRedelivery(t *testing.T) {
	t.Parallel()
	sms := newSMSEdge()
	h := newHarness(t, testConfig(), nil, sms)
	m := content.NewText(alice, "mimi://desk.example/r/team", "once", randomSalt())
	id := h.publishToPhone(phone, m, ChannelSMS)
	recv(t, sms.calls, "SMS")
	for deadline := time.Now().Add(wait); ; {
		var rec outRecord
		if _, err := h.g.rec.get(context.Background(), outKey(copyKey{id: id.String(), to: phone}), &rec); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("delivery never recorded")
		}
		time.Sleep(10 * time.Millisecond)
	}
	data, _ := m.Encode()
	o := &outbound{id: id, msg: m, data: data, sender: alice, recipient: phone, channel: ChannelSMS}
	if err := h.g.deliver(context.Background(), o, 2); err != nil {
		t.Fatal(err)
	}
	nothing(t, sms.calls, "second SMS")
}

// messageToAlice lends alice a number for in.From, sends in to it from
// the phone, and returns the number, the MIMI message on the bus and its
// ID.
func (h *harness) messageToAlice(in Inbound) (uri.Number, *bus.Delivery, content.MessageID) {
	h.t.Helper()
	lent, err := h.g.Identity().Lend(context.Background(), alice, in.From)
	if err != nil {
		h.t.Fatal(err)
	}
	ch := h.watch(in.From)
	in.To = lent
	if err := h.g.Receive(context.Background(), in); err != nil {
		h.t.Fatal(err)
	}
	d := next(h.t, ch)
	id, err := content.ParseMessageID(d.Envelope.ID)
	if err != nil {
		h.t.Fatal(err)
	}
	return lent, d, id
}

func TestReadReportBecomesIMDN(t *testing.T) {
	t.Parallel()
	rcs := newRCSEdge(Capabilities{Chat: true})
	h := newHarness(t, testConfig(), rcs, nil)
	in := Inbound{Channel: ChannelRCS, From: phone, Ref: "imdn-1", ConversationID: "conv-1", Notify: Notifications{Delivery: true}, Parts: []Part{{Text: "hi"}}}
	lent, d, id := h.messageToAlice(in)
	// alice's client reports delivered, then read; only delivered was asked for.
	for _, st := range []content.Status{content.Delivered, content.Read, content.Delivered} {
		rep := content.NewStatusReport(alice, d.Envelope.Room, []content.StatusEntry{{ID: id, Status: st}}, randomSalt())
		h.publishToPhone(phone, rep, ChannelAuto)
	}
	n := recv(t, rcs.notified, "IMDN")
	if n.To != phone || n.From != lent || n.Ref != "imdn-1" || n.ConversationID != "conv-1" || n.Status != StatusDelivered {
		t.Errorf("notification %+v", n)
	}
	nothing(t, rcs.notified, "second IMDN")
	// Replies go into the phone user's conversation.
	h.sendToPhone(phone, alice, d.Envelope.Room, "back", ChannelAuto)
	if m := recv(t, rcs.sent, "reply"); m.ConversationID != "conv-1" || m.From != lent {
		t.Errorf("reply %+v", m)
	}
}

// A message the phone sends again (its SIP retransmission came late, or
// the phone re-sent it) keeps the record of its first sending: a report
// already turned into an IMDN is not sent a second time.
func TestResentMessageKeepsWhatWasTold(t *testing.T) {
	t.Parallel()
	rcs := newRCSEdge(Capabilities{Chat: true})
	h := newHarness(t, testConfig(), rcs, nil)
	ctx := context.Background()
	in := Inbound{Channel: ChannelRCS, From: phone, Ref: "resent-1", Notify: Notifications{Delivery: true}, Parts: []Part{{Text: "hi"}}}
	lent, d, id := h.messageToAlice(in)
	in.To = lent
	report := func() {
		rep := content.NewStatusReport(alice, d.Envelope.Room, []content.StatusEntry{{ID: id, Status: content.Delivered}}, randomSalt())
		h.publishToPhone(phone, rep, ChannelAuto)
	}
	report()
	recv(t, rcs.notified, "IMDN")
	for deadline := time.Now().Add(wait); ; {
		var rec inRecord
		if _, err := h.g.rec.get(ctx, inKey(id.String()), &rec); err == nil && len(rec.Told) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the IMDN sent was never recorded")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := h.g.Receive(ctx, in); err != nil {
		t.Fatal(err)
	}
	report()
	nothing(t, rcs.notified, "second IMDN after the message came again")
}

// A message too large for pager mode goes by SMS; the number stays an RCS
// user for the next one.
func TestTooLargeGoesBySMSKeepsRCS(t *testing.T) {
	t.Parallel()
	rcs := newRCSEdge(Capabilities{Chat: true})
	rcs.sendErr = fmt.Errorf("body over max_body: %w", ErrTooLarge)
	sms := newSMSEdge()
	h := newHarness(t, testConfig(), rcs, sms)
	h.sendToPhone(phone, alice, "", "a long story", ChannelAuto)
	if m := recv(t, sms.calls, "SMS"); m.Text != "a long story" {
		t.Fatalf("SMS %+v", m)
	}
	rcs.mu.Lock()
	rcs.sendErr = nil
	rcs.mu.Unlock()
	h.sendToPhone(phone, alice, "", "short", ChannelAuto)
	if m := recv(t, rcs.sent, "RCS message"); m.Parts[0].Text != "short" {
		t.Fatalf("RCS %+v", m)
	}
	if got := testutil.ToFloat64(h.g.m.fallbacks.WithLabelValues("too_large")); got != 1 {
		t.Errorf("too_large fallbacks %v", got)
	}
}

// A message too large for pager mode goes by RCS, large message mode, to a
// phone that advertised it, and by SMS to one that did not.
func TestTooLargeGoesByLargeMessageMode(t *testing.T) {
	t.Parallel()
	rcs := newRCSEdge(Capabilities{Chat: true, LargeMessage: true})
	rcs.sendErr = fmt.Errorf("body over max_body: %w", ErrTooLarge)
	sms := newSMSEdge()
	h := newHarness(t, testConfig(), rcs, sms)
	h.sendToPhone(phone, alice, "", "a long story", ChannelAuto)
	if m := recv(t, rcs.sent, "RCS message"); m.Parts[0].Text != "a long story" || !m.LargeMessage {
		t.Fatalf("RCS %+v", m)
	}
	nothing(t, sms.calls, "SMS for a phone with large message mode")
	if got := testutil.ToFloat64(h.g.m.fallbacks.WithLabelValues("too_large")); got != 0 {
		t.Errorf("too_large fallbacks %v", got)
	}

	rcs2 := newRCSEdge(Capabilities{Chat: true})
	rcs2.sendErr = fmt.Errorf("body over max_body: %w", ErrTooLarge)
	sms2 := newSMSEdge()
	h2 := newHarness(t, testConfig(), rcs2, sms2)
	h2.sendToPhone(phone, alice, "", "a long story", ChannelAuto)
	if m := recv(t, sms2.calls, "SMS"); m.Text != "a long story" {
		t.Fatalf("SMS %+v", m)
	}
	nothing(t, rcs2.sent, "RCS message to a phone without large message mode")
}
