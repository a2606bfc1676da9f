package smpp

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/gateway/identity"
	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/bus/bustest"
	"github.com/mimigw/mimigw/mimi/content"
	"github.com/mimigw/mimigw/mimi/uri"
	"github.com/mimigw/mimigw/smpp/smsc"
)

// testLog writes to the test's output when -v is given, else nowhere.
func testLog(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// memReceiver is a gateway.Receiver that keeps what it is given. Its
// hooks let tests make it slow or failing.
type memReceiver struct {
	mu       sync.Mutex
	inbound  []gateway.Inbound
	segments []gateway.Segment
	receipts []gateway.Receipt
	changed  chan struct{}

	// receive, when set, decides Receive's result (it may block).
	receive func(ctx context.Context, m gateway.Inbound) error
	segment func(ctx context.Context, s gateway.Segment) error
	receipt func(ctx context.Context, r gateway.Receipt) error
}

func newMemReceiver() *memReceiver { return &memReceiver{changed: make(chan struct{})} }

func (r *memReceiver) Receive(ctx context.Context, m gateway.Inbound) error {
	if r.receive != nil {
		if err := r.receive(ctx, m); err != nil {
			return err
		}
	}
	r.note(func() { r.inbound = append(r.inbound, m) })
	return nil
}

func (r *memReceiver) ReceiveSegment(ctx context.Context, sg gateway.Segment) error {
	if r.segment != nil {
		if err := r.segment(ctx, sg); err != nil {
			return err
		}
	}
	r.note(func() { r.segments = append(r.segments, sg) })
	return nil
}

func (r *memReceiver) Receipt(ctx context.Context, rc gateway.Receipt) error {
	if r.receipt != nil {
		if err := r.receipt(ctx, rc); err != nil {
			return err
		}
	}
	r.note(func() { r.receipts = append(r.receipts, rc) })
	return nil
}

// note records something under the lock and wakes waitFor.
func (r *memReceiver) note(add func()) {
	r.mu.Lock()
	add()
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *memReceiver) RevocationResult(context.Context, gateway.RevocationResult) error { return nil }
func (r *memReceiver) Serves(context.Context, uri.Number, uri.Number) (bool, error) {
	return false, nil
}

// waitFor waits until cond holds over what the receiver got.
func (r *memReceiver) waitFor(t testing.TB, what string, cond func(in []gateway.Inbound, rc []gateway.Receipt) bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		r.mu.Lock()
		ok := cond(r.inbound, r.receipts)
		ch := r.changed
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (r *memReceiver) snapshot() ([]gateway.Inbound, []gateway.Receipt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]gateway.Inbound(nil), r.inbound...), append([]gateway.Receipt(nil), r.receipts...)
}

// startSim runs the simulator on a loopback port until the test ends.
func startSim(t testing.TB, cfg smsc.Config) (*smsc.Server, string) {
	t.Helper()
	srv, err := smsc.New(cfg, testLog(t).With("side", "smsc"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("simulator: %v", err)
		}
	})
	return srv, ln.Addr().String()
}

