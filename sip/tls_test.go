package sip

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a certificate for name (DNS SAN and CN) as PEM cert and key.
func (ca *testCA) issue(t *testing.T, name string, ip net.IP) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	if ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

// gatewayCert is tls.cert_file and tls.key_file for mimigw.test and
// 127.0.0.1, from a test CA, and the roots that verify it.
func gatewayCert(t *testing.T) (TLSFiles, *x509.CertPool) {
	t.Helper()
	ca := newTestCA(t)
	dir := t.TempDir()
	cp, kp := ca.issue(t, "mimigw.test", net.IPv4(127, 0, 0, 1))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	return TLSFiles{CertFile: writeFile(t, dir, "gw.pem", cp), KeyFile: writeFile(t, dir, "gw.key", kp)}, roots
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Over TLS, a peer whose verified certificate names a trusted identity is
// taken; one without a certificate, or with another name, gets 403.
func TestTLSTrustedIdentity(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	srvCert, srvKey := ca.issue(t, "mimigw.test", net.IPv4(127, 0, 0, 1))
	cfg := testConfig()
	cfg.Listen.TLS = "127.0.0.1:0"
	cfg.Trusted.CIDRs = nil
	cfg.Trusted.TLSIdentities = []string{"ims.test"}
	cfg.TLS = TLSFiles{CertFile: writeFile(t, dir, "srv.pem", srvCert), KeyFile: writeFile(t, dir, "srv.key", srvKey),
		CAFile: writeFile(t, dir, "ca.pem", ca.pem)}
	recv := newTestReceiver(t)
	e := startEdge(t, cfg, recv)

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	send := func(clientName string) (int, string) {
		conf := &tls.Config{RootCAs: roots, ServerName: "mimigw.test", MinVersion: tls.VersionTLS12}
		if clientName != "" {
			cp, kp := ca.issue(t, clientName, nil)
			pair, err := tls.X509KeyPair(cp, kp)
			if err != nil {
				t.Fatal(err)
			}
			conf.Certificates = []tls.Certificate{pair}
		}
		conn, err := tls.Dial("tcp", e.Addr("tls").String(), conf)
		if err != nil {
			t.Fatalf("dial tls: %v", err)
		}
		t.Cleanup(func() { conn.Close() })
		c := &rawClient{t: t, conn: conn}
		c.send(request{local: conn.LocalAddr(), transport: "TLS", contentType: "message/cpim",
			body: cpimText("tls-"+clientName, "over TLS")}.String())
		return status(c.answer())
	}
	if code, reason := send("ims.test"); code != 202 {
		t.Fatalf("trusted identity: %d %s", code, reason)
	}
	if code, reason := send(""); code != 403 || !strings.Contains(reason, "untrusted") {
		t.Fatalf("no client certificate: %d %s", code, reason)
	}
	if code, reason := send("other.test"); code != 403 {
		t.Fatalf("another identity: %d %s", code, reason)
	}
	if in, _, _ := recv.snapshot(); len(in) != 1 || in[0].Parts[0].Text != "over TLS" {
		t.Fatalf("messages %+v, want the trusted one only", in)
	}
}
