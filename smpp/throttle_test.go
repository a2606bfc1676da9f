package smpp

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/smpp/coding"
	"github.com/mimigw/mimigw/smpp/smsc"
	"github.com/mimigw/mimigw/smpp/wire"
)

// sendConcurrently sends n texts "<prefix> NNN" at once and returns a
// channel that gets each one's error.
func sendConcurrently(e *Edge, n int, prefix string) <-chan error {
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := e.SendSMS(context.Background(), gateway.OutboundSMS{ID: fmt.Sprint(prefix, i), From: "+15551230001", To: "+15551230002",
				Text: fmt.Sprintf("%s %03d", prefix, i)})
			errs <- err
		}()
	}
	return errs
}

func submitText(t *testing.T, body []byte) string {
	t.Helper()
	m, err := wire.DecodeMessage(body)
	if err != nil {
		t.Fatal(err)
	}
	p, err := coding.Decode(m.DataCoding, false, m.ShortMessage, coding.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p.Text
}

// After ESME_RTHROTTLED no submit_sm leaves before the pause ends, also
// none of those that were waiting for a window slot, or in the writer's
// queue, when the answer came (the window opens as the other answers come
// in); then all go, the throttled one again. The peer times every
// submit_sm from the moment it wrote the throttled answer: within the
// pause only the rest of the first window may arrive, written before the
// edge read the answer (no slot was free for any other).
func TestThrottlePausesQueuedSubmits(t *testing.T) {
	peer, addr := startRawPeer(t, wire.StatusOK)
	sc := smscConfig("raw", addr)
	sc.Window = 10
	sc.ThrottleBackoff = time.Second
	e, _ := startEdge(t, Config{SMSCs: []SMSCConfig{sc}}, newMemReceiver())
	c := peer.accept(t)
	const n = 40
	errs := sendConcurrently(e, n, "paced")

	accepted := map[string]int{}
	var throttledText string
	var throttledAt time.Time
	var duringPause []string
	for len(accepted) < n {
		h, body := c.next(t)
		if h.ID != wire.SubmitSM {
			t.Fatalf("got %s", h.ID)
		}
		text := submitText(t, body)
		if throttledAt.IsZero() {
			throttledText, throttledAt = text, time.Now()
			c.write(respFrame(wire.SubmitSMResp, wire.StatusThrottled, h.Seq, ""))
			continue
		}
		// The edge's pause starts when it reads the answer, after
		// throttledAt: whatever comes before throttledAt plus the pause
		// (less a little for the clocks) came within it.
		if d := time.Since(throttledAt); d < sc.ThrottleBackoff-20*time.Millisecond {
			duringPause = append(duringPause, fmt.Sprintf("%q (seq %d) %s after ESME_RTHROTTLED", text, h.Seq, d.Round(time.Millisecond)))
		}
		accepted[text]++
		c.write(respFrame(wire.SubmitSMResp, wire.StatusOK, h.Seq, fmt.Sprint("id", h.Seq)))
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("a throttled message failed: %v", err)
		}
	}
	for text, k := range accepted {
		if k != 1 {
			t.Fatalf("%q accepted %d times", text, k)
		}
	}
	if accepted[throttledText] != 1 {
		t.Fatalf("the throttled message %q was not sent again", throttledText)
	}
	if len(duringPause) > sc.Window-1 {
		t.Fatalf("%d submit_sm within the %s pause, more than the %d left of the first window: %v", len(duringPause), sc.ThrottleBackoff, sc.Window-1, duringPause)
	}
	t.Logf("window %d, %d messages: 1 ESME_RTHROTTLED, %d of the first window within the %s pause, then %d accepted once each (the throttled one again), %s after the answer",
		sc.Window, n, len(duringPause), sc.ThrottleBackoff, len(accepted), time.Since(throttledAt).Round(time.Millisecond))
	c.answerRest()
}

// An SMSC that throttles above 100 submit_sm a second, and a bind
// configured for four times that: the bind slows to what the SMSC takes,
// and every message goes, once.
func TestThrottleAdaptsToTheSMSCRate(t *testing.T) {
	sim, addr := startSim(t, smsc.Config{Outcome: "none", Faults: smsc.Faults{Rate: 100}})
	sc := smscConfig("sim", addr)
	sc.Rate = 400
	sc.ThrottleBackoff = 20 * time.Millisecond
	e, _ := startEdge(t, Config{SMSCs: []SMSCConfig{sc}}, newMemReceiver())
	const n = 300
	start := time.Now()
	errs := sendConcurrently(e, n, "rate")
	failed := 0
	for range n {
		if err := <-errs; err != nil {
			failed++
			t.Errorf("message failed: %v", err)
		}
	}
	took := time.Since(start)
	accepted, throttled := map[string]int{}, 0
	for _, s := range sim.Received() {
		if s.Status == uint32(wire.StatusThrottled) {
			throttled++
		} else {
			accepted[s.Text]++
		}
	}
	for text, k := range accepted {
		if k != 1 {
			t.Fatalf("%q accepted %d times", text, k)
		}
	}
	pauses := testutil.ToFloat64(e.m.throttled.WithLabelValues("sim"))
	t.Logf("SMSC limit 100/s, bind configured 400/s, %d messages: %d accepted, %d failed, %d ESME_RTHROTTLED answers, %v pauses, %s",
		n, len(accepted), failed, throttled, pauses, took.Round(time.Millisecond))
	if len(accepted) != n || failed != 0 {
		t.Fatalf("%d of %d accepted", len(accepted), n)
	}
	// The bind slows down rather than keep hitting the limit: far fewer
	// refusals than messages.
	if throttled > n/4 {
		t.Fatalf("%d throttled answers for %d messages", throttled, n)
	}
}
