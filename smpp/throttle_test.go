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

// After ESME_RTHROTTLED no submit_sm leaves before the pause
// ends, also none of those that were waiting for a window slot when the
// answer came (the window opens as the other answers come in); then all
// go, the throttled one again.
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
	for i := range sc.Window {
		h, body := c.next(t)
		if h.ID != wire.SubmitSM {
			t.Fatalf("got %s", h.ID)
		}
		if i == 0 {
			throttledText = submitText(t, body)
			c.write(respFrame(wire.SubmitSMResp, wire.StatusThrottled, h.Seq, ""))
			continue
		}
		accepted[submitText(t, body)]++
		c.write(respFrame(wire.SubmitSMResp, wire.StatusOK, h.Seq, fmt.Sprint("id", h.Seq)))
	}
	// The pause runs a second from when the edge read the answer: nothing
	// for most of it, though nine window slots just opened and thirty
	// messages wait.
	answered := time.Now()
	if h, quiet := c.quiet(t, 800*time.Millisecond); !quiet {
		t.Fatalf("%s seq %d sent %s after ESME_RTHROTTLED, within the 1s pause", h.ID, h.Seq, time.Since(answered).Round(time.Millisecond))
	}
	sentDuringPause := 0
	for len(accepted) < n {
		h, body := c.next(t)
		if h.ID != wire.SubmitSM {
			t.Fatalf("got %s", h.ID)
		}
		if time.Since(answered) < sc.ThrottleBackoff {
			sentDuringPause++
		}
		accepted[submitText(t, body)]++
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
	if sentDuringPause != 0 {
		t.Fatalf("%d submit_sm sent before the pause ended", sentDuringPause)
	}
	t.Logf("window %d, %d messages: 1 ESME_RTHROTTLED, 0 submit_sm during the %s pause, then %d accepted once each (the throttled one again), %s after the answer",
		sc.Window, n, sc.ThrottleBackoff, len(accepted), time.Since(answered).Round(time.Millisecond))
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
