package sip

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/mimi/bus"
	"github.com/mimigw/mimigw/mimi/bus/bustest"
	"github.com/mimigw/mimigw/mimi/uri"
)

// testReceiver is the gateway side of the tests: it publishes what the
// edge hands it to a real JetStream (an embedded NATS server started by
// bustest) and returns once the bus acknowledged it, as the gateway does.
// It records every call, and can be told to fail or to block.
type testReceiver struct {
	b *bus.Bus

	mu          sync.Mutex
	inbound     []gateway.Inbound
	receipts    []gateway.Receipt
	revocations []gateway.RevocationResult
	serves      map[uri.Number]bool
	fail        error         // returned by Receive/Receipt instead of publishing
	block       chan struct{} // when set, Receive waits for it to close
	calls       chan struct{} // one value per call into Receive/Receipt/RevocationResult
}

func newTestReceiver(t testing.TB) *testReceiver {
	return &testReceiver{b: bustest.New(t), serves: map[uri.Number]bool{}, calls: make(chan struct{}, 1024)}
}

// newMemReceiver records calls without a bus (fuzzing, benchmarks of the
// edge alone).
func newMemReceiver() *testReceiver {
	return &testReceiver{serves: map[uri.Number]bool{}, calls: make(chan struct{}, 1<<16)}
}

func (r *testReceiver) publish(ctx context.Context, from, to uri.Number, key string, v any) error {
	r.mu.Lock()
	fail, block := r.fail, r.block
	r.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail != nil {
		return fail
	}
	if r.b == nil {
		return nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(from.String() + "|" + to.String() + "|" + key))
	env := bus.Envelope{
		ID:        hex.EncodeToString(sum[:]),
		Sender:    from.TelURI(),
		Recipient: to.TelURI(),
		Room:      "mimi://mimigw.test/r/dm-test",
		Channel:   bus.ChannelRCS,
	}
	if _, err := r.b.Publish(ctx, bus.SubjectFromPhone(from), env, data); err != nil {
		if errors.Is(err, bus.ErrUnavailable) {
			return fmt.Errorf("%w: %w", gateway.ErrUnavailable, err)
		}
		return err
	}
	return nil
}

// ReceiveSegment is for the SMS edge; RCS never calls it.
func (r *testReceiver) ReceiveSegment(context.Context, gateway.Segment) error {
	return errors.New("segments come from SMS only")
}

func (r *testReceiver) Receive(ctx context.Context, m gateway.Inbound) error {
	defer r.signal()
	r.mu.Lock()
	r.inbound = append(r.inbound, m)
	r.mu.Unlock()
	return r.publish(ctx, m.From, m.To, m.Ref, m)
}

func (r *testReceiver) Receipt(ctx context.Context, rc gateway.Receipt) error {
	defer r.signal()
	r.mu.Lock()
	r.receipts = append(r.receipts, rc)
	r.mu.Unlock()
	return r.publish(ctx, rc.From, "+15550000000", "receipt|"+rc.Ref+"|"+rc.Status.String(), rc)
}

func (r *testReceiver) RevocationResult(ctx context.Context, rr gateway.RevocationResult) error {
	defer r.signal()
	r.mu.Lock()
	r.revocations = append(r.revocations, rr)
	r.mu.Unlock()
	return nil
}

func (r *testReceiver) Serves(ctx context.Context, contact, number uri.Number) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.serves[number], nil
}

func (r *testReceiver) signal() {
	select {
	case r.calls <- struct{}{}:
	default:
	}
}

func (r *testReceiver) set(f func(r *testReceiver)) {
	r.mu.Lock()
	f(r)
	r.mu.Unlock()
}

func (r *testReceiver) snapshot() (in []gateway.Inbound, rc []gateway.Receipt, rv []gateway.RevocationResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]gateway.Inbound(nil), r.inbound...), append([]gateway.Receipt(nil), r.receipts...),
		append([]gateway.RevocationResult(nil), r.revocations...)
}

// waitCalls waits for n calls into the receiver.
func (r *testReceiver) waitCalls(t testing.TB, n int) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case <-r.calls:
		case <-deadline:
			t.Fatalf("receiver got %d of %d calls", i, n)
		}
	}
}

