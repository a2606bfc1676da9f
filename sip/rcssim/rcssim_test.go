package rcssim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mimigw/mimigw/mimi/uri"
	"github.com/mimigw/mimigw/sip/sipptest"
)

// start runs a simulator on free loopback ports until the test ends.
func start(t *testing.T, cfg Config) *Sim {
	t.Helper()
	s := listen(t, cfg)
	serve(t, s)
	return s
}

// listen makes a simulator and binds it (port 0 unless cfg says).
func listen(t *testing.T, cfg Config) *Sim {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	cfg.MSRP = "127.0.0.1:0"
	s, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	return s
}

// serve runs a bound simulator until the test ends.
func serve(t *testing.T, s *Sim) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("simulator did not stop")
		}
	})
}

// pair runs two simulators, each the other's gateway: a phone of one
// sending to a phone of the other exercises both sides of every mode.
func pair(t *testing.T, setupA, setupB string) (a, b *Sim) {
	t.Helper()
	a = listen(t, Config{Numbers: []string{"+15551230100-+15551230109"}, Gateway: "sip:127.0.0.1:9;transport=tcp",
		Setup: setupA, Displayed: true})
	b = listen(t, Config{Numbers: []string{"+15551230200"}, Gateway: "sip:" + a.SIPAddr().String() + ";transport=tcp", Setup: setupB})
	// Before Serve: nothing reads it yet.
	a.gw, _ = parseTarget("sip:" + b.SIPAddr().String() + ";transport=tcp")
	serve(t, a)
	serve(t, b)
	return a, b
}

// waitFor polls the simulator's log until ok holds for it (bounded).
func waitFor(t *testing.T, s *Sim, what string, ok func([]Received) bool) []Received {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := s.Received()
		if ok(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not in %+v", what, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func find(list []Received, f func(Received) bool) (Received, bool) {
	for _, r := range list {
		if f(r) {
			return r, true
		}
	}
	return Received{}, false
}

// Every mode between two simulators: the text arrives whole under its
// CPIM Message-ID with its mode, and the delivered IMDN comes back to the
// sender (displayed too from a simulator with Displayed).
func TestModesBetweenSimulators(t *testing.T) {
	for _, setup := range []string{"active", "passive"} {
		t.Run(setup, func(t *testing.T) {
			t.Parallel()
			a, b := pair(t, setup, setup)
			ctx := context.Background()
			long := strings.Repeat("0123456789abcdef€", 2000) // 38,000 bytes: four MSRP chunks
			for _, tc := range []struct{ mode, text string }{
				{ModePager, "hello by pager"},
				{ModeLarge, long},
				{ModeChat, "hello in a chat"},
				{ModeChat, "and again in the same chat"},
			} {
				id, err := a.Send(ctx, Outgoing{From: "+15551230101", To: "+15551230200", Text: tc.text, Mode: tc.mode})
				if err != nil {
					t.Fatalf("%s: %v", tc.mode, err)
				}
				waitFor(t, b, tc.mode+" message", func(l []Received) bool {
					_, ok := find(l, func(r Received) bool {
						return r.MessageID == id && r.Mode == tc.mode && r.Text == tc.text && r.From == "+15551230101" && r.To == "+15551230200"
					})
					return ok
				})
				waitFor(t, a, tc.mode+" delivered IMDN", func(l []Received) bool {
					r, ok := find(l, func(r Received) bool { return r.About == id && r.Notification == "delivered" })
					// A large message's IMDN comes by MESSAGE, a chat's in the session.
					want := tc.mode
					if want == ModeLarge {
						want = ModePager
					}
					return ok && r.Mode == want && r.From == "+15551230200"
				})
			}
			// The other way, to a simulator that also reports display.
			id, err := b.Send(ctx, Outgoing{From: "+15551230200", To: "+15551230109", Text: "back", Mode: ModeChat})
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, b, "delivered and displayed", func(l []Received) bool {
				_, d := find(l, func(r Received) bool { return r.About == id && r.Notification == "delivered" })
				_, s := find(l, func(r Received) bool { return r.About == id && r.Notification == "displayed" })
				return d && s
			})
			// Only one chat session was opened from a to b: the second
			// message reused it.
			calls := map[string]bool{}
			for _, r := range b.Received() {
				if r.Mode == ModeChat && r.Notification == "" {
					calls[r.CallID] = true
				}
			}
			if len(calls) != 1 {
				t.Errorf("chat messages from a came in %d sessions, want 1", len(calls))
			}
		})
	}
}

// A number the simulator does not play: OPTIONS and MESSAGE get 404, and
// Send refuses to send from it.
func TestNotOurNumber(t *testing.T) {
	t.Parallel()
	a, _ := pair(t, "active", "active")
	if _, err := a.Send(context.Background(), Outgoing{From: "+15551230200", To: "+15551230101", Text: "x"}); err == nil {
		t.Error("sent from a number it does not play")
	}
	_, err := a.Send(context.Background(), Outgoing{From: "+15551230101", To: "+15551239999", Text: "x"})
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("MESSAGE to a number nobody plays: %v, want a 404", err)
	}
}

// SIPp's capability query (deploy/sipp/uac_options.xml) gets 200 with
// every RCS tag for a number the simulator plays.
func TestOptionsFromSIPp(t *testing.T) {
	t.Parallel()
	sipptest.Need(t)
	s := start(t, Config{Numbers: []string{"+15551230100"}, Gateway: "sip:127.0.0.1:9;transport=udp"})
	run := sipptest.Start(t, "uac_options.xml", "-t", "u1", "-m", "1", "-trace_msg",
		"-key", "caller", "+15551230001", "-key", "callee", "+15551230100", s.SIPAddr().String())
	run.Wait(t)
	tr := run.Traces()
	for _, tag := range []string{"SIP/2.0 200", "cpm.msg", "cpm.session", "cpm.largemsg", "iari.rcs.fthttp"} {
		if !strings.Contains(tr, tag) {
			t.Errorf("answer without %q:\n%s", tag, tr)
		}
	}
}

