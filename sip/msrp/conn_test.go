package msrp

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// checkFor retries fn every interval until it returns nil or timeout
// passes, then fails with its last error.
func checkFor(t testing.TB, timeout, interval time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(interval)
	}
}

// testPeer is a Pool on 127.0.0.1, listening when it is to be passive.
type testPeer struct {
	pool   *Pool
	port   int // listening port; 9 (discard) for a peer that only dials
	secure bool
	cert   *x509.Certificate
}

type peerOpt func(*Config)

func newPeer(t testing.TB, listen, secure bool, opts ...peerOpt) *testPeer {
	t.Helper()
	cfg := Config{IdleTimeout: 5 * time.Second, TransactionTimeout: 5 * time.Second}
	p := &testPeer{port: 9, secure: secure}
	if secure {
		cert := newCert(t)
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		p.cert = cert.Leaf
	}
	for _, o := range opts {
		o(&cfg)
	}
	pool, err := NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p.pool = pool
	ctx, cancel := context.WithCancel(context.Background())
	var served sync.WaitGroup
	if listen {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p.port = ln.Addr().(*net.TCPAddr).Port
		served.Add(1)
		go func() {
			defer served.Done()
			var err error
			if secure {
				err = pool.ServeTLS(ctx, ln)
			} else {
				err = pool.Serve(ctx, ln)
			}
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		}()
	}
	t.Cleanup(func() {
		cancel()
		served.Wait()
		pool.Close()
	})
	return p
}

func (p *testPeer) uri() URI {
	return URI{Secure: p.secure, Host: "127.0.0.1", Port: p.port, SessionID: NewSessionID(), Transport: "tcp"}
}

func fingerprint(t testing.TB, cert *x509.Certificate) string {
	t.Helper()
	fp, err := FingerprintOf(cert, "sha-256")
	if err != nil {
		t.Fatal(err)
	}
	return fp.String()
}

func newCert(t testing.TB) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "msrp test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// inbox is a Handler that keeps what it gets.
type inbox chan *Message