// waitInbound waits until Receive has been entered n times (it may still
// be blocked).
func (r *testReceiver) waitInbound(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r.mu.Lock()
		got := len(r.inbound)
		r.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Receive entered %d times, want %d", got, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// fromPhone reads every message on the bus's from-phone stream.
func (r *testReceiver) fromPhone(t testing.TB) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := r.b.JetStream().OrderedConsumer(ctx, r.b.Config().FromPhoneStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("ordered consumer: %v", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatalf("consumer info: %v", err)
	}
	n := int(info.NumPending)
	if n == 0 {
		return nil
	}
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	var out []jetstream.Msg
	for m := range batch.Messages() {
		out = append(out, m)
	}
	return out
}

// testConfig is a configuration on loopback with ephemeral ports.
func testConfig() Config {
	c := DevConfig()
	c.Listen = Listen{UDP: "127.0.0.1:0", TCP: "127.0.0.1:0"}
	c.OutboundProxy = "sip:127.0.0.1:9;transport=udp" // replaced by tests that send
	c.Timeouts.Request = 5 * time.Second
	return c
}

// startEdge runs an edge until the test ends.
func startEdge(t testing.TB, cfg Config, recv gateway.Receiver) *Edge {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = bustest.Logger(t)
	}
	e, err := NewEdge(cfg, recv, log, nil)
	if err != nil {
		t.Fatalf("NewEdge: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for e.Ready() != nil {
		select {
		case err := <-done:
			t.Fatalf("Run: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("edge not ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return e
}

// rawClient speaks SIP over a plain socket, byte for byte as a test writes
// it.
type rawClient struct {
	t    testing.TB
	conn net.Conn
	buf  []byte
}

func dialRaw(t testing.TB, network string, addr net.Addr) *rawClient {
	t.Helper()
	c, err := net.Dial(network, addr.String())
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, conn: c}
}

func (c *rawClient) send(msg string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(msg)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// answer reads one response; over TCP it frames by Content-Length.
func (c *rawClient) answer() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, ok := c.conn.(*net.UDPConn); ok {
		b := make([]byte, 65536)
		n, err := c.conn.Read(b)
		if err != nil {
			c.t.Fatalf("read answer: %v", err)
		}
		return string(b[:n])
	}
	for {
		if i := bytes.Index(c.buf, []byte("\r\n\r\n")); i >= 0 {
			head := string(c.buf[:i+4])
			n := 0
			if v := headerValue(head, "Content-Length"); v != "" {
				fmt.Sscanf(v, "%d", &n)
			}
			if len(c.buf) >= i+4+n {
				msg := string(c.buf[:i+4+n])
				c.buf = c.buf[i+4+n:]
				return msg
			}
		}
		b := make([]byte, 65536)
		n, err := c.conn.Read(b)
		if err != nil {
			c.t.Fatalf("read answer: %v (have %q)", err, c.buf)
		}
		c.buf = append(c.buf, b[:n]...)
	}
}

// noAnswer checks that nothing arrives within d.
func (c *rawClient) noAnswer(d time.Duration) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(d))
	b := make([]byte, 65536)
	if n, err := c.conn.Read(b); err == nil {
		c.t.Fatalf("unexpected answer: %q", b[:n])
	}
}

// status returns the status code and reason phrase of a response.
func status(msg string) (int, string) {
	line, _, _ := strings.Cut(msg, "\r\n")
	var code int
	parts := strings.SplitN(line, " ", 3)
	if len(parts) < 3 {
		return 0, line
	}
	fmt.Sscanf(parts[1], "%d", &code)
	return code, parts[2]
}

func headerValue(msg, name string) string {
	for _, l := range strings.Split(msg, "\r\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// request is a MESSAGE or OPTIONS as a client writes it.
type request struct {
	method      string
	ruri        string
	from, to    string
	branch      string
	callID      string
	transport   string
	local       net.Addr
	contentType string
	body        string
	extra       []string
}

func (r request) String() string {
	if r.method == "" {
		r.method = "MESSAGE"
	}
	if r.transport == "" {
		r.transport = "UDP"
	}
	if r.ruri == "" {
		r.ruri = "sip:+15551230002@mimigw.test;user=phone"
	}
	if r.from == "" {
		r.from = "<sip:+15551230001@ims.test;user=phone>;tag=f1"
	}
	if r.to == "" {
		r.to = "<sip:+15551230002@mimigw.test;user=phone>"
	}
	if r.branch == "" {
		r.branch = "z9hG4bK-" + newMessageID()
	}
	if r.callID == "" {
		r.callID = newMessageID()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", r.method, r.ruri)
	fmt.Fprintf(&b, "Via: SIP/2.0/%s %s;branch=%s\r\n", r.transport, r.local, r.branch)
	fmt.Fprintf(&b, "Max-Forwards: 70\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: 1 %s\r\n", r.from, r.to, r.callID, r.method)
	for _, h := range r.extra {
		b.WriteString(h + "\r\n")
	}
	if r.contentType != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", r.contentType)
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(r.body), r.body)
	return b.String()
}

// cpimText is a CPIM body carrying text, as an RCS client writes it.
func cpimText(msgID, text string) string {
	return "From: <sip:+15551230001@ims.test>\r\n" +
		"To: <sip:+15551230002@mimigw.test>\r\n" +
		"NS: imdn <urn:ietf:params:imdn>\r\n" +
		"imdn.Message-ID: " + msgID + "\r\n" +
		"DateTime: 2026-08-08T06:40:56.000Z\r\n" +
		"imdn.Disposition-Notification: positive-delivery, display\r\n" +
		"\r\n" +
		"Content-Type: text/plain;charset=UTF-8\r\n" +
		fmt.Sprintf("Content-Length: %d\r\n", len(text)) +
		"\r\n" + text
}

func subjects(msgs []jetstream.Msg) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Subject())
	}
	return out
}
