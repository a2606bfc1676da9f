package smpp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mimigw/mimigw/gateway"
	"github.com/mimigw/mimigw/smpp/smsc"
	"github.com/mimigw/mimigw/smpp/wire"
)

// sendRetrying sends as the gateway does: a retryable error is retried
// with a short pause, a bounded number of times.
func sendRetrying(ctx context.Context, e *Edge, m gateway.OutboundSMS) (gateway.SMSSent, int, error) {
	var err error
	for attempt := 1; attempt <= 10; attempt++ {
		var s gateway.SMSSent
		s, err = e.SendSMS(ctx, m)
		if err == nil || errors.Is(err, gateway.ErrRejected) {
			return s, attempt, err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return gateway.SMSSent{}, 10, err
}

func TestThrottledAnswersBackOff(t *testing.T) {
	sim, addr := startSim(t, smsc.Config{Outcome: "none", Faults: smsc.Faults{ThrottleEvery: 3}})
	e, _ := startEdge(t, Config{SMSCs: []SMSCConfig{smscConfig("sim", addr)}}, newMemReceiver())
	ctx := context.Background()
	// An SMSC that refuses every third whatever the rate slows the bind
	// down to its floor: a few messages show the retries.
	const n = 12
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.SendSMS(ctx, gateway.OutboundSMS{ID: "t", From: "+15551230001", To: "+15551230002", Text: fmt.Sprintf("msg %d", i)})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("throttled message failed: %v", err)
		}
	}
	accepted, throttled := map[string]int{}, 0
	for _, s := range sim.Received() {
		if s.Status == uint32(wire.StatusThrottled) {
			throttled++
		} else {
			accepted[s.Text]++
		}
	}
	if len(accepted) != n || throttled == 0 {
		t.Fatalf("%d distinct accepted, %d throttled", len(accepted), throttled)
	}
	for text, c := range accepted {
		if c != 1 {
			t.Fatalf("%q accepted %d times", text, c)
		}
	}
	if v := testutil.ToFloat64(e.m.throttled.WithLabelValues("sim")); v == 0 {
		t.Fatal("no throttle pause counted")
	}
}

// The SMSC drops the connection with a full window: the unanswered
// messages go again after the rebind. Nothing is lost; messages the SMSC
// took but never answered reach it twice, and are counted.
func TestDroppedConnectionFullWindow(t *testing.T) {
	sim, addr := startSim(t, smsc.Config{Outcome: "none", Faults: smsc.Faults{DropEvery: 37}})
	sc := smscConfig("sim", addr)
	sc.Window = 10
	e, _ := startEdge(t, Config{SMSCs: []SMSCConfig{sc}}, newMemReceiver())
	ctx := context.Background()
	const n = 100
	var wg sync.WaitGroup
	type res struct {
		text     string
		refs     []string
		attempts int
		err      error
	}
	results := make(chan res, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			text := fmt.Sprintf("drop test %03d", i)
			s, a, err := sendRetrying(ctx, e, gateway.OutboundSMS{ID: "d", From: "+15551230001", To: "+15551230002", Text: text})
			results <- res{text, s.Refs, a, err}
		}()
	}
	wg.Wait()
	close(results)
	ids := map[string]string{}
	for _, s := range sim.Received() {
		if s.MessageID != "" {
			ids[s.MessageID] = s.Text
		}
	}
	for r := range results {
		if r.err != nil {
			t.Fatalf("%q lost: %v", r.text, r.err)
		}
		if len(r.refs) != 1 || ids[r.refs[0]] != r.text {
			t.Fatalf("%q: ref %v is not what the SMSC logged", r.text, r.refs)
		}
	}
	seen := map[string]int{}
	for _, s := range sim.Received() {
		seen[s.Text]++
	}
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	if len(seen) != n {
		t.Fatalf("SMSC saw %d distinct messages, want %d", len(seen), n)
	}
	all, _ := sim.Bound()
	t.Logf("SMSC dropped the link every 37th submit_sm: %d messages, %d submit_sm, %d reached the SMSC more than once (duplicates), resent counter %v, %d bound now",
		n, len(sim.Received()), dups, testutil.ToFloat64(e.m.resent.WithLabelValues("sim")), all)
}