func (in inbox) handle(ctx context.Context, m *Message) error {
	select {
	case in <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (in inbox) next(t testing.TB) *Message {
	t.Helper()
	select {
	case m := <-in:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message")
		return nil
	}
}

// pair is a session between a passive gateway (listening) and an active
// client that connects to it, as RCS clients do (specs: section 10).
type pair struct {
	gw, cl         *Session
	gwIn, clIn     inbox
	gwLocal, clLoc URI
}

func newPair(t testing.TB, gw, cl *testPeer, edit ...func(g, c *SessionConfig)) *pair {
	t.Helper()
	p := &pair{gwIn: make(inbox, 64), clIn: make(inbox, 64), gwLocal: gw.uri(), clLoc: cl.uri()}
	gcfg := SessionConfig{Local: p.gwLocal, Remote: []URI{p.clLoc}, Handler: p.gwIn.handle}
	ccfg := SessionConfig{Local: p.clLoc, Remote: []URI{p.gwLocal}, Active: true, Handler: p.clIn.handle}
	if gw.secure {
		gcfg.Fingerprint = fingerprint(t, cl.cert)
		ccfg.Fingerprint = fingerprint(t, gw.cert)
	}
	for _, e := range edit {
		e(&gcfg, &ccfg)
	}
	var err error
	if p.gw, err = gw.pool.NewSession(gcfg); err != nil {
		t.Fatal(err)
	}
	if p.cl, err = cl.pool.NewSession(ccfg); err != nil {
		t.Fatal(err)
	}
	return p
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A 20 KB message goes each way in chunks: the gateway takes no body over
// 12000 bytes, so it arrives whole only if it was chunked.
func TestConnChunkedBothWays(t *testing.T) {
	t.Parallel()
	small := func(c *Config) { c.Limits.MaxChunk = 12000 }
	gw, cl := newPeer(t, true, false, small), newPeer(t, false, false, small)
	p := newPair(t, gw, cl)
	body := testBody(20000)
	if err := p.cl.Send(ctxT(t), "message/cpim", body); err != nil {
		t.Fatal(err)
	}
	m := p.gwIn.next(t)
	if !bytes.Equal(m.Body, body) || m.ContentType != "message/cpim" || m.Last.ByteRange != (ByteRange{10001, 20000, 20000}) {
		t.Fatalf("gateway got %d bytes, last %v", len(m.Body), m.Last.ByteRange)
	}
	back := testBody(20001)
	if err := p.gw.Send(ctxT(t), "text/plain", back); err != nil {
		t.Fatal(err)
	}
	if m := p.clIn.next(t); !bytes.Equal(m.Body, back) {
		t.Fatalf("client got %d bytes", len(m.Body))
	}
	if gw.pool.Conns() != 1 || cl.pool.Conns() != 1 {
		t.Errorf("%d and %d connections, want one each", gw.pool.Conns(), cl.pool.Conns())
	}
}

func TestConnTenMessagesEachWay(t *testing.T) {
	t.Parallel()
	gw, cl := newPeer(t, true, false), newPeer(t, false, false)
	p := newPair(t, gw, cl)
	ctx := ctxT(t)
	if err := p.cl.Connect(ctx); err != nil { // the client binds first
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, s := range []*Session{p.cl, p.gw} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				if err := s.Send(ctx, "text/plain", fmt.Appendf(nil, "message %d", i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, in := range []inbox{p.gwIn, p.clIn} {
		for i := range 10 {
			if m := in.next(t); string(m.Body) != fmt.Sprintf("message %d", i) {
				t.Fatalf("message %d: %q", i, m.Body)
			}
		}
	}
}

// Two sessions with the same peer share one connection (the client dials
// once), and each message reaches its own session.
func TestConnTwoSessionsOneConnection(t *testing.T) {
	t.Parallel()
	gw, cl := newPeer(t, true, false), newPeer(t, false, false)
	a, b := newPair(t, gw, cl), newPair(t, gw, cl)
	ctx := ctxT(t)
	if err := a.cl.Send(ctx, "text/plain", []byte("to a")); err != nil {
		t.Fatal(err)
	}
	if err := b.cl.Send(ctx, "text/plain", []byte("to b")); err != nil {
		t.Fatal(err)
	}
	if err := b.gw.Send(ctx, "text/plain", []byte("from b")); err != nil {
		t.Fatal(err)
	}
	if string(a.gwIn.next(t).Body) != "to a" || string(b.gwIn.next(t).Body) != "to b" || string(b.clIn.next(t).Body) != "from b" {
		t.Fatal("a message reached the wrong session")
	}
	if gw.pool.Conns() != 1 || cl.pool.Conns() != 1 {
		t.Errorf("%d and %d connections, want one shared", gw.pool.Conns(), cl.pool.Conns())
	}
	// Ending one session leaves the connection to the other.
	a.cl.Close()
	if err := b.cl.Send(ctx, "text/plain", []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if string(b.gwIn.next(t).Body) != "still here" {
		t.Fatal("lost after closing the other session")
	}
}

// The 200 to the last chunk waits for the Handler: a message is
// acknowledged only once it is safe elsewhere.
func TestConnLastChunkHeldUntilHandlerReturns(t *testing.T) {
	t.Parallel()
	gw, cl := newPeer(t, true, false), newPeer(t, false, false)
	release := make(chan error)
	entered := make(chan *Message, 4)
	var reports []*Frame
	var mu sync.Mutex
	p := newPair(t, gw, cl, func(g, c *SessionConfig) {
		g.Handler = func(ctx context.Context, m *Message) error {
			entered <- m
			return <-release
		}
		c.SuccessReport = ReportYes
		c.Reports = func(f *Frame) {
			mu.Lock()
			reports = append(reports, f)
			mu.Unlock()
		}
	})
	ctx := ctxT(t)
	sent := make(chan error, 1)
	go func() { sent <- p.cl.Send(ctx, "text/plain", testBody(25000)) }()
	<-entered // all three chunks arrived; the first two were answered
	select {
	case err := <-sent:
		t.Fatalf("Send returned (%v) while the handler had not", err)
	case <-time.After(200 * time.Millisecond):
	}
	mu.Lock()
	if len(reports) != 0 {
		t.Error("success REPORT before the handler returned")
	}
	mu.Unlock()
	release <- nil
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(reports) != 1 || reports[0].Status.Code != 200 || reports[0].ByteRange != (ByteRange{1, 25000, 25000}) {
			return fmt.Errorf("reports %v", reports)
		}
		return nil
	})

	// A handler's error is the answer; no success REPORT follows it.
	for _, tt := range []struct {
		err  error
		code int
	}{
		{errors.New("store unavailable"), 403},
		{&StatusError{Code: 415}, 415},
		{context.DeadlineExceeded, 408},
	} {
		go func() { sent <- p.cl.Send(ctx, "text/plain", []byte("x")) }()
		<-entered
		release <- tt.err
		err := <-sent
		var se *StatusError
		if !errors.As(err, &se) || se.Code != tt.code {
			t.Errorf("handler error %v: Send returned %v, want code %d", tt.err, err, tt.code)
		}
	}
	mu.Lock()
	if len(reports) != 1 {
		t.Errorf("%d REPORTs, want only the first message's", len(reports))
	}
	mu.Unlock()
}

// A passive session cannot send before the peer's first SEND binds a
// connection to it (RFC 4975 section 5.4): Send waits for that.
func TestConnSendBeforeBinding(t *testing.T) {
	t.Parallel()
	gw, cl := newPeer(t, true, false), newPeer(t, false, false)
	p := newPair(t, gw, cl)
	short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := p.gw.Send(short, "text/plain", []byte("too early")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send before binding: %v", err)
	}
	sent := make(chan error, 1)
	go func() { sent <- p.gw.Send(ctxT(t), "text/plain", []byte("once bound")) }()
	if err := p.cl.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if m := p.clIn.next(t); string(m.Body) != "once bound" {
		t.Fatalf("%q", m.Body)
	}
}

// rawPeer speaks MSRP by hand to a pool.
type rawPeer struct {
	t  testing.TB
	nc net.Conn
	r  *Reader
}

func dialRaw(t testing.TB, port int) *rawPeer {
	t.Helper()
	nc, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawPeer{t: t, nc: nc, r: NewReader(nc, Limits{})}
}

func (r *rawPeer) write(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.nc, s); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawPeer) send(f *Frame) {
	r.t.Helper()
	if _, err := f.WriteTo(r.nc); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawPeer) next() *Frame {
	r.t.Helper()
	_ = r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := r.r.Next()
	if err != nil {
		r.t.Fatal(err)
	}
	return f
}

func (r *rawPeer) expect(tid string, code int) {
	r.t.Helper()
	f := r.next()
	if f.TID != tid || f.Code != code {
		r.t.Fatalf("got %s %d %q, want %s %d", f.TID, f.Code, f.Comment, tid, code)
	}
}

// Requests the gateway must refuse, each answered as RFC 4975 section 7.3
// says, on one connection that stays in step throughout.
func TestConnRefusals(t *testing.T) {
	t.Parallel()
	gw := newPeer(t, true, false, func(c *Config) { c.Limits.MaxChunk = 1000 })
	local := gw.uri()
	peerURI := URI{Host: "127.0.0.1", Port: 9, SessionID: "peer1", Transport: "tcp"}
	in := make(inbox, 4)
	s, err := gw.pool.NewSession(SessionConfig{Local: local, Remote: []URI{peerURI}, Handler: in.handle})
	if err != nil {
		t.Fatal(err)
	}
	req := func(tid, method string, to ...URI) *Frame {
		return &Frame{TID: tid, Method: method, ToPath: to, FromPath: []URI{peerURI}, MessageID: "m" + tid, Flag: FlagEnd}
	}
	unknown := local
	unknown.SessionID = "nosuchsession"
	otherHost := local
	otherHost.Host = "127.0.0.2"

	r := dialRaw(t, gw.port)
	// No such session.
	r.send(req("t001", MethodSEND, unknown))
	r.expect("t001", 481)
	// A To-Path of two URIs asks the gateway to relay.
	r.send(req("t002", MethodSEND, local, peerURI))
	r.expect("t002", 481)
	// Same session-id, another host: not this session (no CEMA).
	r.send(req("t003", MethodSEND, otherHost))
	r.expect("t003", 481)
	// A REPORT is never answered, and does not bind: a NICKNAME after it
	// is still for an unbound session.
	rep := req("t004", MethodREPORT, local)
	rep.Status = &Status{Code: 200, Reason: "OK"}
	r.send(rep)
	r.send(req("t005", "NICKNAME", local))
	r.expect("t005", 481)
	// The binding SEND.
	r.send(req("t006", MethodSEND, local))
	r.expect("t006", 200)
	// Now bound: an unknown method, AUTH (not a relay).
	r.send(req("t007", "NICKNAME", local))
	r.expect("t007", 501)
	r.send(req("t008", MethodAUTH, local))
	r.expect("t008", 403)
	// A malformed header; a body over the chunk limit.
	r.write("MSRP t009 SEND\r\nTo-Path: " + local.String() + "\r\nFrom-Path: " + peerURI.String() +
		"\r\nMessage-ID: m9x1\r\nByte-Range: 1-x/5\r\nContent-Type: text/plain\r\n\r\nhello\r\n-------t009$\r\n")
	r.expect("t009", 400)
	big := req("t010", MethodSEND, local)
	big.ContentType, big.Body = "text/plain", testBody(1500)
	r.send(big)
	r.expect("t010", 413)
	// Failure-Report: no silences even a refusal; partial a success.
	quiet := req("t011", "NICKNAME", local)
	quiet.FailureReport = ReportNo
	r.send(quiet)
	partial := req("t012", MethodSEND, local)
	partial.ContentType, partial.Body, partial.FailureReport = "text/plain", []byte("hi"), ReportPartial
	r.send(partial)
	r.send(req("t013", "NICKNAME", local))
	r.expect("t013", 501)
	if m := in.next(t); string(m.Body) != "hi" {
		t.Fatalf("%q", m.Body)
	}
	// A second connection for the bound session: 506.
	r2 := dialRaw(t, gw.port)
	r2.send(req("t014", MethodSEND, local))
	r2.expect("t014", 506)
	// Through it all the first connection stayed up and in step.
	chunk := req("t015", MethodSEND, local)
	chunk.ContentType, chunk.Body = "text/plain", []byte("last")
	r.send(chunk)
	r.expect("t015", 200)
	if m := in.next(t); string(m.Body) != "last" {
		t.Fatalf("%q", m.Body)
	}
	// The session's own requests go out on the bound connection.
	go func() { _ = s.Send(context.Background(), "text/plain", []byte("out")) }()
	if f := r.next(); f.Method != MethodSEND || string(f.Body) != "out" || f.ToPath[0] != peerURI || f.FromPath[0] != local {
		t.Fatalf("%+v", f)
	}
}

// A message whose last chunk leaves bytes missing is never acknowledged:
// RFC 4975's own example counts the line end in its Byte-Range (23 bytes
// sent as 1-25/25). The last chunk's answer waits for the missing bytes,
// and is 408 when the message is dropped.
func TestConnIncompleteMessageNotAcknowledged(t *testing.T) {
	t.Parallel()
	gw := newPeer(t, true, false, func(c *Config) { c.Limits.IncompleteTimeout = 200 * time.Millisecond })
	local := gw.uri()
	peerURI := URI{Host: "127.0.0.1", Port: 9, SessionID: "peer1", Transport: "tcp"}
	in := make(inbox, 1)
	if _, err := gw.pool.NewSession(SessionConfig{Local: local, Remote: []URI{peerURI}, Handler: in.handle}); err != nil {
		t.Fatal(err)
	}
	r := dialRaw(t, gw.port)
	r.send(&Frame{TID: "a786hjs2", Method: MethodSEND, ToPath: []URI{local}, FromPath: []URI{peerURI}, MessageID: "87652491",
		ByteRange: ByteRange{1, 25, 25}, ContentType: "text/plain", Body: []byte("Hey Bob, are you there?"), Flag: FlagEnd})
	start := time.Now()
	r.expect("a786hjs2", 408)
	if waited := time.Since(start); waited < 150*time.Millisecond {
		t.Errorf("answered after %v, before the message timed out", waited)
	}
	select {
	case m := <-in:
		t.Fatalf("delivered %q", m.Body)
	default:
	}
}

// Accept serves a connection accepted elsewhere (here one end of a pipe).
func TestPoolAccept(t *testing.T) {
	t.Parallel()
	gw := newPeer(t, false, false)
	local := URI{Host: "127.0.0.1", Port: 2855, SessionID: NewSessionID(), Transport: "tcp"}
	peerURI := URI{Host: "127.0.0.1", Port: 9, SessionID: "peer1", Transport: "tcp"}
	in := make(inbox, 1)
	if _, err := gw.pool.NewSession(SessionConfig{Local: local, Remote: []URI{peerURI}, Handler: in.handle}); err != nil {
		t.Fatal(err)
	}
	ours, theirs := net.Pipe()
	t.Cleanup(func() { theirs.Close() })
	c, err := gw.pool.Accept(ours)
	if err != nil {
		t.Fatal(err)
	}
	r := &rawPeer{t: t, nc: theirs, r: NewReader(theirs, Limits{})}
	r.send(&Frame{TID: "t001", Method: MethodSEND, ToPath: []URI{local}, FromPath: []URI{peerURI}, MessageID: "m1x1",
		ContentType: "text/plain", Body: []byte("over a pipe"), Flag: FlagEnd})
	r.expect("t001", 200)
	if m := in.next(t); string(m.Body) != "over a pipe" || c.Sessions() != 1 {
		t.Fatalf("%q, %d sessions", m.Body, c.Sessions())
	}
}

// With CEMA (RFC 6714) the session-id alone names the session.
func TestConnCEMAMatchesSessionIDOnly(t *testing.T) {
	t.Parallel()
	gw := newPeer(t, true, false)
	local := gw.uri()
	peerURI := URI{Host: "127.0.0.1", Port: 9, SessionID: "peer1", Transport: "tcp"}
	if _, err := gw.pool.NewSession(SessionConfig{Local: local, Remote: []URI{peerURI}, CEMA: true}); err != nil {
		t.Fatal(err)
	}
	anchored := local
	anchored.Host, anchored.Port = "198.51.100.7", 40000 // what a middlebox made of it
	r := dialRaw(t, gw.port)
	r.send(&Frame{TID: "t001", Method: MethodSEND, ToPath: []URI{anchored}, FromPath: []URI{peerURI}, MessageID: "m1x1", Flag: FlagEnd})
	r.expect("t001", 200)
}

// A connection that carries no session is closed after the idle time:
// one that never binds, and one whose sessions ended.
func TestConnIdleClosed(t *testing.T) {
	t.Parallel()
	idle := func(c *Config) { c.IdleTimeout = 100 * time.Millisecond }
	gw, cl := newPeer(t, true, false, idle), newPeer(t, false, false, idle)
	r := dialRaw(t, gw.port)
	_ = r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.nc.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read on a connection that never bound: %v, want EOF", err)
	}
	p := newPair(t, gw, cl)
	if err := p.cl.Send(ctxT(t), "text/plain", []byte("hi")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // a bound connection is not idle
	if cl.pool.Conns() != 1 {
		t.Fatal("a connection with a session was closed")
	}
	p.cl.Close()
	checkFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		if n, m := cl.pool.Conns(), gw.pool.Conns(); n != 0 || m != 0 {
			return fmt.Errorf("%d and %d connections left", n, m)
		}
		return nil
	})
	// The gateway's session ended with its connection.
	select {
	case <-p.gw.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("gateway session outlived its connection")
	}
	if err := p.gw.Err(); err == nil || !strings.Contains(err.Error(), "connection to") {
		t.Errorf("Err() = %v", err)
	}
}

func TestConnTLS(t *testing.T) {
	t.Parallel()
	gw, cl := newPeer(t, true, true), newPeer(t, false, true)

	t.Run("matching fingerprints", func(t *testing.T) {
		p := newPair(t, gw, cl)
		if err := p.cl.Send(ctxT(t), "text/plain", testBody(15000)); err != nil {
			t.Fatal(err)
		}
		if m := p.gwIn.next(t); len(m.Body) != 15000 {
			t.Fatalf("%d bytes", len(m.Body))
		}
		if err := p.gw.Send(ctxT(t), "text/plain", []byte("back")); err != nil {
			t.Fatal(err)
		}
		if string(p.clIn.next(t).Body) != "back" {
			t.Fatal("no answer")
		}
	})
	other := fingerprint(t, newCert(t).Leaf)
	t.Run("server certificate does not match", func(t *testing.T) {
		p := newPair(t, gw, cl, func(g, c *SessionConfig) { c.Fingerprint = other })
		err := p.cl.Connect(ctxT(t))
		if !errors.Is(err, ErrFingerprint) {
			t.Fatalf("Connect: %v, want ErrFingerprint", err)
		}
	})
	t.Run("client certificate does not match", func(t *testing.T) {
		p := newPair(t, gw, cl, func(g, c *SessionConfig) { g.Fingerprint = other })
		err := p.cl.Connect(ctxT(t))
		var se *StatusError
		if !errors.As(err, &se) || se.Code != 403 {
			t.Fatalf("Connect: %v, want a 403", err)
		}
		select {
		case <-p.gw.Done():
		case <-ctxT(t).Done():
			t.Fatal("the refused session did not end")
		}
		if !errors.Is(p.gw.Err(), ErrFingerprint) {
			t.Fatalf("the refused session ended with %v, want ErrFingerprint", p.gw.Err())
		}
	})
	t.Run("no certificate where a fingerprint is expected", func(t *testing.T) {
		plain := newPeer(t, true, false)
		remote := cl.uri()
		remote.Secure = false
		s, err := plain.pool.NewSession(SessionConfig{Local: plain.uri(), Remote: []URI{remote}, Fingerprint: fingerprint(t, cl.cert)})
		if err != nil {
			t.Fatal(err)
		}
		r := dialRaw(t, plain.port)
		r.send(&Frame{TID: "t001", Method: MethodSEND, ToPath: []URI{s.LocalURI()}, FromPath: []URI{remote}, MessageID: "m1x1", Flag: FlagEnd})
		r.expect("t001", 403)
	})
	t.Run("TCP client on the TLS port", func(t *testing.T) {
		p := newPair(t, gw, cl)
		r := dialRaw(t, gw.port)
		r.send(&Frame{TID: "t001", Method: MethodSEND, ToPath: []URI{p.gwLocal}, FromPath: []URI{p.clLoc}, MessageID: "m1x1", Flag: FlagEnd})
		_ = r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if f, err := r.r.Next(); err == nil {
			t.Fatalf("an answer over plain TCP: %+v", f)
		}
	})
}

func TestParseFingerprint(t *testing.T) {
	t.Parallel()
	cert := newCert(t).Leaf
	fp, err := FingerprintOf(cert, "SHA-256")
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseFingerprint(strings.ToLower(fp.String()))
	if err != nil || back.Check(cert) != nil || back.String() != fp.String() {
		t.Fatalf("%v %v", back, err)
	}
	for _, bad := range []string{"", "sha-256", "md5 AB:CD", "sha-256 AB:CD", "sha-1 " + strings.Repeat("ZZ:", 19) + "ZZ", "sha-256 ABC:" + fp.String()[12:]} {
		if _, err := ParseFingerprint(bad); err == nil {
			t.Errorf("ParseFingerprint(%q) accepted", bad)
		}
	}
	if err := back.Check(nil); !errors.Is(err, ErrFingerprint) {
		t.Errorf("Check(nil) = %v", err)
	}
}

// A session's MaxMessage, below the pool's limit: a SEND whose Byte-Range
// total is over it, or whose message (total unknown) grows past it, gets
// 413 and the connection stays in step; a message of exactly MaxMessage
// bytes is delivered.
func TestConnSessionMaxMessage(t *testing.T) {
	t.Parallel()
	gw := newPeer(t, true, false)
	local := gw.uri()
	peerURI := URI{Host: "127.0.0.1", Port: 9, SessionID: "peer1", Transport: "tcp"}
	in := make(inbox, 4)
	if _, err := gw.pool.NewSession(SessionConfig{Local: local, Remote: []URI{peerURI}, Handler: in.handle, MaxMessage: 3000}); err != nil {
		t.Fatal(err)
	}
	if _, err := gw.pool.NewSession(SessionConfig{Local: gw.uri(), Remote: []URI{peerURI}, MaxMessage: -1}); err == nil {
		t.Error("a negative MaxMessage was taken")
	}
	chunk := func(tid, msgID string, start, total int64, body []byte, flag Flag) *Frame {
		return &Frame{TID: tid, Method: MethodSEND, ToPath: []URI{local}, FromPath: []URI{peerURI}, MessageID: msgID,
			Flag: flag, ContentType: "text/plain", Body: body,
			ByteRange: ByteRange{Start: start, End: start + int64(len(body)) - 1, Total: total}}
	}
	r := dialRaw(t, gw.port)
	// The total says 3001 bytes: refused at the first chunk.
	r.send(chunk("t001", "msg-1", 1, 3001, testBody(1000), FlagMore))
	r.expect("t001", 413)
	// No total: the third chunk takes the message past 3000 bytes.
	for i, want := range []int{200, 200, 413} {
		tid := fmt.Sprintf("t00%d", i+2)
		r.send(chunk(tid, "msg-2", int64(i)*1200+1, Unknown, testBody(1200), FlagMore))
		r.expect(tid, want)
	}
	// One chunk of 3001 bytes.
	r.send(chunk("t005", "msg-3", 1, 3001, testBody(3001), FlagEnd))
	r.expect("t005", 413)
	// Exactly 3000 bytes, in two chunks, on the same connection.
	body := testBody(3000)
	r.send(chunk("t006", "msg-4", 1, 3000, body[:1500], FlagMore))
	r.expect("t006", 200)
	r.send(chunk("t007", "msg-4", 1501, 3000, body[1500:], FlagEnd))
	r.expect("t007", 200)
	if m := in.next(t); !bytes.Equal(m.Body, body) {
		t.Fatalf("delivered %d bytes, want the 3000 sent", len(m.Body))
	}
}
