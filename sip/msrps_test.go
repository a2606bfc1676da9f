package sip

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
	"math/big"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/mimigw/mimigw/sip/msrp"
	"github.com/mimigw/mimigw/sip/sdp"
)

// msrpsConfig is sessionConfig with listen.msrps, which presents a
// certificate for 127.0.0.1 from tls.cert_file.
func msrpsConfig(t *testing.T) Config {
	t.Helper()
	c := sessionConfig()
	c.Listen.MSRPS = "127.0.0.1:0"
	c.TLS, _ = gatewayCert(t)
	return c
}

// selfSigned is a phone's certificate, as RCS clients make their own for
// msrps, and its sha-256 fingerprint.
func selfSigned(t testing.TB) (tls.Certificate, msrp.Fingerprint) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "phone"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := msrp.FingerprintOf(cert, "sha-256")
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, fp
}

// useTLS has the phone's MSRP side present cert, and returns its
// TCP/TLS/MSRP offer announcing fp.
func (p *sipPhone) useTLS(t *testing.T, cert tls.Certificate, fp msrp.Fingerprint) *sdp.Session {
	t.Helper()
	pool, err := msrp.NewPool(msrp.Config{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	p.pool = pool
	local := msrp.URI{Secure: true, Host: "127.0.0.1", Port: 9, SessionID: msrp.NewSessionID(), Transport: "tcp"}
	o, err := sdp.Offer(sdp.OfferOptions{Path: []msrp.URI{local}, Fingerprints: []msrp.Fingerprint{fp}, Setup: sdp.SetupActive,
		AcceptTypes: []string{sdp.TypeCPIM}, AcceptWrappedTypes: []string{sdp.TypeText, sdp.TypeIMDN}})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// A phone offers TCP/TLS/MSRP: the 200 answers msrps on listen.msrps with
// the fingerprint of the edge's certificate, the phone's TLS connection
// (checked against it) binds, and a message sent over it is on JetStream
// when its 200 comes back.
func TestSessionMSRPS(t *testing.T) {
	cfg := msrpsConfig(t)
	recv := newTestReceiver(t)
	e := startEdge(t, cfg, recv)
	p := newSIPPhone(t, e)
	cert, fp := selfSigned(t)
	cl := p.openWith(p.useTLS(t, cert, fp))

	m, err := cl.answer.MSRP(0)
	if err != nil {
		t.Fatalf("answer m=message: %v", err)
	}
	port := e.Addr("msrps").(*net.TCPAddr).Port
	if l := m.Local(); m.Proto != sdp.ProtoMSRPTLS || !l.Secure || l.Host != "127.0.0.1" || l.Port != port || l.Transport != "tcp" {
		t.Errorf("answer %s a=path %v, want TCP/TLS/MSRP msrps://127.0.0.1:%d/<id>;tcp", m.Proto, m.Path, port)
	}
	if m.Setup != sdp.SetupPassive {
		t.Errorf("answer a=setup %q, want passive", m.Setup)
	}
	if len(m.Fingerprints) != 1 || m.Fingerprints[0].Hash != "sha-256" || m.Fingerprints[0].Check(edgeCertificate(t, cfg)) != nil {
		t.Errorf("answer a=fingerprint %v, not the sha-256 of tls.cert_file", m.Fingerprints)
	}

	s := p.connect(cl) // the phone checks the edge's certificate against the answer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Send(ctx, sdp.TypeCPIM, []byte(cpimText("msrps-1", "over msrps"))); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if msgs := recv.fromPhone(t); len(msgs) != 1 {
		t.Fatalf("%d messages on JetStream after the 200, want 1", len(msgs))
	}
	if in, _, _ := recv.snapshot(); len(in) != 1 || in[0].Ref != "msrps-1" || in[0].Parts[0].Text != "over msrps" {
		t.Fatalf("received %+v, want the msrps message", in)
	}
	p.bye(cl)
}

// A phone whose TLS certificate is not the one its a=fingerprint names
// cannot bind: its binding SEND is refused 403, nothing is delivered, and
// the edge ends the session with a BYE at once, not when the bind timeout
// (an hour here) runs out.
func TestSessionMSRPSWrongCertificate(t *testing.T) {
	recv := newTestReceiver(t)
	e := startEdge(t, msrpsConfig(t), recv)
	e.mu.Lock()
	e.bindTimeout = time.Hour
	e.mu.Unlock()
	p := newSIPPhone(t, e)
	cert, _ := selfSigned(t)
	_, announced := selfSigned(t)
	cl := p.openWith(p.useTLS(t, cert, announced))

	neg, err := sdp.Negotiate(cl.offer, cl.answer, sdp.Offerer)
	if err != nil {
		t.Fatalf("Negotiate: %v", err)
	}
	s, err := p.pool.NewSession(neg.SessionConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var se *msrp.StatusError
	if err := s.Connect(ctx); !errors.As(err, &se) || se.Code != 403 {
		t.Fatalf("Connect with another certificate: %v, want MSRP 403", err)
	}
	p.answerBye(cl)
	if in, _, _ := recv.snapshot(); len(in) != 0 {
		t.Errorf("received %d messages, want none", len(in))
	}
	if msgs := recv.fromPhone(t); len(msgs) != 0 {
		t.Errorf("%d messages on JetStream, want none", len(msgs))
	}
}

// TCP/TLS/MSRP is refused 488 without listen.msrps, and with it when the
// offer has no a=fingerprint; the reason says why.
func TestSessionMSRPSRefusals(t *testing.T) {
	cert, fp := selfSigned(t)
	for _, tc := range []struct {
		name   string
		cfg    Config
		strip  bool // the a=fingerprint line taken out of the offer
		reason string
	}{
		{"not configured", sessionConfig(), false, "transport not supported"},
		{"no a=fingerprint", msrpsConfig(t), true, "without a=fingerprint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startEdge(t, tc.cfg, newMemReceiver())
			p := newSIPPhone(t, e)
			offer := p.useTLS(t, cert, fp).String()
			if tc.strip {
				offer = withoutFingerprint(offer)
			}
			p.invite(&call{}, offer)
			if code, reason := status(p.final()); code != 488 || !strings.Contains(reason, tc.reason) {
				t.Fatalf("INVITE answered %d %s, want 488 saying %q", code, reason, tc.reason)
			}
		})
	}
}

// withoutFingerprint is an SDP body with its a=fingerprint lines taken
// out.
func withoutFingerprint(body string) string {
	var kept []string
	for _, line := range strings.SplitAfter(body, "\n") {
		if !strings.HasPrefix(line, "a=fingerprint:") {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "")
}

// msrpsChatConfig is chatConfig with listen.msrps and sessions.msrps: the
// sessions the edge opens toward p offer msrps.
func msrpsChatConfig(t *testing.T, p *chatPhone) Config {
	t.Helper()
	c, m := chatConfig(p), msrpsConfig(t)
	c.Listen.MSRPS, c.TLS, c.Sessions.MSRPS = m.Listen.MSRPS, m.TLS, true
	c.Sessions.SetupTimeout = 10 * time.Second // two TLS handshakes under -race
	return c
}

// checkMSRPSOffer checks that the edge's INVITE offered TCP/TLS/MSRP on
// listen.msrps with the fingerprint of tls.cert_file.
func checkMSRPSOffer(t *testing.T, e *Edge, cfg Config, inv *sip.Request) {
	t.Helper()
	offer, err := sdp.Parse(inv.Body())
	if err != nil {
		t.Fatalf("offer: %v", err)
	}
	m, err := offer.MSRP(0)
	if err != nil {
		t.Fatalf("offer m=message: %v", err)
	}
	port := e.Addr("msrps").(*net.TCPAddr).Port
	if l := m.Local(); m.Proto != sdp.ProtoMSRPTLS || !l.Secure || l.Host != "127.0.0.1" || l.Port != port {
		t.Errorf("offer %s a=path %v, want TCP/TLS/MSRP msrps://127.0.0.1:%d/<id>;tcp", m.Proto, m.Path, port)
	}
	if len(m.Fingerprints) != 1 || m.Fingerprints[0].Hash != "sha-256" || m.Fingerprints[0].Check(edgeCertificate(t, cfg)) != nil {
		t.Errorf("offer a=fingerprint %v, not the sha-256 of tls.cert_file", m.Fingerprints)
	}
}

// edgeCertificate is the certificate of cfg's tls.cert_file.
func edgeCertificate(t *testing.T, cfg Config) *x509.Certificate {
	t.Helper()
	pemBytes, err := os.ReadFile(cfg.TLS.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// With sessions.msrps the edge's chat INVITE offers msrps, and the
// message reaches the phone over TLS whichever side connects: the edge
// checks the phone's certificate against its answer when it connects, the
// phone's binding is checked when the phone does.
func TestChatMSRPS(t *testing.T) {
	for _, setup := range []sdp.Setup{sdp.SetupPassive, sdp.SetupActive} {
		t.Run(string(setup), func(t *testing.T) {
			p := newChatPhone(t)
			p.set(func(p *chatPhone) { p.setup = setup })
			cfg := msrpsChatConfig(t, p)
			e := startEdge(t, cfg, newMemReceiver())
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := e.SendRCS(ctx, chatText("msrps-out-1", "conv-msrps", "over msrps")); err != nil {
				t.Fatalf("SendRCS: %v", err)
			}
			call, got := p.next()
			if got.MessageID() != "msrps-out-1" || string(got.Body) != "over msrps" {
				t.Fatalf("phone got %q: %q", got.MessageID(), got.Body)
			}
			if !call.sess.LocalURI().Secure {
				t.Errorf("the phone's session is %s, want msrps", call.sess.LocalURI())
			}
			invites, pager, _, _ := p.counts()
			if invites != 1 || pager != 0 {
				t.Fatalf("%d INVITEs, %d pager MESSAGEs; want 1 and 0", invites, pager)
			}
			p.mu.Lock()
			inv := p.invites[0]
			p.mu.Unlock()
			checkMSRPSOffer(t, e, cfg, inv)
		})
	}
}

// A phone whose answer names a fingerprint its certificate does not have,
// or none, gets nothing in that session, whichever side connects: the
// session is not set up and the message goes by pager mode.
func TestChatMSRPSWrongFingerprint(t *testing.T) {
	_, other := selfSigned(t)
	for _, tc := range []struct {
		name  string
		setup sdp.Setup
		fp    msrp.Fingerprint
	}{
		{"passive", sdp.SetupPassive, other},
		{"active", sdp.SetupActive, other},
		{"none", sdp.SetupPassive, msrp.Fingerprint{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newChatPhone(t)
			p.set(func(p *chatPhone) { p.setup, p.fp = tc.setup, tc.fp })
			e := startEdge(t, msrpsChatConfig(t, p), newMemReceiver())
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			p.sendByPager(ctx, e, chatText("msrps-bad-1", "conv-msrps", "by pager"))
			select {
			case pm := <-p.got:
				t.Fatalf("the phone got %q in the session", pm.m.Body)
			default:
			}
		})
	}
}

// With sessions.msrps a large message goes to the phone in a session over
// msrps, and arrives whole.
func TestLargeMessageMSRPS(t *testing.T) {
	p := newChatPhone(t)
	cfg := msrpsChatConfig(t, p)
	cfg.MaxBody = 4096
	e := startEdge(t, cfg, newMemReceiver())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m := largeText("large-msrps-1")
	if err := e.SendRCS(ctx, m); err != nil {
		t.Fatalf("SendRCS: %v", err)
	}
	call, got := p.next()
	if got.MessageID() != "large-msrps-1" || string(got.Body) != m.Parts[0].Text {
		t.Fatalf("phone got %q with %d bytes, want the %d of large-msrps-1", got.MessageID(), len(got.Body), len(m.Parts[0].Text))
	}
	if !call.sess.LocalURI().Secure {
		t.Errorf("the phone's session is %s, want msrps", call.sess.LocalURI())
	}
	p.mu.Lock()
	inv := p.invites[0]
	p.mu.Unlock()
	checkMSRPSOffer(t, e, cfg, inv)
	if !strings.Contains(inv.GetHeader("Accept-Contact").Value(), "cpm.largemsg") {
		t.Errorf("INVITE Accept-Contact %s, want large message mode", inv.GetHeader("Accept-Contact").Value())
	}
}