// An SMSC that answers every bind with ESME_RALYBND (or refuses it) gets
// binds at a backoff that grows, not a storm.
func TestBindRefusedBacksOff(t *testing.T) {
	peer, addr := startRawPeer(t, wire.StatusAlyBnd)
	sc := smscConfig("raw", addr)
	sc.ReconnectMin, sc.ReconnectMax = 50*time.Millisecond, time.Second
	e, err := NewEdge(Config{SMSCs: []SMSCConfig{sc}}, newMemReceiver(), testLog(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	time.Sleep(1500 * time.Millisecond)
	cancel()
	<-done
	// Pauses of 25-50, 50-100, 100-200, 200-400, 400-800 ms... fit at most
	// 7 binds in 1.5 s however fast the machine; a tight loop makes
	// thousands.
	if n := peer.bindCount(); n < 2 || n > 7 {
		t.Fatalf("%d bind attempts in 1.5 s", n)
	}
	if e.Ready() == nil {
		t.Fatal("ready without a bind")
	}
}

// An SMSC that stops answering enquire_link is a dead link: the edge
// closes it and binds again.
func TestDeadLinkRebinds(t *testing.T) {
	peer, addr := startRawPeer(t, wire.StatusOK)
	sc := smscConfig("raw", addr)
	sc.EnquireLink, sc.ResponseTimeout = 30*time.Millisecond, 100*time.Millisecond
	startEdge(t, Config{SMSCs: []SMSCConfig{sc}}, newMemReceiver())
	c := peer.accept(t)
	// Read the edge's enquire_link and never answer it.
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	h, _, err := c.r.Next()
	if err != nil || h.ID != wire.EnquireLink {
		t.Fatalf("want enquire_link, got %+v %v", h, err)
	}
	// The edge gives up on this link and binds anew.
	c2 := peer.accept(t)
	if _, _, err := c.r.Next(); err == nil {
		t.Fatal("dead link still open")
	}
	c2.answerRest()
}

// On shutdown the edge waits for the submit_sm in its window to be
// answered, then unbinds.
func TestShutdownDrainsThenUnbinds(t *testing.T) {
	peer, addr := startRawPeer(t, wire.StatusOK)
	sc := smscConfig("raw", addr)
	e, err := NewEdge(Config{SMSCs: []SMSCConfig{sc}}, newMemReceiver(), testLog(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- e.Run(ctx) }()
	c := peer.accept(t)
	waitReady(t, e)
	sent := make(chan error, 1)
	go func() {
		_, err := e.SendSMS(context.Background(), gateway.OutboundSMS{ID: "s", From: "+15551230001", To: "+15551230002", Text: "in flight"})
		sent <- err
	}()
	h, _ := c.next(t)
	if h.ID != wire.SubmitSM {
		t.Fatalf("got %s", h.ID)
	}
	cancel()
	if got, quiet := c.quiet(t, 300*time.Millisecond); !quiet {
		t.Fatalf("%s before the window drained", got.ID)
	}
	c.write(respFrame(wire.SubmitSMResp, 0, h.Seq, "A1"))
	if err := <-sent; err != nil {
		t.Fatalf("in-flight message: %v", err)
	}
	u, _ := c.next(t)
	if u.ID != wire.Unbind {
		t.Fatalf("got %s, want unbind", u.ID)
	}
	c.write(respFrame(wire.UnbindResp, 0, u.Seq, ""))
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
}

// Traffic goes to the SMSC of lowest priority number while it is bound,
// and to the next one when it is not.
func TestPriorityAndFailover(t *testing.T) {
	simA, addrA := startSim(t, smsc.Config{Name: "A", Outcome: "none"})
	simB, addrB, stopB := startSimStoppable(t, smsc.Config{Name: "B", Outcome: "none"})
	a, b := smscConfig("a", addrA), smscConfig("b", addrB)
	a.Priority, b.Priority = 2, 1
	e, _ := startEdge(t, Config{SMSCs: []SMSCConfig{a, b}}, newMemReceiver())
	ctx := context.Background()
	waitUntil(t, "both bound", func() bool { x, _ := simA.Bound(); y, _ := simB.Bound(); return x == 1 && y == 1 })
	for range 5 {
		s, err := e.SendSMS(ctx, gateway.OutboundSMS{ID: "p", From: "+15551230001", To: "+15551230002", Text: "prio"})
		if err != nil || s.Source != "b" {
			t.Fatalf("sent %+v %v, want via b", s, err)
		}
	}
	if len(simA.Received()) != 0 || len(simB.Received()) != 5 {
		t.Fatalf("a got %d, b got %d", len(simA.Received()), len(simB.Received()))
	}
	// b goes away.
	stopB()
	s, _, err := sendRetrying(ctx, e, gateway.OutboundSMS{ID: "f", From: "+15551230001", To: "+15551230002", Text: "failover"})
	if err != nil || s.Source != "a" {
		t.Fatalf("after b fails: %+v %v", s, err)
	}
}

func TestTransmitterReceiverBinds(t *testing.T) {
	sim, addr := startSim(t, smsc.Config{ReceiptDelay: time.Millisecond})
	sc := smscConfig("sim", addr)
	sc.BindMode, sc.Binds = BindTransmitterReceiver, 2
	recv := newMemReceiver()
	e, _ := startEdge(t, Config{SMSCs: []SMSCConfig{sc}}, recv)
	waitUntil(t, "four binds", func() bool { all, rx := sim.Bound(); return all == 4 && rx == 2 })
	sent, err := e.SendSMS(context.Background(), gateway.OutboundSMS{ID: "x", From: "+15551230001", To: "+15551230002", Text: "tx", Receipt: true})
	if err != nil {
		t.Fatal(err)
	}
	// The receipt comes on a receiver bind, not the transmitter it was sent on.
	recv.waitFor(t, "receipt", func(_ []gateway.Inbound, rc []gateway.Receipt) bool { return len(rc) == 1 })
	_, rc := recv.snapshot()
	if rc[0].Ref != sent.Refs[0] {
		t.Fatalf("receipt %+v for %v", rc[0], sent.Refs)
	}
	st, err := sim.InjectMO(context.Background(), smsc.MO{From: "+15551230002", To: "+15551230001", Text: "rx"})
	if err != nil || st[0] != wire.StatusOK {
		t.Fatalf("MO: %v %v", st, err)
	}
}

func TestTLSAndPasswordFromFile(t *testing.T) {
	dir := t.TempDir()
	cert, caFile := selfSigned(t, dir)
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sim, err := smsc.New(smsc.Config{Outcome: "none", Accounts: []smsc.Account{{SystemID: "gw", Password: "s3cr3t"}}}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	simDone := make(chan error, 1)
	go func() { simDone <- sim.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-simDone })

	sc := smscConfig("tls", ln.Addr().String())
	sc.Password, sc.PasswordFile = "", pwFile
	sc.TLS = TLSConfig{Enabled: true, CAFile: caFile, ServerName: "smsc.test"}
	e, logs := startEdgeLog(t, Config{SMSCs: []SMSCConfig{sc}}, newMemReceiver())
	if _, err := e.SendSMS(context.Background(), gateway.OutboundSMS{ID: "tls", From: "+15551230001", To: "+15551230002", Text: "over TLS"}); err != nil {
		t.Fatal(err)
	}
	if got := sim.Received(); len(got) != 1 || got[0].Text != "over TLS" {
		t.Fatalf("simulator got %+v", got)
	}
	if logs.has("s3cr3t") {
		t.Fatal("the password was logged")
	}
}

func TestWrongPasswordFromEnvNeverLogged(t *testing.T) {
	_, addr := startSim(t, smsc.Config{Accounts: []smsc.Account{{SystemID: "gw", Password: "right"}}})
	t.Setenv("MIMIGW_TEST_SMPP_PW", "wr0ngpw")
	sc := smscConfig("sim", addr)
	sc.Password, sc.PasswordEnv = "", "MIMIGW_TEST_SMPP_PW"
	rec := newLogRecorder(testLog(t).Handler())
	e, err := NewEdge(Config{SMSCs: []SMSCConfig{sc}}, newMemReceiver(), slog.New(rec), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	waitUntil(t, "bind refused", func() bool { return rec.has("bind failed", "invalid password") })
	cancel()
	<-done
	if rec.has("wr0ngpw") {
		t.Fatal("the password was logged")
	}
	if s := fmt.Sprintf("%v %+v %#v", sc, sc, sc); strings.Contains(s, "wr0ngpw") {
		t.Fatal("config printing shows the password")
	}
	sc.Password = "dev-pw"
	if s := fmt.Sprintf("%v %+v %#v", sc, sc, sc.Password); strings.Contains(s, "dev-pw") {
		t.Fatalf("config printing shows the password: %s", s)
	}
}

// selfSigned writes a CA-less self-signed certificate for smsc.test and
// returns it with the path of its PEM (to trust it).
func selfSigned(t testing.TB, dir string) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smsc.test"},
		DNSNames:              []string{"smsc.test"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kb, _ := x509.MarshalECPrivateKey(key)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(path, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, path
}

// No more than window submit_sm are ever outstanding on a bind; each
// answer lets exactly one more out.
func TestWindowBoundsOutstanding(t *testing.T) {
	peer, addr := startRawPeer(t, wire.StatusOK)
	sc := smscConfig("raw", addr)
	sc.Window = 4
	e, _ := startEdge(t, Config{SMSCs: []SMSCConfig{sc}}, newMemReceiver())
	c := peer.accept(t)
	const n = 10
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := e.SendSMS(context.Background(), gateway.OutboundSMS{ID: "w", From: "+15551230001", To: "+15551230002", Text: fmt.Sprint("w", i)})
			errs <- err
		}()
	}
	var seqs []uint32
	for range sc.Window {
		h, _ := c.next(t)
		if h.ID != wire.SubmitSM {
			t.Fatalf("got %s", h.ID)
		}
		seqs = append(seqs, h.Seq)
	}
	if h, quiet := c.quiet(t, 300*time.Millisecond); !quiet {
		t.Fatalf("%s seq %d beyond a full window of %d", h.ID, h.Seq, sc.Window)
	}
	for answered := 0; answered < n; answered++ {
		seq := seqs[0]
		seqs = seqs[1:]
		c.write(respFrame(wire.SubmitSMResp, 0, seq, fmt.Sprint("id", seq)))
		if answered+sc.Window < n {
			h, _ := c.next(t)
			seqs = append(seqs, h.Seq)
		}
	}
	if h, quiet := c.quiet(t, 100*time.Millisecond); !quiet {
		t.Fatalf("unexpected %s", h.ID)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	c.answerRest()
}

func TestQueueFullBacksOff(t *testing.T) {
	sim, addr := startSim(t, smsc.Config{Outcome: "none", Faults: smsc.Faults{FailEvery: 2, FailStatus: uint32(wire.StatusMsgQFul)}})
	e, _ := startEdge(t, Config{SMSCs: []SMSCConfig{smscConfig("sim", addr)}}, newMemReceiver())
	for i := range 6 {
		if _, err := e.SendSMS(context.Background(), gateway.OutboundSMS{ID: "q", From: "+15551230001", To: "+15551230002", Text: fmt.Sprint("q", i)}); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	full := 0
	for _, s := range sim.Received() {
		if s.Status == uint32(wire.StatusMsgQFul) {
			full++
		}
	}
	if full == 0 || testutil.ToFloat64(e.m.throttled.WithLabelValues("sim")) == 0 {
		t.Fatalf("%d ESME_RMSGQFUL answers, pauses %v", full, testutil.ToFloat64(e.m.throttled.WithLabelValues("sim")))
	}
}

// A rate limit that cannot be met before the caller's deadline is a
// retryable failure, never a refusal.
func TestRateLimitDeadlineIsRetryable(t *testing.T) {
	_, addr := startSim(t, smsc.Config{Outcome: "none"})
	sc := smscConfig("sim", addr)
	sc.Rate = 0.01
	e, _ := startEdge(t, Config{SMSCs: []SMSCConfig{sc}}, newMemReceiver())
	if _, err := e.SendSMS(context.Background(), gateway.OutboundSMS{ID: "1", From: "+15551230001", To: "+15551230002", Text: "a"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := e.SendSMS(ctx, gateway.OutboundSMS{ID: "2", From: "+15551230001", To: "+15551230002", Text: "b"})
	if err == nil || errors.Is(err, gateway.ErrRejected) {
		t.Fatalf("over the rate before the deadline: %v, want a retryable error", err)
	}
}