// startSimStoppable is startSim with a function that stops the simulator
// (closing its listener and sessions) before the test ends.
func startSimStoppable(t testing.TB, cfg smsc.Config) (*smsc.Server, string, func()) {
	t.Helper()
	srv, err := smsc.New(cfg, testLog(t).With("side", "smsc"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("simulator: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return srv, ln.Addr().String(), stop
}

// smscConfig is an SMSC entry for a test: fast timeouts and reconnects.
func smscConfig(name, addr string) SMSCConfig {
	return SMSCConfig{
		Name: name, Address: addr, SystemID: "gw", Password: "pw",
		Window:          10,
		ResponseTimeout: 5 * time.Second,
		EnquireLink:     30 * time.Second,
		ReconnectMin:    20 * time.Millisecond,
		ReconnectMax:    200 * time.Millisecond,
		ThrottleBackoff: 5 * time.Millisecond,
	}
}

// startEdge runs an edge until the test ends and waits until it can send.
func startEdge(t testing.TB, cfg Config, recv gateway.Receiver) (*Edge, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	e, err := NewEdge(cfg, recv, testLog(t).With("side", "esme"), reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("edge: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("edge did not stop")
		}
	})
	waitReady(t, e)
	return e, reg
}

func waitReady(t testing.TB, e *Edge) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for e.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("edge not ready: %v", e.Ready())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitUntil polls cond (for state outside the receiver, like the
// simulator's log) with a generous bound.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// logRecorder is a slog.Handler that keeps every record's message and
// attributes, so tests can check that bad input was logged.
type logRecorder struct {
	mu    *sync.Mutex
	lines *[]string
	attrs []slog.Attr
	next  slog.Handler
}

func newLogRecorder(next slog.Handler) *logRecorder {
	return &logRecorder{mu: &sync.Mutex{}, lines: new([]string), next: next}
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (h *logRecorder) Handle(ctx context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	for _, a := range h.attrs {
		b.WriteString(" " + a.String())
	}
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	h.mu.Lock()
	*h.lines = append(*h.lines, b.String())
	h.mu.Unlock()
	if h.next != nil && h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	if h.next != nil {
		c.next = h.next.WithAttrs(as)
	}
	return &c
}

func (h *logRecorder) WithGroup(string) slog.Handler { return h }

// has reports whether a logged line contains every one of parts.
func (h *logRecorder) has(parts ...string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, l := range *h.lines {
		all := true
		for _, p := range parts {
			if !strings.Contains(l, p) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func (h *logRecorder) all() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(*h.lines, "\n")
}

// startEdgeLog is startEdge with a log recorder.
func startEdgeLog(t testing.TB, cfg Config, recv gateway.Receiver) (*Edge, *logRecorder) {
	t.Helper()
	rec := newLogRecorder(testLog(t).Handler())
	reg := prometheus.NewRegistry()
	e, err := NewEdge(cfg, recv, slog.New(rec), reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	waitReady(t, e)
	return e, rec
}

// onGateway hands what recv is given on to the real gateway over an
// embedded bus, and returns a watch of what the gateway publishes on
// mimi.from.tel. runGateway starts its timers (reassembly timeouts).
func onGateway(t testing.TB, recv *memReceiver, cfg gateway.Config) (*gateway.Gateway, <-chan *bus.Delivery) {
	t.Helper()
	b := bustest.New(t)
	ids, err := identity.New(b.Identity(), identity.Config{Domain: "gw.example.net"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(context.Background(), cfg, b, ids, testLog(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	recv.receive, recv.segment = g.Receive, g.ReceiveSegment
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := b.WatchFromPhone(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	return g, ch
}

func runGateway(t testing.TB, g *gateway.Gateway, e *Edge) {
	t.Helper()
	g.UseSMS(e)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// fromPhone waits for the next MIMI message the gateway publishes and
// returns its text and whether it is marked incomplete.
func fromPhone(t testing.TB, ch <-chan *bus.Delivery) (text string, incomplete bool, d *bus.Delivery) {
	t.Helper()
	select {
	case d = <-ch:
	case <-time.After(20 * time.Second):
		t.Fatal("nothing published on mimi.from.tel")
	}
	m, err := content.Decode(d.Data)
	if err != nil {
		t.Fatal(err)
	}
	text, _ = m.Text()
	_, incomplete = m.Extensions.Get(gateway.IncompleteExtension)
	return text, incomplete, d
}

// nothingPublished checks that no further message comes.
func nothingPublished(t testing.TB, ch <-chan *bus.Delivery) {
	t.Helper()
	select {
	case d := <-ch:
		t.Fatalf("unexpected message on %s", d.Subject)
	case <-time.After(300 * time.Millisecond):
	}
}
