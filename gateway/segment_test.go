package gateway

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/bus/bustest"
	"github.com/mimigw/mimigw/mimi/content"
)

func textOfDelivery(t *testing.T, d *bus.Delivery) (string, bool) {
	t.Helper()
	m, err := content.Decode(d.Data)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := m.Text()
	_, incomplete := m.Extensions.Get(IncompleteExtension)
	return text, incomplete
}

func seg(ref uint16, total, seq uint8, text string) Segment {
	return Segment{From: phone, To: "+15551239999", Ref: ref, Wide: true, Total: total, Seq: seq, Text: text}
}

// Segments out of order, repeated, and split between two instances make
// one message.
func TestSegmentsReassembled(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testConfig(), nil, newSMSEdge())
	other := newGatewayOn(t, bustest.Join(t, h.bus))
	ch := h.watch(phone)
	ctx := context.Background()
	for i, s := range []struct {
		g *Gateway
		s Segment
	}{
		{h.g, seg(7000, 3, 3, "three")},
		{other, seg(7000, 3, 1, "one ")},
		{h.g, seg(7000, 3, 1, "one ")},
		{other, seg(7000, 3, 2, "two ")},
		{h.g, seg(7000, 3, 2, "two ")},
	} {
		if err := s.g.ReceiveSegment(ctx, s.s); err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
	}
	text, incomplete := textOfDelivery(t, next(t, ch))
	if text != "one two three" || incomplete {
		t.Errorf("message %q incomplete=%v", text, incomplete)
	}
	nothing(t, ch, "second copy")
	// The sender reuses the reference for a new message.
	for _, s := range []Segment{seg(7000, 3, 1, "new "), seg(7000, 3, 2, "message "), seg(7000, 3, 3, "here")} {
		if err := h.g.ReceiveSegment(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if text, _ := textOfDelivery(t, next(t, ch)); text != "new message here" {
		t.Errorf("reused reference: %q", text)
	}
}

func TestSegmentsTimeOut(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.ReassemblyTimeout = 200 * time.Millisecond
	h := newHarness(t, cfg, nil, newSMSEdge())
	ch := h.watch(phone)
	ctx := context.Background()
	for _, s := range []Segment{seg(9, 3, 1, "first "), seg(9, 3, 3, "third")} {
		if err := h.g.ReceiveSegment(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	text, incomplete := textOfDelivery(t, next(t, ch))
	if text != "first third" || !incomplete {
		t.Errorf("message %q incomplete=%v", text, incomplete)
	}
	// The missing part turning up late makes no second message of the
	// same text; it is delivered as what it is. Until the timer's worker
	// has marked the message done, the part waits (the SMSC would send
	// it again).
	for i := 0; ; i++ {
		err := h.g.ReceiveSegment(ctx, seg(9, 3, 2, "second "))
		if err == nil {
			break
		}
		if !errors.Is(err, ErrUnavailable) || i == 500 {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if text, incomplete := textOfDelivery(t, next(t, ch)); text != "second " || !incomplete {
		t.Errorf("late part: %q incomplete=%v", text, incomplete)
	}
}

func TestSegmentSurrogatesMended(t *testing.T) {
	t.Parallel()
	// U+1F600 split between two UCS-2 segments: D83D | DE00.
	grp := segGroup{Total: 3, Parts: map[uint8]segPart{
		1: {Text: "a", TailHigh: 0xD83D},
		2: {Text: "b", HeadLow: 0xDE00, TailHigh: 0xD83D},
	}}
	if got := joinSegments(grp); got != "a😀b\uFFFD" {
		t.Errorf("joined %q", got)
	}
}

func TestSegmentRejects(t *testing.T) {
	t.Parallel()
	h := newHarness(t, testConfig(), nil, newSMSEdge())
	for _, s := range []Segment{seg(1, 3, 0, "x"), seg(1, 3, 4, "x"), seg(1, 0, 1, "x"), seg(1, 2, 1, "\xff"), {To: "+15551239999", Total: 2, Seq: 1}} {
		if err := h.g.ReceiveSegment(context.Background(), s); !errors.Is(err, ErrRejected) {
			t.Errorf("segment %+v: %v, want ErrRejected", s, err)
		}
	}
}

// newGatewayOn makes a second gateway instance on b (not running its
// consumers: segments need none).
func newGatewayOn(t *testing.T, b *bus.Bus) *Gateway {
	t.Helper()
	ids := mustIdentity(t, b)
	g, err := New(context.Background(), testConfig(), b, ids, bustest.Logger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// Each message under a reference has its own reassembly timer: one still
// pending (or firing) for an earlier message never stands in for the
// next one's.
func TestSegmentTimerPerMessage(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.ReassemblyTimeout = time.Hour // timers stay pending
	h := newHarness(t, cfg, nil, newSMSEdge())
	ch := h.watch(phone)
	ctx := context.Background()
	for _, s := range []Segment{seg(5, 2, 1, "old "), seg(5, 2, 2, "message")} {
		if err := h.g.ReceiveSegment(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if text, _ := textOfDelivery(t, next(t, ch)); text != "old message" {
		t.Fatalf("first message %q", text)
	}
	// The reference comes back for a new message while the first one's
	// timer is still pending.
	if err := h.g.ReceiveSegment(ctx, seg(5, 2, 1, "new ")); err != nil {
		t.Fatal(err)
	}
	stream, err := h.bus.JetStream().Stream(ctx, h.bus.Config().TimerStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter("mimigw.timer.segments.>"))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.State.Subjects) != 2 {
		t.Errorf("pending reassembly timers %v, want one for each message", info.State.Subjects)
	}
}

// A copy of a segment that arrives while another worker publishes its
// message (the record says flushing, the hold running) is answered
// without publishing the message again, and a timer stands by for the
// hold's end; a new message under the reference, and the reassembly
// timer, wait. Once the hold has run out (its flusher died), the next
// copy publishes the message, once. Counted on a core subscription, which
// sees every publish, duplicates included.
func TestSegmentDuplicateWhileFlushing(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.ReassemblyTimeout = time.Hour // no timer fires here
	h := newHarness(t, cfg, nil, newSMSEdge())
	ctx := context.Background()
	nc := h.bus.Conn()
	sub, err := nc.SubscribeSync(bus.SubjectFromPhone(phone))
	if err != nil {
		t.Fatal(err)
	}
	published := func() int {
		t.Helper()
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		n, _, err := sub.Pending()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	s1, s2 := seg(11, 2, 1, "held "), seg(11, 2, 2, "by another worker")
	key, first := "seg."+segID(s1), time.Now().Add(-time.Second).Truncate(time.Millisecond)
	grp := segGroup{From: s1.From, To: s1.To, Total: 2, First: first, Flushing: true, FlushUntil: time.Now().Add(time.Hour),
		Parts: map[uint8]segPart{1: {Text: s1.Text}, 2: {Text: s2.Text}}}
	if exists, err := h.g.rec.create(ctx, key, grp); err != nil || exists {
		t.Fatalf("record: exists=%v %v", exists, err)
	}
	if err := h.g.ReceiveSegment(ctx, s2); err != nil {
		t.Fatalf("copy while flushing: %v", err)
	}
	if err := h.g.ReceiveSegment(ctx, seg(11, 2, 1, "new ")); !errors.Is(err, ErrUnavailable) {
		t.Errorf("new message under the reference while flushing: %v, want ErrUnavailable", err)
	}
	timerKey := segID(s1) + "." + strconv.FormatInt(first.UnixNano(), 10)
	if err := h.g.segmentsDue(ctx, timerKey); !errors.Is(err, errFlushing) {
		t.Errorf("reassembly timer while flushing: %v, want errFlushing", err)
	}
	if n := published(); n != 0 {
		t.Fatalf("published %d times while another worker publishes it", n)
	}
	stream, err := h.bus.JetStream().Stream(ctx, h.bus.Config().TimerStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter("mimigw.timer.segments."+timerKey))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.State.Subjects) != 1 {
		t.Errorf("pending timers %v, want the message's", info.State.Subjects)
	}

	// The flusher died: its hold runs out.
	var cur segGroup
	rev, err := h.g.rec.get(ctx, key, &cur)
	if err != nil {
		t.Fatal(err)
	}
	cur.FlushUntil = time.Now().Add(-time.Second)
	if conflict, err := h.g.rec.replace(ctx, key, rev, cur); err != nil || conflict {
		t.Fatalf("replace: conflict=%v %v", conflict, err)
	}
	for range 2 {
		if err := h.g.ReceiveSegment(ctx, s2); err != nil {
			t.Fatalf("copy after the hold: %v", err)
		}
	}
	if n := published(); n != 1 {
		t.Fatalf("published %d times, want once", n)
	}
	m, err := sub.NextMsg(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c, err := content.Decode(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if text, _ := c.Text(); text != "held by another worker" {
		t.Errorf("message %q", text)
	}
	var end segGroup
	if _, err := h.g.rec.get(ctx, key, &end); err != nil || !end.Done || end.Flushing {
		t.Errorf("record done=%v flushing=%v (%v), want done", end.Done, end.Flushing, err)
	}
}
