package mls

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/thomas-vilte/mls-go/credentials"
)

// testCA writes an operator CA's certificate and key as PEM files.
func testCA(t *testing.T, name string) (certFile, keyFile string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func x509Config(t *testing.T, bucket string, caCert, caKey string, trusted ...string) Config {
	cfg := testConfig(testKeyFile(t))
	cfg.State.Bucket = bucket
	cfg.Credential = CredentialConfig{Type: "x509", CACertFile: caCert, CAKeyFile: caKey, TrustedCAFiles: trusted}
	return cfg
}

func TestX509Credentials(t *testing.T) {
	ctx := context.Background()
	ns := startNATS(t)
	ca1, key1 := testCA(t, "operator one")
	ca2, key2 := testCA(t, "operator two")
	p1 := openProvider(t, ns.js(t), x509Config(t, "gw-one", ca1, key1))
	p2 := openProvider(t, ns.js(t), x509Config(t, "gw-two", ca2, key2, ca1))

	a := mustClient(t, p1, alice)
	if a.cred.CredentialType != credentials.X509Credential {
		t.Fatalf("credential type %d", a.cred.CredentialType)
	}
	leaf, err := x509.ParseCertificate(a.cred.Certificates[0])
	if err != nil || len(leaf.URIs) != 1 || leaf.URIs[0].String() != alice {
		t.Fatalf("certificate: %v %v", leaf.URIs, err)
	}
	frank := mustClient(t, p2, "mimi://two.example/u/+15550200001")

	gid, err := a.CreateGroup(ctx, room, GroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm, err := a.Commit(ctx, gid, Changes{Add: [][]byte{mustKP(t, frank).Message}})
	if err != nil {
		t.Fatal(err)
	}
	joined, err := p2.JoinWelcome(ctx, cm.Welcome, cm.RatchetTree, room)
	if err != nil {
		t.Fatal(err)
	}
	// p2 trusts operator one: it names alice from her certificate.
	if joined[0].Members[0].URI != alice {
		t.Fatalf("frank sees %+v", joined[0].Members)
	}
	msg := mimiText(t, alice, room, "signed by operator one")
	ct, err := a.Encrypt(ctx, gid, msg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := frank.Decrypt(ctx, gid, ct)
	if err != nil || got.Sender != alice || !bytes.Equal(got.Content, msg) {
		t.Fatalf("frank reads alice: %+v %v", got, err)
	}
	// p1 trusts only its own CA: frank's certificate names nobody for it.
	fmsg := mimiText(t, frank.URI(), room, "signed by operator two")
	fct, err := frank.Encrypt(ctx, gid, fmsg)
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, p1)
	if _, err := a.Decrypt(ctx, gid, fct); !errors.Is(err, ErrUntrustedCredential) {
		t.Fatalf("untrusted certificate: %v", err)
	}
	sameState(t, p1, before, "untrusted credential")
	// A basic credential claiming a URI is not an X.509 one: the operator
	// CA cannot be bypassed by swapping credential types (p1 takes basic
	// credentials as their providers vouch for them, by design).
	if id, err := p1.issuer.identity(credentials.NewBasicCredential([]byte(frank.URI())), frank.SignatureKey(), time.Now()); err != nil || id != frank.URI() {
		t.Fatalf("basic identity: %q %v", id, err)
	}
	// A certificate for one key does not vouch for another.
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := p1.issuer.identity(a.cred, other, time.Now()); !errors.Is(err, ErrUntrustedCredential) {
		t.Fatalf("certificate with another key: %v", err)
	}
}

func TestX509ConfigErrors(t *testing.T) {
	ns := startNATS(t)
	ca1, key1 := testCA(t, "one")
	_, key2 := testCA(t, "two")
	for name, cfg := range map[string]Config{
		"key of another CA":   x509Config(t, "b1", ca1, key2),
		"missing certificate": x509Config(t, "b2", filepath.Join(t.TempDir(), "none.pem"), key1),
		"key is not PEM":      x509Config(t, "b3", ca1, ca1),
	} {
		if _, err := Open(context.Background(), cfg, ns.js(t)); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
}