// The HTTP hook: POST /send and GET /messages.
func TestHook(t *testing.T) {
	t.Parallel()
	a, b := pair(t, "active", "passive")
	ha, hb := httptest.NewServer(a.Handler()), httptest.NewServer(b.Handler())
	defer ha.Close()
	defer hb.Close()
	for _, body := range []string{`{"from":"+15551230200","to":"+15551230101","text":"x"}`, `{"to":"+1"}`, `{"from":"+15551230100","to":"+15551230200","mode":"fax"}`} {
		res, err := http.Post(ha.URL+"/send", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 400 {
			t.Errorf("POST /send %s: %d, want 400", body, res.StatusCode)
		}
	}
	res, err := http.Post(ha.URL+"/send", "application/json",
		strings.NewReader(`{"from":"+15551230100","to":"+15551230200","text":"by the hook","mode":"large"}`))
	if err != nil {
		t.Fatal(err)
	}
	var sent map[string]string
	err = json.NewDecoder(res.Body).Decode(&sent)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 || sent["message_id"] == "" || sent["mode"] != "large" {
		t.Fatalf("POST /send: %d %v %v", res.StatusCode, sent, err)
	}
	waitFor(t, b, "the hook's message", func(l []Received) bool { return len(l) > 0 })
	res, err = http.Get(hb.URL + "/messages?limit=1")
	if err != nil {
		t.Fatal(err)
	}
	var got []Received
	err = json.NewDecoder(res.Body).Decode(&got)
	res.Body.Close()
	if err != nil || len(got) != 1 || got[0].Mode != ModeLarge || got[0].Text != "by the hook" || got[0].MessageID != sent["message_id"] {
		t.Errorf("GET /messages: %+v %v", got, err)
	}
	var buf bytes.Buffer
	res, err = http.Get(hb.URL + "/messages?limit=x")
	if err == nil {
		buf.ReadFrom(res.Body)
		res.Body.Close()
		if res.StatusCode != 400 {
			t.Errorf("limit=x: %d %s", res.StatusCode, buf.String())
		}
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		numbers []string
		ok      bool
	}{
		{[]string{"+15551230100"}, true},
		{[]string{"+15551230100-+15551230199,+447700900123"}, true},
		{[]string{"+15551230199-+15551230100"}, false},
		{[]string{"+1555123010-+15551230100"}, false},
		{[]string{"12"}, false},
		{nil, false},
	} {
		c := Config{Numbers: tc.numbers}
		c.Defaults()
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("%v: %v", tc.numbers, err)
		}
	}
	ns, _ := parseNumbers([]string{"+15551230100-+15551230199"})
	for n, want := range map[string]bool{"+15551230100": true, "+15551230199": true, "+15551230200": false, "+155512301000": false} {
		if ns.has(uriNumber(n)) != want {
			t.Errorf("has(%s) != %v", n, want)
		}
	}
	c := Config{Numbers: []string{"+15551230100"}, Gateway: "sips:x"}
	c.Defaults()
	if c.Validate() == nil {
		t.Error("sips gateway accepted")
	}
}

func uriNumber(s string) uri.Number { return uri.Number(s) }

// testLogger logs to the test's output when -v is given, and nowhere
// once the test ended.
func testLogger(t *testing.T) *slog.Logger {
	var w io.Writer = io.Discard
	if testing.Verbose() {
		w = &lockedWriter{w: os.Stderr}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Sessions leave nothing behind: after 30 large messages and a chat each
// way, and the simulators stopped, the goroutine count is back where it
// was.
func TestNoGoroutineLeft(t *testing.T) {
	before := runtime.NumGoroutine()
	done := make(chan struct{})
	t.Run("sessions", func(t *testing.T) {
		defer close(done)
		a, b := pair(t, "active", "passive")
		ctx := context.Background()
		for i := range 30 {
			if _, err := a.Send(ctx, Outgoing{From: "+15551230100", To: "+15551230200", Text: strings.Repeat("y", 12000+i), Mode: ModeLarge}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := a.Send(ctx, Outgoing{From: "+15551230100", To: "+15551230200", Text: "chat", Mode: ModeChat}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Send(ctx, Outgoing{From: "+15551230200", To: "+15551230100", Text: "chat", Mode: ModeChat}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, b, "31 messages", func(l []Received) bool {
			n := 0
			for _, r := range l {
				if r.Notification == "" {
					n++
				}
			}
			return n == 31
		})
	})
	<-done
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before+2 {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SIPp as the SIP side of a chat session (deploy/sipp/uac_session.xml:
// INVITE with an MSRP offer, a=setup:active, ACK, BYE) gets 200 with an
// SDP answer the scenario checks (msrp:// a=path, a=setup:passive), and
// its BYE 200.
func TestSessionFromSIPp(t *testing.T) {
	t.Parallel()
	sipptest.Need(t)
	s := start(t, Config{Numbers: []string{"+15551230100"}, Gateway: "sip:127.0.0.1:9;transport=tcp"})
	run := sipptest.Start(t, "uac_session.xml", "-t", "t1", "-m", "1", "-trace_msg",
		"-key", "caller", "+15551230001", "-key", "callee", "+15551230100", s.SIPAddr().String())
	run.Wait(t)
	tr := run.Traces()
	if !strings.Contains(tr, "msrp://"+s.MSRPAddr().String()+"/") {
		t.Errorf("the answer's a=path is not the simulator's MSRP address %s:\n%s", s.MSRPAddr(), tr)
	}
}
